"""The journal in one SQLite file (WAL, every write its own transaction) under the state directory.

Why a journal: operations on clusters and links take minutes to hours and each link costs rule W3
budget, so the executor records what it is about to do, the LRO handle (before waiting), and the
outcome. After a crash `load().in_flight` tells the next apply what to resume instead of re-issuing.
Entries hold ids, times, outcomes and Azure's error text; never credentials (the continuation token
is azure-core's JSON, from which it strips auth headers).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from controller.errors import CmkError
from controller.model.history import (
    AppliedResource,
    ClusterDeletion,
    History,
    InFlightOperation,
    LinkOperation,
    Revision,
)

FILENAME = "history.sqlite"
# written beside the journal once it exists: a journal that then goes missing or empty is damage, not a
# first run (its in-flight operations and W3 history would be lost silently)
MARKER = "history.sqlite.written"


def check_not_lost(path: Path) -> None:
    """Refuse a missing or 0-byte journal where the marker says one was written."""
    marker = path.with_name(MARKER)
    if marker.exists() and (not path.exists() or path.stat().st_size == 0):
        raise CmkError(
            f"{path}: the journal is missing or empty, but {marker.name} beside it says one was written "
            "here; its in-flight operations and link history (rule W3) would be lost. Restore it from a "
            f"backup, or start a new journal from what Azure shows: delete {marker} and run again (link "
            "history comes back from the Activity Log; running operations are read back before anything "
            "is sent)"
        )

_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op_id TEXT NOT NULL,
    plan_id TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    phase TEXT NOT NULL,              -- begin | sent | ended
    status_url TEXT,
    continuation_token TEXT,
    started TEXT NOT NULL,
    ended TEXT,
    outcome TEXT,                     -- done | skipped | failed | abandoned ...
    detail TEXT NOT NULL DEFAULT '',
    request_id TEXT                   -- x-ms-client-request-id of a link/unlink (rule W3 identity)
);
CREATE INDEX IF NOT EXISTS operations_open ON operations (phase, op_id);
-- one step's rows: marking it sent or ended looks them up by op_id, which operations_open cannot
-- serve (phase != 'ended' is no prefix): without this every apply step scanned the whole journal
CREATE INDEX IF NOT EXISTS operations_by_id ON operations (op_id);
CREATE TABLE IF NOT EXISTS link_operations (
    workspace_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    cluster_key TEXT,
    source TEXT NOT NULL,
    request_id TEXT
);
CREATE TABLE IF NOT EXISTS cluster_deletions (
    cluster_key TEXT NOT NULL,
    subscription TEXT NOT NULL,
    location TEXT NOT NULL,
    name TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS applied_resources (
    key TEXT PRIMARY KEY,             -- cluster:<id key> | workspace:<id key>
    revision TEXT NOT NULL,
    at TEXT NOT NULL,
    intent TEXT NOT NULL,             -- JSON: the spec's managed fields at that apply
    baseline TEXT NOT NULL            -- JSON: the live resource read right after it
);
CREATE TABLE IF NOT EXISTS revisions (
    revision TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    summary TEXT NOT NULL
);
"""


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def journal_error(path: Path, exc: BaseException) -> CmkError:
    """A journal that cannot be opened or written, as a message with its path and the remedy."""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        return CmkError(
            f"{path}: the journal is damaged ({exc}); nothing was changed. Move it aside "
            f"(mv {path} {path}.damaged) and run apply again: it starts a new journal, and the link "
            "history comes back from Azure's Activity Log (rule W3); operations that were in flight are "
            "read back from Azure before anything is sent"
        )
    if "readonly" in text or "read-only" in text or isinstance(exc, PermissionError):
        return CmkError(f"{path}: the state directory is read-only ({exc}); apply needs to write its "
                        "journal: give it a writable --state (plan works on a read-only one)")
    if "disk is full" in text or "no space" in text:
        return CmkError(f"{path}: the disk is full ({exc}); free space there and run again")
    return CmkError(f"{path}: cannot open the journal ({exc}); check the path and its permissions")


