"""Run `cmkctl report` in-process on the emulator's simulated clock and parse what a user would read.

A module of its own (not conftest) so test files import it by a name no other test directory uses."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

# the estate/spec builders are shared with tests/azure
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "azure"))

from controller.cli.app import main


@dataclass
class ReportRun:
    exit_code: int
    stdout: str
    stderr: str
    report: dict[str, Any]

    def workspace(self, name: str) -> dict[str, Any]:
        found = [w for w in self.report["workspaces"] if w["name"] == name]
        assert len(found) == 1, self.report["workspaces"]
        return found[0]

    def cluster(self, name: str) -> dict[str, Any]:
        found = [c for c in self.report["clusters"] if c["name"] == name]
        assert len(found) == 1, self.report["clusters"]
        return found[0]

    def findings(self, code: str, subject: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.report["findings"]
                if f["code"] == code and (subject is None or f["subject"] == subject)]

    def events(self, kind: str, subject: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.report["calendar"]
                if e["kind"] == kind and (subject is None or e["subject"] == subject)]


class ReportRunner:
    """Writes the spec, runs `cmkctl report -f spec [--format F] [--out FILE]`, parses JSON output."""

    def __init__(self, emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.emulator = emulator
        self.tmp_path = tmp_path
        self.capsys = capsys
        for name, value in emulator.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("CMKCTL_STATE", str(tmp_path / "state"))
        self.monkeypatch = monkeypatch

    def spec(self, documents: list[dict[str, Any]]) -> Path:
        spec = self.tmp_path / "spec"
        spec.mkdir(exist_ok=True)
        (spec / "spec.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
        return spec

    def __call__(self, documents: list[dict[str, Any]], *, fmt: str = "json",
                 extra: list[str] | None = None) -> ReportRun:
        self.monkeypatch.setenv("CMKCTL_NOW", self.emulator.now())  # report on the emulator's clock
        args = ["report", "-f", str(self.spec(documents)), "--format", fmt, *(extra or [])]
        self.capsys.readouterr()
        code = main(args)
        out = self.capsys.readouterr()
        parsed = json.loads(out.out) if fmt == "json" and code == 0 and out.out else {}
        return ReportRun(code, out.out, out.err, parsed)


