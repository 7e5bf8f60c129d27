"""What happened before: the journal the planner reads (rule W3 link budget, C11 reserved names).

History is the union of our own journal, `associateDate` from cluster reads and the Activity Log;
the store that persists it lives in controller.state (SQLite) or controller.azure (blob).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class LinkOperation:
    workspace_key: str  # ids.id_key(workspace id)
    kind: str  # "link" | "unlink"
    at: datetime
    cluster_key: str | None = None
    source: str = "journal"  # journal | associateDate | activityLog


@dataclass(frozen=True, slots=True)
class ClusterDeletion:
    """Rule C11: the name stays reserved (and the slot counted by some profiles) for 14 days."""

    cluster_key: str
    subscription: str
    location: str
    name: str
    at: datetime


@dataclass(frozen=True, slots=True)
class InFlightOperation:
    """A long-running operation we started and must resume, never re-issue."""

    op_id: str  # the plan step id
    action: str
    target: str  # ARM id
    status_url: str | None
    started: datetime
    plan_id: str | None = None
    # azure-core continuation token (JSON; azure-core strips auth headers from it), journaled BEFORE
    # waiting so a restarted apply resumes polling instead of re-issuing
    continuation_token: str | None = None
    # "begin": journaled but maybe not sent; "sent": Azure accepted it (token known)
    phase: str = "begin"


@dataclass(frozen=True, slots=True)
class AppliedResource:
    """What the last apply left on one resource, so `drift: report` can tell hand-made from intended.

    `intent`: the fields the spec manages, as the applied spec declared them (a field whose spec value
    differs now was changed in git, and is planned). `baseline`: the whole live resource read right
    after that apply (canonical JSON, unmanaged fields too): a field that differs from it now was
    changed outside cmkctl. Written by every apply (CI and the controller) to the shared journal.
    """

    key: str  # "cluster:<id key>" | "workspace:<id key>"
    revision: str
    at: datetime
    intent: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class History:
    link_operations: tuple[LinkOperation, ...] = ()
    cluster_deletions: tuple[ClusterDeletion, ...] = ()
    in_flight: tuple[InFlightOperation, ...] = ()
    applied: tuple[AppliedResource, ...] = ()  # our journal only; never from Azure

    def applied_by_key(self) -> dict[str, AppliedResource]:
        return {a.key: a for a in self.applied}

    def link_ops_since(self, workspace_key: str, since: datetime) -> list[LinkOperation]:
        """Rule W3: distinct operations on one workspace since a time (deduplicated by kind+minute)."""
        seen: dict[tuple[str, str], LinkOperation] = {}
        for op in self.link_operations:
            if op.workspace_key == workspace_key and op.at > since:
                seen.setdefault((op.kind, op.at.strftime("%Y%m%d%H%M")), op)
        return sorted(seen.values(), key=lambda o: o.at)

    def merged(self, other: History) -> History:
        return History(
            link_operations=_dedupe_links(self.link_operations + other.link_operations),
            cluster_deletions=tuple({(d.cluster_key, d.at): d for d in
                                     self.cluster_deletions + other.cluster_deletions}.values()),
            in_flight=self.in_flight + other.in_flight,
            applied=self.applied + other.applied,
        )


def _dedupe_links(ops: tuple[LinkOperation, ...]) -> tuple[LinkOperation, ...]:
    """The same link seen in the journal and as associateDate counts once (within 2 hours).

    Linear after the sort (a 40,000-workspace fleet has 40,000 associateDates): ops are visited in time
    order, so the only kept op of the same workspace and kind that can be within 2 hours is the last one.
    """
    out: list[LinkOperation] = []
    last: dict[tuple[str, str], datetime] = {}
    for op in sorted(ops, key=lambda o: o.at):
        key = (op.workspace_key, op.kind)
        prev = last.get(key)
        if prev is not None and abs(prev - op.at) < timedelta(hours=2):
            continue
        last[key] = op.at
        out.append(op)
    return tuple(out)


@dataclass
class Revision:
    """An applied spec revision, for the controller's status."""

    revision: str
    applied_at: datetime
    summary: dict[str, int] = field(default_factory=dict)


class HistoryStore(Protocol):
    """Persistence for history.

    Implementations: controller.state (SQLite, local) and controller.azure.blob_store (azureblob).
    """

    def load(self) -> History: ...

    def record_link_operation(self, op: LinkOperation) -> None: ...

    def record_cluster_deletion(self, deletion: ClusterDeletion) -> None: ...

    def begin_operation(self, op: InFlightOperation) -> None: ...

    def end_operation(self, op_id: str, outcome: str, detail: str = "") -> None: ...

    def record_revision(self, revision: Revision) -> None: ...

    def record_applied(self, resources: Sequence[AppliedResource]) -> None:
        """Replace the intent and baseline of these resources (one entry per key: the latest apply)."""
        ...

    def record_operation_sent(
        self, op_id: str, *, status_url: str | None, continuation_token: str | None
    ) -> None:
        """Journal the LRO handle of a begun operation, before anyone waits on it (crash safety)."""
        ...


class WriterLock(Protocol):
    """One writer at a time per state (file lock locally, blob lease for azureblob).

    `acquire` waits up to `timeout` seconds and raises controller.errors.LockHeldError naming the
    holder; `release` is idempotent.
    """

    def acquire(self, *, timeout: float) -> None: ...

    def release(self) -> None: ...

    def holder(self) -> str | None:
        """Who holds it now, for messages ("cmkctl apply, pid 42 on ci-7, since 05:01Z"), if known."""
        ...
