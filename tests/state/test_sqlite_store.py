"""The local journal: what an apply wrote survives a crash and reads back as History."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.errors import CmkError
from controller.model.history import ClusterDeletion, InFlightOperation, LinkOperation, Revision
from controller.state import paths
from controller.state.sqlite_store import SqliteHistoryStore

T0 = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
WS = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/rg"
    "/providers/microsoft.operationalinsights/workspaces/ws1"
)


def _op(op_id: str = "s1", action: str = "create") -> InFlightOperation:
    return InFlightOperation(
        op_id=op_id, action=action, target="/subscriptions/x/c", status_url=None, started=T0
    )


def test_link_operations_and_deletions_round_trip_for_w3_and_c11(tmp_path: Path) -> None:
    """Scenario: an apply linked and unlinked a workspace and deleted a cluster; the next plan must see
    both link operations (rule W3 budget) and the deletion (rule C11 reserved name), from a new process."""
    store = SqliteHistoryStore(tmp_path)
    store.record_link_operation(LinkOperation(workspace_key=WS, kind="link", at=T0, cluster_key="c1"))
    store.record_link_operation(LinkOperation(workspace_key=WS, kind="unlink", at=T0 + timedelta(days=1)))
    store.record_cluster_deletion(ClusterDeletion("c1", "sub", "westeurope", "prod", T0))
    store.close()

    history = SqliteHistoryStore(tmp_path).load()
    ops = history.link_ops_since(WS, T0 - timedelta(days=30))
    assert [(o.kind, o.at) for o in ops] == [("link", T0), ("unlink", T0 + timedelta(days=1))]
    assert ops[0].cluster_key == "c1"
    assert history.cluster_deletions[0].name == "prod"
    assert history.cluster_deletions[0].at == T0


def test_in_flight_operation_keeps_its_token_until_it_ends(tmp_path: Path) -> None:
    """Scenario: a cluster create was sent and its LRO token journaled; until it ends, a restarted apply
    sees it in flight with the token to resume; after it ends it is gone and the token erased."""
    store = SqliteHistoryStore(tmp_path)
    store.begin_operation(_op("create-prod"))
    assert store.load().in_flight[0].phase == "begin"
    store.record_operation_sent("create-prod", status_url="https://status/1", continuation_token="tok-1")

    reopened = SqliteHistoryStore(tmp_path)
    (op,) = reopened.load().in_flight
    assert (op.op_id, op.phase, op.status_url, op.continuation_token) == (
        "create-prod", "sent", "https://status/1", "tok-1",
    )
    assert reopened.running() == (op,)  # what the end of an apply asks, without the rest
    reopened.end_operation("create-prod", "done")
    assert reopened.load().in_flight == ()
    assert reopened.running() == ()
    assert reopened.operations()[0]["outcome"] == "done"
    assert all("tok-1" not in str(v) for row in reopened.operations() for v in row.values())


def test_begin_without_send_is_reported_as_outcome_unknown_material(tmp_path: Path) -> None:
    """Scenario: the apply died after journaling 'begin' of a link but before Azure answered; the next
    apply must see phase 'begin' (outcome unknown: re-observe, never blindly re-send, rule W3)."""
    store = SqliteHistoryStore(tmp_path)
    store.begin_operation(_op("link-ws1", "link"))
    (op,) = SqliteHistoryStore(tmp_path).load().in_flight
    assert (op.action, op.phase, op.continuation_token) == ("link", "begin", None)


def test_committed_entries_survive_sigkill(tmp_path: Path) -> None:
    """Scenario: a process journals an operation and is SIGKILLed right after; the entry is there."""
    code = (
        "import os, signal, sys\n"
        "from datetime import UTC, datetime\n"
        "from controller.model.history import InFlightOperation\n"
        "from controller.state.sqlite_store import SqliteHistoryStore\n"
        "s = SqliteHistoryStore(sys.argv[1])\n"
        "s.begin_operation(InFlightOperation('op', 'create', 't', None, datetime.now(UTC)))\n"
        "s.record_operation_sent('op', status_url='u', continuation_token='t')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    assert proc.returncode == -9
    (op,) = SqliteHistoryStore(tmp_path).load().in_flight
    assert (op.phase, op.continuation_token) == ("sent", "t")


def test_revisions_are_recorded_in_order(tmp_path: Path) -> None:
    """Scenario: the controller applied two git revisions; status shows them in order with summaries."""
    store = SqliteHistoryStore(tmp_path)
    store.record_revision(Revision("abc", T0, {"create": 1}))
    store.record_revision(Revision("def", T0 + timedelta(hours=1), {"link": 2}))
    got = [(r.revision, r.summary) for r in store.revisions()]
    assert got == [("abc", {"create": 1}), ("def", {"link": 2})]


def test_state_dir_flag_beats_env_beats_cwd(tmp_path: Path, monkeypatch: object) -> None:
    """Scenario: --state wins over $CMKCTL_STATE, which wins over ./.cmkctl."""

    mp: pytest.MonkeyPatch = monkeypatch  # type: ignore[assignment]
    mp.delenv(paths.ENV_VAR, raising=False)
    assert paths.state_dir(cwd=tmp_path) == tmp_path / ".cmkctl"
    mp.setenv(paths.ENV_VAR, str(tmp_path / "env"))
    assert paths.state_dir(cwd=tmp_path) == tmp_path / "env"
    assert paths.state_dir(tmp_path / "flag", cwd=tmp_path) == tmp_path / "flag"
    assert (tmp_path / "flag").is_dir()


def test_intent_and_baseline_of_an_apply_survive_a_new_process_latest_apply_wins(tmp_path: Path) -> None:
    """What `drift: report` compares with (the spec's intent and the live state an apply left) is in the
    journal, not in a side file: a rescheduled controller or a CI runner reads the same."""
    from controller.model.history import AppliedResource

    store = SqliteHistoryStore(tmp_path)
    first = AppliedResource("cluster:c1", "rev1", T0, {"capacity": 1200}, {"capacity": 1200, "tags": {}})
    store.record_applied([first])
    store.record_applied([AppliedResource("cluster:c1", "rev2", T0, {"capacity": 1300}, {"capacity": 1300})])
    store.record_applied([AppliedResource("workspace:w1", "rev2", T0, {"cluster_id": "c1"}, {"name": "w1"})])
    store.close()

    again = SqliteHistoryStore(tmp_path).load().applied_by_key()
    assert set(again) == {"cluster:c1", "workspace:w1"}
    assert again["cluster:c1"].revision == "rev2" and again["cluster:c1"].intent == {"capacity": 1300}
    assert again["workspace:w1"].baseline == {"name": "w1"}


def test_a_step_is_marked_sent_and_ended_by_its_id_not_by_scanning_the_journal(tmp_path: Path) -> None:
    """Scenario: a journal that already holds many past operations (a 40,000-link apply writes 40,000):
    marking one step sent or ended finds its rows through an index, so an apply's journal writes cost
    the same per step however long the journal is (a scan per step made an apply grow quadratically)."""
    import sqlite3

    store = SqliteHistoryStore(tmp_path)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # the statements the store itself runs
    store.begin_operation(_op("link:a"))
    store.record_operation_sent("link:a", status_url=None, continuation_token=None)
    store.end_operation("link:a", "done")
    store.close()
    updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 2
    db = sqlite3.connect(tmp_path / "history.sqlite")
    for sql in updates:
        plan = " ".join(str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "SCAN operations" not in plan and "USING INDEX" in plan, (sql, plan)
    db.close()


def test_a_journal_written_before_request_ids_opens_and_keeps_its_links(tmp_path: Path) -> None:
    """Scenario: a journal from before link operations carried their x-ms-client-request-id (rule W3
    identity) gets the column on open; its old links still count and new ones keep their id."""
    import sqlite3

    db = sqlite3.connect(tmp_path / "history.sqlite")
    db.executescript(
        """
        CREATE TABLE operations (seq INTEGER PRIMARY KEY AUTOINCREMENT, op_id TEXT NOT NULL, plan_id TEXT,
            action TEXT NOT NULL, target TEXT NOT NULL, phase TEXT NOT NULL, status_url TEXT,
            continuation_token TEXT, started TEXT NOT NULL, ended TEXT, outcome TEXT,
            detail TEXT NOT NULL DEFAULT '');
        CREATE TABLE link_operations (workspace_key TEXT NOT NULL, kind TEXT NOT NULL, at TEXT NOT NULL,
            cluster_key TEXT, source TEXT NOT NULL);
        """
    )
    db.execute("INSERT INTO link_operations VALUES (?, 'link', ?, NULL, 'journal')", (WS, T0.isoformat()))
    db.commit()
    db.close()

    store = SqliteHistoryStore(tmp_path)
    try:
        store.record_link_operation(LinkOperation(WS, "unlink", T0 + timedelta(hours=1), request_id="rq-1"))
        ops = store.load().link_operations
    finally:
        store.close()
    assert [(o.kind, o.request_id) for o in ops] == [("link", None), ("unlink", "rq-1")]


def test_a_reader_of_a_journal_whose_tables_are_not_there_yet_gets_an_error_naming_it(tmp_path: Path) -> None:
    """Scenario: a read-only reader (plan on a shared state) opens the journal while its writer is still
    creating it. It gets a CmkError naming the journal, not a raw SQLite error."""
    sqlite3.connect(tmp_path / "history.sqlite").close()  # the file exists, its tables do not yet
    store = SqliteHistoryStore(tmp_path, read_only=True)
    try:
        with pytest.raises(CmkError, match=r"history\.sqlite"):
            store.load()
    finally:
        store.close()
