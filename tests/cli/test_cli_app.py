"""`cmkctl` as a user runs it: validate, schema, --version, emulator passthrough, and error handling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import app as app_module
from controller.cli import emulator_cmd, validate_cmd
from controller.cli.app import main
from controller.loading.schema import spec_json_schema_text

ROOT = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_validate_fleet_summarises_what_it_found(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", str(ROOT / "examples" / "fleet"))

    assert (code, err) == (0, "")
    assert out.startswith("OK: 3 cluster(s) with 3 key(s) (1 pinned, 2 versionless), 18 linked workspace(s)")
    assert "in 2 subscription(s), 2 region(s)" in out
    assert "Cluster/prod-eus: cmkprodeus01 in eastus, 2000 GB/day" in out


def test_validate_several_paths(capsys: pytest.CaptureFixture[str]) -> None:
    fleet = ROOT / "examples" / "fleet"
    code, out, _ = run(capsys, "validate", str(fleet / "clusters"), str(fleet / "teams" / "nonprod.yaml"))

    assert code == 0
    assert "5 linked workspace(s)" in out  # only the nonprod sets, on the nonprod cluster


def test_validate_without_paths_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate")

    assert code == 2
    assert "Missing argument" in err
    assert "Traceback" not in out + err


def test_schema_prints_the_checked_in_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")

    assert code == 0
    schema = json.loads(out)
    assert {"Cluster", "WorkspaceSet", "Settings"} <= set(schema["$defs"])
    assert schema["$defs"]["ClusterSpec"]["additionalProperties"] is False
    checked_in = (ROOT / "specs" / "cmk-spec.schema.json").read_text()
    assert out == checked_in, (
        "specs/cmk-spec.schema.json is stale: run `cmkctl schema > specs/cmk-spec.schema.json`"
    )


def test_checked_in_schema_matches_the_models() -> None:
    assert (ROOT / "specs" / "cmk-spec.schema.json").read_text() == spec_json_schema_text(), (
        "specs/cmk-spec.schema.json is stale: run `cmkctl schema > specs/cmk-spec.schema.json`"
    )


def test_every_example_points_editors_at_the_schema() -> None:
    files = sorted((ROOT / "examples").rglob("*.yaml"))
    assert files
    for file in files:
        first = file.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), file
        target = (file.parent / first.split("$schema=", 1)[1]).resolve()
        assert target == ROOT / "specs" / "cmk-spec.schema.json", file


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")

    assert code == 0
    assert out.strip().startswith("cmkctl ")


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "bogus")

    assert code == 2
    assert "No such command 'bogus'" in err


def test_unexpected_exception_is_one_line_without_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(paths: object, **options: object) -> object:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(validate_cmd, "load", broken)
    monkeypatch.delenv("CMKCTL_DEBUG", raising=False)

    code, out, err = run(capsys, "validate", str(ROOT / "examples" / "minimal"))

    assert code == 1
    assert err.strip().splitlines() == [
        "cmkctl: internal error (RuntimeError: boom); rerun with CMKCTL_DEBUG=1 for details and report it"
    ]
    assert "Traceback" not in out + err


def test_debug_env_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(paths: object, **options: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(validate_cmd, "load", broken)
    monkeypatch.setenv("CMKCTL_DEBUG", "1")

    code, _, err = run(capsys, "validate", str(ROOT / "examples" / "minimal"))

    assert code == 1
    assert "Traceback" in err


def test_emulator_runs_the_emulator_module_with_the_same_args(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_call(argv: list[str]) -> int:
        calls.append(argv)
        return 3

    monkeypatch.setattr(emulator_cmd.subprocess, "call", fake_call)

    code, _, _ = run(capsys, "emulator", "--port", "8443", "--help")

    assert calls == [[sys.executable, "-m", "emulator", "--port", "8443", "--help"]]
    assert code == 3  # the emulator's exit code is ours


def test_commands_from_other_modules_register_themselves() -> None:
    names = {c.name for c in app_module.app.registered_commands}
    assert {"validate", "schema", "emulator"} <= names


def test_console_entry_point_in_a_real_process(tmp_path: Path) -> None:
    """End to end in a fresh interpreter: a broken spec gives file:line messages on stderr, exit 1."""
    (tmp_path / "bad.yaml").write_text("apiVersion: cmk.azure.io/v1\nkind: Cluster\nmetadata: {name: x}\n")
    env = {k: v for k, v in os.environ.items() if k != "CMKCTL_DEBUG"}

    proc = subprocess.run(
        [sys.executable, "-m", "controller.cli", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"{tmp_path / 'bad.yaml'}:1: spec: required field is missing" in proc.stderr
    assert proc.stderr.splitlines()[-1] == "1 problem(s) in 1 file(s); fix them and run validate again"
    assert "Traceback" not in proc.stderr


def test_examples_validate_against_the_published_schema_as_editors_see_it() -> None:
    """The schema editors use (yaml-language-server) accepts every example document."""
    import jsonschema
    import yaml

    schema = json.loads((ROOT / "specs" / "cmk-spec.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    checked = 0
    for file in sorted((ROOT / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(file.read_text()):
            errors = [e.message for e in validator.iter_errors(doc)]
            assert errors == [], f"{file}: {errors}"
            checked += 1
    assert checked >= 10
    # and it rejects what the loader rejects: an unknown field
    bad = {
        "apiVersion": "cmk.azure.io/v1",
        "kind": "Settings",
        "metadata": {"name": "s"},
        "spec": {"drfit": "report"},
    }
    assert list(validator.iter_errors(bad))


@pytest.mark.parametrize("command", [[], ["plan"], ["apply"], ["show"], ["validate"], ["drift"], ["explain"]])
def test_dash_h_prints_the_help_of_every_command(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "-h"]) == 0
    assert "Usage:" in capsys.readouterr().out


def test_plan_help_documents_the_detailed_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "3 something is blocked" in text and "2 changes or deferred work" in text