class SqliteHistoryStore:
    """HistoryStore on SQLite; safe to share between the executor's worker threads."""

    def __init__(
        self, directory: str | Path, *, now: Callable[[], datetime] | None = None, read_only: bool = False
    ) -> None:
        """`read_only`: only `load()` (plan on a read-only state directory); nothing is created."""
        self.path = Path(directory) / FILENAME
        self._now = now or (lambda: datetime.now(UTC))
        self._mutex = threading.Lock()
        try:
            check_not_lost(self.path)
            if read_only:
                self._db = self._open_read_only()
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            # WAL + FULL sync: a committed journal entry survives SIGKILL and power loss.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._mutex:
                self._db.executescript(_SCHEMA)
            self.path.with_name(MARKER).touch()
        except (sqlite3.Error, OSError) as exc:
            raise journal_error(self.path, exc) from None
            for table in ("operations", "link_operations"):  # journals written before the column existed
                columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if "request_id" not in columns:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN request_id TEXT")

    def _open_read_only(self) -> sqlite3.Connection:
        """mode=ro sees the WAL's latest entries; where the directory is read-only and no -shm file
        exists SQLite cannot open it so, and immutable (the checkpointed journal) is what can be read."""
        base = self.path.resolve().as_uri()
        for query in ("mode=ro", "mode=ro&immutable=1"):
            db = sqlite3.connect(f"{base}?{query}", uri=True, check_same_thread=False, isolation_level=None)
            try:
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return db
            except sqlite3.OperationalError:
                db.close()
                if "immutable" in query:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._mutex:
            self._db.close()

    def _write(self, sql: str, args: tuple[object, ...]) -> int:
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(sql, args)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return cur.rowcount

    # -- HistoryStore ---------------------------------------------------------------------------

    def load(self) -> History:
        with self._mutex:
            links = self._db.execute(
                "SELECT workspace_key, kind, at, cluster_key, source, request_id FROM link_operations "
                "ORDER BY at"
            ).fetchall()
            deletions = self._db.execute(
                "SELECT cluster_key, subscription, location, name, at FROM cluster_deletions ORDER BY at"
            ).fetchall()
            open_ops = self._db.execute(
                "SELECT op_id, action, target, status_url, started, plan_id, continuation_token, phase, "
                "request_id FROM operations WHERE phase != 'ended' ORDER BY seq"
            ).fetchall()
            applied = self._db.execute(
                "SELECT key, revision, at, intent, baseline FROM applied_resources ORDER BY key"
            ).fetchall()
        return History(
            link_operations=tuple(
                LinkOperation(workspace_key=w, kind=k, at=_dt(a), cluster_key=c, source=s, request_id=r)
                for w, k, a, c, s, r in links
            ),
            cluster_deletions=tuple(
                ClusterDeletion(cluster_key=k, subscription=s, location=loc, name=n, at=_dt(a))
                for k, s, loc, n, a in deletions
            ),
            in_flight=tuple(
                InFlightOperation(
                    op_id=o,
                    action=act,
                    target=t,
                    status_url=u,
                    started=_dt(st),
                    plan_id=p,
                    continuation_token=tok,
                    phase=ph,
                    request_id=r,
                )
                for o, act, t, u, st, p, tok, ph, r in open_ops
            ),
            applied=tuple(
                AppliedResource(key=k, revision=r, at=_dt(a), intent=json.loads(i), baseline=json.loads(b))
                for k, r, a, i, b in applied
            ),
        )

    def record_link_operation(self, op: LinkOperation) -> None:
        self._write(
            "INSERT INTO link_operations (workspace_key, kind, at, cluster_key, source, request_id) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (op.workspace_key, op.kind, _ts(op.at), op.cluster_key, op.source, op.request_id),
        )

    def record_cluster_deletion(self, deletion: ClusterDeletion) -> None:
        self._write(
            "INSERT INTO cluster_deletions VALUES (?, ?, ?, ?, ?)",
            (deletion.cluster_key, deletion.subscription, deletion.location, deletion.name, _ts(deletion.at)),
        )

    def begin_operation(self, op: InFlightOperation) -> None:
        self._write(
            "INSERT INTO operations (op_id, plan_id, action, target, phase, status_url, continuation_token,"
            " started, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                op.op_id,
                op.plan_id,
                op.action,
                op.target,
                op.phase,
                op.status_url,
                op.continuation_token,
                _ts(op.started),
                op.request_id,
            ),
        )

    def record_operation_sent(
        self, op_id: str, *, status_url: str | None, continuation_token: str | None
    ) -> None:
        self._write(
            "UPDATE operations SET phase = 'sent', status_url = ?, continuation_token = ? "
            "WHERE seq = (SELECT MAX(seq) FROM operations WHERE op_id = ? AND phase != 'ended')",
            (status_url, continuation_token, op_id),
        )

    def end_operation(self, op_id: str, outcome: str, detail: str = "") -> None:
        # The token is dropped once the operation ended: nothing left to resume, nothing to leak.
        self._write(
            "UPDATE operations SET phase = 'ended', outcome = ?, detail = ?, ended = ?, "
            "continuation_token = NULL WHERE op_id = ? AND phase != 'ended'",
            (outcome, detail, _ts(self._now()), op_id),
        )

    def record_revision(self, revision: Revision) -> None:
        self._write(
            "INSERT INTO revisions VALUES (?, ?, ?)",
            (revision.revision, _ts(revision.applied_at), json.dumps(revision.summary, sort_keys=True)),
        )

    def record_applied(self, resources: Sequence[AppliedResource]) -> None:
        rows = [
            (
                r.key,
                r.revision,
                _ts(r.at),
                json.dumps(r.intent, sort_keys=True, default=str),
                json.dumps(r.baseline, sort_keys=True, default=str),
            )
            for r in resources
        ]
        if not rows:
            return
        with self._mutex:  # one transaction: a crash leaves the previous apply's records or these
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO applied_resources VALUES (?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- reading the journal (status, tests) ----------------------------------------------------

    def operations(self) -> list[dict[str, str | None]]:
        """Every journaled operation, oldest first (without tokens: this is for display)."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT op_id, plan_id, action, target, phase, started, ended, outcome, detail "
                "FROM operations ORDER BY seq"
            ).fetchall()
        keys = ("op_id", "plan_id", "action", "target", "phase", "started", "ended", "outcome", "detail")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def revisions(self) -> list[Revision]:
        with self._mutex:
            rows = self._db.execute(
                "SELECT revision, applied_at, summary FROM revisions ORDER BY rowid"
            ).fetchall()
        return [Revision(revision=r, applied_at=_dt(a), summary=json.loads(s)) for r, a, s in rows]
