"""The apply command's conversation with a user: confirmation, refusals, messages instead of tracebacks."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from estate import seed_estate, write_spec

from controller.azure.clients import AzureClients
from controller.cli import apply_cmd


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name, value in emulator.env.items():
        monkeypatch.setenv(name, value)
    yield dict(emulator.env)


def _run(spec: Path, state: Path, answer: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
    clients = AzureClients()
    try:
        return apply_cmd.run(None, [str(spec)], state=str(state), clients=clients)
    finally:
        clients.close()


def test_apply_asks_and_only_yes_applies(
    emulator: Any,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Scenario: without --auto-approve apply shows the plan and asks; 'y' is not 'yes' (nothing is
    written, exit 1); 'yes' applies."""
    seed_estate(emulator, workspaces=("law1",))
    spec, state = write_spec(tmp_path / "spec", workspaces=("law1",)), tmp_path / "state"

    assert _run(spec, state, "y\n", monkeypatch) == 1
    captured = capsys.readouterr()
    assert "Only 'yes' is accepted" in captured.out
    assert "Apply cancelled; nothing was changed." in captured.err
    assert [r for r in emulator.requests() if r["method"] != "GET"] == []

    assert _run(spec, state, "yes\n", monkeypatch) == 0
    assert "2 changed" in capsys.readouterr().out


def test_bad_input_is_one_line_not_a_traceback(env: dict[str, str], tmp_path: Path) -> None:
    """Scenario: a missing plan file, no arguments, a bad --lock-timeout: each is one 'error:' line and
    exit 1, never a Python traceback."""
    cases = [
        ["apply", str(tmp_path / "missing.json"), "--state", str(tmp_path / "s")],
        ["apply", "--state", str(tmp_path / "s")],
        ["apply", "-f", str(tmp_path), "--lock-timeout", "soon", "--state", str(tmp_path / "s")],
    ]
    for args in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "controller.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**env, "PATH": "/usr/bin:/bin"},
        )
        assert proc.returncode == 1, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        # the first line says the emulator is the target (CMKCTL_EMULATOR); then the one error line
        note, _, rest = proc.stderr.partition("\n")
        assert note.startswith("cmkctl: talking to the Azure emulator at "), proc.stderr
        assert rest.startswith("error: ") and len(rest.splitlines()) == 1, proc.stderr


def test_lock_timeout_durations() -> None:
    assert [apply_cmd.parse_duration(t) for t in ("30", "30s", "5m", "1h", "500ms")] == [
        30,
        30,
        300,
        3600,
        0.5,
    ]


def test_plan_out_then_apply_planfile_then_nothing_left(
    env: dict[str, str], emulator: Any, tmp_path: Path
) -> None:
    """Scenario: the reviewed-plan workflow through the real CLI: `plan --out`, `apply PLANFILE` applies
    exactly that plan, and `plan --detailed-exitcode` afterwards says there is nothing to do (exit 0)."""
    seed_estate(emulator)
    spec, state, planfile = write_spec(tmp_path / "spec"), tmp_path / "state", tmp_path / "plan.json"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "controller.cli", *args, "--state", str(state)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**env},
        )

    made = cli("plan", "-f", str(spec), "--out", str(planfile), "--detailed-exitcode")
    assert made.returncode == 2, made.stderr
    applied = cli("apply", str(planfile))
    assert applied.returncode == 0, applied.stderr
    assert "3 changed" in applied.stdout
    assert "Traceback" not in applied.stderr
    again = cli("plan", "-f", str(spec), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert emulator.events() == []


def test_a_saved_plan_is_shown_for_review_and_refuses_another_spec(
    env: dict[str, str], emulator: Any, tmp_path: Path
) -> None:
    """`cmkctl show PLANFILE` renders what `plan` printed (text, markdown, JSON); `apply PLANFILE -f`
    is refused with a message rather than checked against a spec the plan was not made from."""
    seed_estate(emulator)
    spec, state, planfile = write_spec(tmp_path / "spec"), tmp_path / "state", tmp_path / "plan.json"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "controller.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**env, "CMKCTL_STATE": str(state)},
        )

    made = cli("plan", "-f", str(spec), "--out", str(planfile))
    assert made.returncode == 0, made.stderr
    shown = cli("show", str(planfile))
    assert shown.returncode == 0 and shown.stdout == made.stdout
    markdown = cli("show", str(planfile), "--format", "markdown")
    assert markdown.returncode == 0 and "|" in markdown.stdout and "create" in markdown.stdout
    as_json = cli("show", str(planfile), "--format", "json")
    assert as_json.stdout == planfile.read_text(encoding="utf-8")
    missing = cli("show", str(tmp_path / "nope.json"))
    assert missing.returncode == 1 and "nope.json" in missing.stderr and "Traceback" not in missing.stderr

    refused = cli("apply", str(planfile), "-f", str(spec))
    assert refused.returncode == 1
    assert "-f is not accepted with a saved plan" in refused.stderr and str(spec) in refused.stderr
    assert emulator.events() == []  # nothing was sent
