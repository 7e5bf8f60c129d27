"""Operations still running in Azure when an apply ended: resumed side by side, and `cmkctl apply`
answers the same way on every run while they keep running.

Three links stick in the emulator (simulated clock frozen); CMKCTL_OPERATION_TIMEOUT is 2 s, so each
resume waits 2 s before it gives up for this run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_support import (
    LINK_PATH,
    apply,
    estate_for,
    journal_in_flight,
    write_spec,
)

from controller.azure.clients import AzureClients
from controller.azure.operations import Operations
from controller.cli.apply_cmd import EXIT_STILL_RUNNING
from controller.execution.executor import Executor, StepStatus
from controller.state.sqlite_store import SqliteHistoryStore

OP_TIMEOUT = 2.0
WORKSPACES = ("law1", "law2", "law3")


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    values = {
        **emulator.env,
        "CMKCTL_RETRY_BACKOFF": "0.01",
        "CMKCTL_POLLING_INTERVAL": "0.05",
        "CMKCTL_OPERATION_TIMEOUT": str(OP_TIMEOUT),
        "CMKCTL_BUSY_TIMEOUT": "1",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield


def _three_stuck_links(emulator: Any, tmp_path: Path) -> tuple[Path, Path]:
    """An apply whose three links Azure accepted and keeps running: all three journaled as sent."""
    base = estate_for("link")
    [template] = base.seed["workspaces"]
    seed = {
        **base.seed,
        "workspaces": [{**template, "name": w} for w in WORKSPACES],
    }
    estate = dataclasses.replace(base, seed=seed, workspaces=WORKSPACES)
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    emulator.fault(method="PUT", path=LINK_PATH, stick_operation=36000, count=len(WORKSPACES))
    first = apply(spec, state)
    assert first.rc == EXIT_STILL_RUNNING and "still running" in first.text, first.text
    assert len([op for op in journal_in_flight(state) if op.phase == "sent"]) == len(WORKSPACES)
    return spec, state


def test_stuck_operations_are_resumed_side_by_side(emulator: Any, env: None, tmp_path: Path) -> None:
    """N operations still running cost one operation timeout before planning, not N of them."""
    _, state = _three_stuck_links(emulator, tmp_path)
    clients = AzureClients()
    store = SqliteHistoryStore(state)
    try:
        executor = Executor(gateway=Operations(clients), store=store, parallelism=10)
        started = time.monotonic()
        resumed = executor.resume_in_flight()
        seconds = time.monotonic() - started
    finally:
        store.close()
        clients.close()
    assert [r.status for r in resumed] == [StepStatus.RESUME_FAILED] * len(WORKSPACES)
    assert all("still running" in r.message for r in resumed)
    assert seconds < 2 * OP_TIMEOUT, f"{seconds:.1f}s: resumed one after another"
    assert len(journal_in_flight(state)) == len(WORKSPACES), "still running: kept for the next run"


def test_apply_exits_3_on_every_run_while_operations_keep_running(
    emulator: Any, env: None, tmp_path: Path
) -> None:
    """The run that started them and each run that resumes them answer alike: exit 3, one line each."""
    spec, state = _three_stuck_links(emulator, tmp_path)
    runs = [apply(spec, state), apply(spec, state)]
    for run in runs:
        assert run.rc == EXIT_STILL_RUNNING, run.text
        lines = [line for line in run.out.splitlines() if line.startswith("still running in Azure: ")]
        assert len(lines) == len(WORKSPACES), run.text
        assert "3 operation(s) still running (exit 3)" in run.out
        assert "Traceback" not in run.text
    emulator.clear_faults()
    emulator.advance(40000)  # Azure finishes them
    done = apply(spec, state)
    assert done.rc == 0, done.text
    assert "still running" not in done.text
    assert journal_in_flight(state) == ()
