"""The journal in one SQLite file (WAL, every write its own transaction) under the state directory.

Why a journal: operations on clusters and links take minutes to hours and each link costs rule W3
budget, so the executor records what it is about to do, the LRO handle (before waiting), and the
outcome. After a crash `load().in_flight` tells the next apply what to resume instead of re-issuing.
Entries hold ids, times, outcomes and Azure's error text; never credentials (the continuation token
is azure-core's JSON, from which it strips auth headers).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
# written beside the journal once it exists, with how many entries it holds: a journal that then goes
# missing or empty, or holds fewer entries (its write-ahead log `-wal` lost while it held committed
# entries, an older copy restored), is damage, not a first run: its in-flight operations and link history
# (rule W3) would be lost silently
MARKER = "history.sqlite.written"
REBUILD = "cmkctl state rebuild -f SPEC --state {state}"
_TABLES = ("operations", "link_operations", "cluster_deletions", "applied_resources", "revisions")


def _remedy(path: Path) -> str:
    return (
        f"Restore it from a backup (with its {path.name}-wal file), or rebuild it from what Azure shows: "
        f"{REBUILD.format(state=path.parent)} (the link history comes back from the Activity Log; "
        "operations that were running are not known, and apply reads them back from Azure before it "
        "sends anything)"
    )


def marked_entries(path: Path) -> int | None:
    """The entry count the marker beside `path` records; None without a marker, 0 if it names none."""
    try:
        text = path.with_name(MARKER).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        value = json.loads(text or "{}").get("entries", 0)
    except (ValueError, AttributeError):
        return 0
    return value if isinstance(value, int) and value >= 0 else 0


def check_not_lost(path: Path) -> None:
    """Refuse a missing or 0-byte journal where the marker says one was written."""
    marker = path.with_name(MARKER)
    if marked_entries(path) is not None and (not path.exists() or path.stat().st_size == 0):
        raise CmkError(
            f"{path}: the journal is missing or empty, but {marker.name} beside it says one was written "
            f"here; its in-flight operations and link history (rule W3) would be lost. {_remedy(path)}"
        )


def check_complete(path: Path, count: Callable[[], int], *, wal_unread: bool = False) -> int:
    """Refuse a journal holding fewer entries than its marker records (lost `-wal`, older copy); else
    its entry count. The marker is read first: a writer commits an entry before it raises the marker,
    so a reader racing it never counts fewer entries than the marker it read."""
    marked = marked_entries(path) or 0
    entries = count()
    if entries >= marked:
        return entries
    if wal_unread:
        raise CmkError(
            f"{path}: its latest entries are in {path.name}-wal, which cannot be read from a read-only "
            f"directory ({entries} of the {marked} entries {MARKER} records are readable); run plan on a "
            "writable copy of the state directory, or let the last apply finish there"
        )
    raise CmkError(
        f"{path}: the journal holds {entries} entries, but {MARKER} beside it records {marked}: entries "
        f"were lost (its write-ahead log {path.name}-wal deleted or not copied with it, or an older copy "
        f"restored), and with them in-flight operations and link history (rule W3). {_remedy(path)}"
    )


def mark(path: Path, entries: int) -> None:
    """Record beside the journal that it exists and how many entries it holds (atomically replaced)."""
    marker = path.with_name(MARKER)
    tmp = marker.with_name(f"{MARKER}.tmp")
    tmp.write_text(json.dumps({"entries": entries}), encoding="utf-8")
    tmp.replace(marker)


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
-- serve (phase != 'ended' is no prefix): without it every apply step would scan the whole journal
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


def _in_flight(rows: list[Any]) -> tuple[InFlightOperation, ...]:
    return tuple(
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
        for o, act, t, u, st, p, tok, ph, r in rows
    )


def journal_error(path: Path, exc: BaseException) -> CmkError:
    """A journal that cannot be opened or written, as a message with its path and the remedy."""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        return CmkError(
            f"{path}: the journal is damaged ({exc}); nothing was changed. {_remedy(path)}; it moves the "
            "damaged file aside"
        )
    if "readonly" in text or "read-only" in text or isinstance(exc, PermissionError):
        return CmkError(
            f"{path}: the state directory {path.parent} is read-only ({exc}); apply needs to write its "
            "journal there: make it writable, or give apply a writable --state (plan works on a "
            "read-only one)"
        )
    if "disk is full" in text or "no space" in text:
        return CmkError(
            f"{path}: the disk is full ({exc}); free space on the disk holding {path.parent} and run "
            "again (what was journaled before stays; apply resumes from it)"
        )
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
        self._wal_unread = False
        self._count = 0  # entries in the journal, kept by the one writer (the lock) as it adds them
        try:
            check_not_lost(self.path)
            if read_only:
                self._db = self._open_read_only()
                check_complete(self.path, self._entries, wal_unread=self._wal_unread)
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            # WAL + FULL sync: a committed journal entry survives SIGKILL and power loss.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._mutex:
                self._db.executescript(_SCHEMA)
                for table in ("operations", "link_operations"):  # journals written before the column
                    columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                    if "request_id" not in columns:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN request_id TEXT")
            self._count = check_complete(self.path, self._entries)
            mark(self.path, self._count)
        except (sqlite3.Error, OSError) as exc:
            self._close_quietly()
            raise journal_error(self.path, exc) from None
        except CmkError:
            self._close_quietly()
            raise

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _entries(self) -> int:
        """Rows in the journal: entries are only ever added (or replaced in place), never removed, so
        fewer than the marker records means entries were lost."""
        total = 0
        for table in _TABLES:
            try:
                total += self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
            except sqlite3.OperationalError:  # a table its lost write-ahead log held
                continue
        return int(total)

    def _open_read_only(self) -> sqlite3.Connection:
        """mode=ro sees the WAL's latest entries; where the directory is read-only and no -shm file
        exists SQLite cannot open it so, and immutable (the checkpointed journal) is what can be read."""
        base = self.path.resolve().as_uri()
        for query in ("mode=ro", "mode=ro&immutable=1"):
            db = sqlite3.connect(f"{base}?{query}", uri=True, check_same_thread=False, isolation_level=None)
            try:
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
                self._wal_unread = "immutable" in query and self.path.with_name(f"{FILENAME}-wal").exists()
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
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    cur = self._db.execute(sql, args)
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:  # SQLite already rolled back after some errors (full)
                        self._db.execute("ROLLBACK")
                    raise
                if sql.lstrip().upper().startswith("INSERT"):
                    self._count += max(cur.rowcount, 0)
                    mark(self.path, self._count)
            except (sqlite3.Error, OSError) as exc:
                raise journal_error(self.path, exc) from None
            return cur.rowcount

    # -- HistoryStore ---------------------------------------------------------------------------

    def load(self) -> History:
        try:
            with self._mutex:
                links = self._db.execute(
                    "SELECT workspace_key, kind, at, cluster_key, source, request_id FROM link_operations "
                    "ORDER BY at"
                ).fetchall()
                deletions = self._db.execute(
                    "SELECT cluster_key, subscription, location, name, at FROM cluster_deletions ORDER BY at"
                ).fetchall()
                open_ops = self._open_operations()
                applied = self._db.execute(
                    "SELECT key, revision, at, intent, baseline FROM applied_resources ORDER BY key"
                ).fetchall()
        except sqlite3.Error as exc:  # e.g. read while its writer is still creating its tables
            raise journal_error(self.path, exc) from None
        return History(
            link_operations=tuple(
                LinkOperation(workspace_key=w, kind=k, at=_dt(a), cluster_key=c, source=s, request_id=r)
                for w, k, a, c, s, r in links
            ),
            cluster_deletions=tuple(
                ClusterDeletion(cluster_key=k, subscription=s, location=loc, name=n, at=_dt(a))
                for k, s, loc, n, a in deletions
            ),
            in_flight=_in_flight(open_ops),
            applied=tuple(
                AppliedResource(key=k, revision=r, at=_dt(a), intent=json.loads(i), baseline=json.loads(b))
                for k, r, a, i, b in applied
            ),
        )

    def _open_operations(self) -> list[Any]:
        return self._db.execute(
            "SELECT op_id, action, target, status_url, started, plan_id, continuation_token, phase, "
            "request_id FROM operations WHERE phase != 'ended' ORDER BY seq"
        ).fetchall()

    def running(self) -> tuple[InFlightOperation, ...]:
        try:
            with self._mutex:
                open_ops = self._open_operations()
        except sqlite3.Error as exc:
            raise journal_error(self.path, exc) from None
        return _in_flight(open_ops)

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
        if not resources:
            return
        # rows made as SQLite takes them: 40,000 resources' JSON at once would be the apply's peak
        rows = (
            (
                r.key,
                r.revision,
                _ts(r.at),
                json.dumps(r.intent, sort_keys=True, default=str),
                json.dumps(r.baseline, sort_keys=True, default=str),
            )
            for r in resources
        )
        with self._mutex:  # one transaction: a crash leaves the previous apply's records or these
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO applied_resources VALUES (?, ?, ?, ?, ?)", rows
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:  # SQLite already rolled back after some errors (full)
                        self._db.execute("ROLLBACK")
                    raise
                self._count = self._entries()  # replaced rows are not new entries: counted once per apply
                mark(self.path, self._count)
            except (sqlite3.Error, OSError) as exc:
                raise journal_error(self.path, exc) from None

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


def rebuild(directory: str | Path, history: History, *, now: datetime | None = None) -> Path | None:
    """Start the journal anew from `history` (what Azure shows); call under the writer lock.

    A journal that opens whole is refused (a rebuild would drop its in-flight operations). A damaged,
    lost or incomplete one is moved aside (with its -wal and -shm files) as `history.sqlite.damaged-<UTC>`;
    returns where, if there was one.
    """
    path = Path(directory) / FILENAME
    existed = path.exists()
    try:
        store = SqliteHistoryStore(directory)
    except CmkError:
        store = None
    if store is not None:
        if existed:
            entries = store._entries()
            store.close()
            raise CmkError(
                f"{path}: the journal is whole ({entries} entries); nothing to rebuild (a rebuild would drop "
                "the operations it has in flight)"
            )
        aside = None
    else:
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"{FILENAME}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = path.with_name(f"{FILENAME}{suffix}")
            if part.exists():
                part.replace(aside.with_name(f"{aside.name}{suffix}"))
        path.with_name(MARKER).unlink(missing_ok=True)
        store = SqliteHistoryStore(directory)
    try:
        for op in history.link_operations:
            store.record_link_operation(op)
        for deletion in history.cluster_deletions:
            store.record_cluster_deletion(deletion)
    finally:
        store.close()
    return aside if existed else None
