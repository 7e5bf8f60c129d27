"""Run `cmkctl plan` in-process against the emulator and parse the JSON plan (used by the scenario tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.cli.app import main


@dataclass
class PlanRun:
    exit_code: int
    plan: dict[str, Any]
    stdout: str
    stderr: str

    def items(self, section: str, action: str | None = None) -> list[dict[str, Any]]:
        return [i for i in self.plan[section] if action is None or i["action"] == action]

    def one(self, section: str, action: str, address_part: str) -> dict[str, Any]:
        found = [i for i in self.items(section, action) if address_part in i["address"]]
        assert len(found) == 1, f"expected one {action} on {address_part} in {section}: {self.plan[section]}"
        return found[0]

    def ids_of(self, action: str) -> list[str]:
        return [c["id"] for c in self.items("changes", action)]


class PlanRunner:
    """Writes a spec, runs `cmkctl plan --format json --detailed-exitcode` in-process, parses the JSON."""

    def __init__(
        self,
        emulator: Any,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.emulator = emulator
        self.tmp_path = tmp_path
        self.capsys = capsys
        for name, value in emulator.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("CMKCTL_STATE", str(tmp_path / "state"))
        self.monkeypatch = monkeypatch

    def __call__(
        self,
        documents: list[dict[str, Any]] | None = None,
        *,
        paths: list[str] | None = None,
        fmt: str = "json",
        extra: list[str] | None = None,
    ) -> PlanRun:
        self.monkeypatch.delenv("CMKCTL_NOW", raising=False)  # plans follow ARM's Date header
        if paths is None:
            spec = self.tmp_path / "spec"
            spec.mkdir(exist_ok=True)
            (spec / "spec.yaml").write_text(
                yaml.safe_dump_all(documents or [], sort_keys=False), encoding="utf-8"
            )
            paths = [str(spec)]
        args = [
            "plan",
            *[a for p in paths for a in ("-f", p)],
            "--format",
            fmt,
            "--detailed-exitcode",
            *(extra or []),
        ]
        self.capsys.readouterr()
        code = main(args)
        out = self.capsys.readouterr()
        plan = json.loads(out.out) if fmt == "json" and code in (0, 2, 3) else {}
        return PlanRun(code, plan, out.out, out.err)
