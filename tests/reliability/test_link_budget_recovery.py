"""Rule W3 across failures, restarts and refusals: the journal, Azure (the emulator's own count) and the
report agree on how many link operations a workspace has spent, and the plan never proposes one more.

Operations are told apart by identity (the journaled x-ms-client-request-id, which the Activity Log
shows), never by how close in time they are; only requests Azure accepted count; in doubt, a restart
counts the operation as spent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from reliability_support import (
    LINK_PATH,
    RG,
    SUB,
    apply,
    estate_for,
    journal_in_flight,
    journal_link_ops,
    link_ops_in_azure,
    workspace_id,
    write_spec,
)

from controller.azure.clients import AzureClients
from controller.cli.plan_cmd import snapshot
from controller.cli.report_cmd import gather_report
from controller.model.history import InFlightOperation
from controller.state.sqlite_store import SqliteHistoryStore


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    values = {
        **emulator.env,
        "CMKCTL_RETRY_BACKOFF": "0.01",
        "CMKCTL_POLLING_INTERVAL": "0.05",
        "CMKCTL_OPERATION_TIMEOUT": "5",
        "CMKCTL_BUSY_TIMEOUT": "1",  # the emulator's clock stands still: a running unlink never ends
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield


def _link_writes(emulator: Any) -> list[dict[str, Any]]:
    reqs = emulator.requests()
    return [r for r in reqs if r["method"] == "PUT" and r["path"].endswith("/linkedServices/cluster")]


def _used(spec: Path, state: Path, name: str) -> tuple[int, int]:
    clients = AzureClients()
    try:
        report = gather_report([str(spec)], state=str(state), clients=clients)
    finally:
        clients.close()
    (row,) = [w for w in report.workspaces if w.name == name]
    return row.link_ops_used, row.link_ops_limit


def _history_count(spec: Path, state: Path, name: str) -> int:
    """Operations the planner counts for a workspace: journal merged with the live Activity Log."""
    clients = AzureClients()
    try:
        snap = snapshot([str(spec)], state=str(state), clients=clients)
    finally:
        clients.close()
    key = workspace_id(name).lower()
    return len(snap.history.link_ops_since(key, snap.now - timedelta(days=30)))


def test_w3_two_failed_links_an_hour_apart_are_two_operations_everywhere(
    emulator: Any, env: None, tmp_path: Path
) -> None:
    """Azure accepts two links of law1 within two hours and both fail: the journal and Azure hold two
    operations, the report says 2/2 and the next apply sends no third link (Azure would refuse it)."""
    estate = estate_for("link")
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    for _ in range(2):
        emulator.fault(method="PUT", path=LINK_PATH, fail_operation=True, count=1)
        run = apply(spec, state)
        assert run.rc != 0 and "error:" in run.text, run.text
        emulator.clear_faults()
        emulator.advance(1800)
    assert link_ops_in_azure(emulator, "law1") == 2
    assert journal_link_ops(state, "law1") == 2
    assert _used(spec, state, "law1") == (2, 2)

    emulator.clear_requests()
    run = apply(spec, state)
    assert _link_writes(emulator) == [], run.text
    assert "law1" in run.text and "W3" in run.text, run.text


def test_w3_an_unlink_in_flight_when_apply_died_is_counted_on_restart(
    emulator: Any, env: None, tmp_path: Path
) -> None:
    """apply journaled the unlink of law2 (phase begin), Azure accepted the DELETE, then apply was killed
    before it journaled the answer. The link now shows Deleting: the restart records the operation
    (in doubt, the budget is spent), so the journal agrees with Azure."""
    emulator.configure(durations={"unlink": 600})
    estate = estate_for("unlink")
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    request_id = str(uuid.uuid4())
    store = SqliteHistoryStore(state)
    store.begin_operation(
        InFlightOperation(
            op_id=f"unlink:{workspace_id('law2')}",
            action="unlink",
            target=workspace_id("law2"),
            status_url=None,
            started=datetime(2026, 11, 30, 6, 0, tzinfo=UTC),
            request_id=request_id,
        )
    )
    store.close()
    clients = AzureClients()
    try:  # the DELETE the killed apply had sent, with its journaled request id
        clients.loganalytics(SUB).linked_services.begin_delete(RG, "law2", "cluster", request_id=request_id)
    finally:
        clients.close()
    assert link_ops_in_azure(emulator, "law2") == 1

    run = apply(spec, state)
    assert "Traceback" not in run.text, run.text
    assert journal_in_flight(state) == ()
    ops = SqliteHistoryStore(state)
    try:
        detail = [o for o in ops.operations() if o["target"] == workspace_id("law2")]
    finally:
        ops.close()
    assert "did not take effect" not in str(detail), detail
    assert journal_link_ops(state, "law2") == link_ops_in_azure(emulator, "law2") == 1
    emulator.advance(700)
    assert _history_count(spec, state, "law2") == 1  # journal and Activity Log: one operation, not two
