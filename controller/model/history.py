"""What happened before: the journal the planner reads (rule W3 link budget, C11 reserved names).

History is the union of our own journal, `associateDate` from cluster reads and the Activity Log;
the store that persists it lives in controller.state (SQLite) or controller.azure (blob).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class LinkOperation:
    """One link or unlink Azure accepted (rule W3), or a witness of one (`associateDate`)."""

    workspace_key: str  # ids.id_key(workspace id)
    kind: str  # "link" | "unlink"
    at: datetime
    cluster_key: str | None = None
    source: str = "journal"  # journal | associateDate | activityLog
    # Identity of the operation in Azure: the Activity Log's resource + operationId. One ARM deployment
    # shares one correlationId across every workspace it links, so that is never an identity.
    op_id: str | None = None
    # The x-ms-client-request-id the request carried: the journal and the Activity Log
    # (httpRequest.clientRequestId) both know it, so one operation seen in both counts once.
    request_id: str | None = None


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
    # the x-ms-client-request-id a link/unlink is sent with, journaled before sending: the Activity Log
    # shows it, so a restart can tell the operation apart from any other (rule W3)
    request_id: str | None = None


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
    # link_operations by workspace key, built on the first per-workspace question: a plan or report asks
    # once per workspace, and scanning every operation each time would grow with the square of the fleet
    _by_workspace: dict[str, tuple[LinkOperation, ...]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def applied_by_key(self) -> dict[str, AppliedResource]:
        return {a.key: a for a in self.applied}

    def link_ops_since(self, workspace_key: str, since: datetime) -> list[LinkOperation]:
        """Rule W3: the distinct operations on one workspace after a time."""
        index = self._by_workspace
        if index is None:
            grouped: dict[str, list[LinkOperation]] = {}
            for op in self.link_operations:
                grouped.setdefault(op.workspace_key, []).append(op)
            index = {key: tuple(ops) for key, ops in grouped.items()}
            object.__setattr__(self, "_by_workspace", index)  # a cache of immutable data (frozen class)
        ops = [op for op in index.get(workspace_key, ()) if op.at > since]
        return sorted(_dedupe_links(tuple(ops)), key=lambda o: o.at)

    def merged(self, other: History) -> History:
        return History(
            link_operations=_dedupe_links(self.link_operations + other.link_operations),
            cluster_deletions=_dedupe_deletions(self.cluster_deletions + other.cluster_deletions),
            in_flight=self.in_flight + other.in_flight,
            applied=self.applied + other.applied,
        )


WITNESS_MATCH = timedelta(hours=2)  # a link ends up to ~90 minutes after it was accepted


def _dedupe_links(ops: tuple[LinkOperation, ...]) -> tuple[LinkOperation, ...]:
    """Each operation counts once, however many sources saw it (rule W3).

    Operations are told apart by identity, never by closeness in time: two failed attempts an hour
    apart are two operations. An Activity Log operation is one per `op_id`; the journal's record of it
    carries the same `request_id`. A journal entry without a request id stands for one Activity Log
    operation of the same kind within two hours (one to one), else for itself. An `associateDate` is
    only a witness of a link: it counts when no link near it is known.
    """
    by_ws: dict[str, list[LinkOperation]] = {}
    for op in ops:
        by_ws.setdefault(op.workspace_key, []).append(op)
    out: list[LinkOperation] = []
    for group in by_ws.values():
        out.extend(_dedupe_workspace(group))
    return tuple(sorted(out, key=lambda o: (o.at, o.workspace_key, o.kind)))


def _dedupe_workspace(ops: list[LinkOperation]) -> list[LinkOperation]:
    unique = set(ops)
    if len(unique) == 1:  # most workspaces of a fleet: one link or one witness of it, nothing to match
        return list(unique)
    ops = sorted(unique, key=lambda o: (o.at, o.kind, o.source, o.op_id or "", o.request_id or ""))
    kept: dict[str, LinkOperation] = {}
    for op in ops:
        if op.op_id is not None:
            kept.setdefault(op.op_id, op)
    out = list(kept.values())
    by_request = {op.request_id: op for op in out if op.request_id is not None}
    unmatched = list(out)
    for op in ops:
        if op.op_id is not None or op.source == "associateDate":
            continue
        if op.request_id is not None:
            twin = by_request.get(op.request_id)
            if twin is None:
                by_request[op.request_id] = op
                out.append(op)
            elif twin in unmatched:
                unmatched.remove(twin)
            continue
        twin = next((k for k in unmatched if k.kind == op.kind and abs(k.at - op.at) < WITNESS_MATCH), None)
        if twin is not None:
            unmatched.remove(twin)
        else:
            out.append(op)
    for w in ops:
        if w.source != "associateDate":
            continue
        near = (i for i, k in enumerate(out) if k.kind == "link" and abs(k.at - w.at) < WITNESS_MATCH)
        i = next(near, None)
        if i is None:
            out.append(w)
        elif w.at < out[i].at:
            out[i] = dataclasses.replace(out[i], at=w.at)  # Azure's own time for the link
    return out


def _dedupe_deletions(dels: tuple[ClusterDeletion, ...]) -> tuple[ClusterDeletion, ...]:
    """One soft-deleted cluster per id (rule C11: the name stays reserved, C2: the slot stays taken):
    the journal and the Activity Log each record the same deletion, at slightly different times."""
    out: dict[str, ClusterDeletion] = {}
    for d in sorted(dels, key=lambda d: d.at):
        prev = out.get(d.cluster_key)
        if prev is not None and d.at - prev.at < timedelta(days=1) and not d.location and prev.location:
            d = ClusterDeletion(d.cluster_key, d.subscription, prev.location, d.name, d.at)
        out[d.cluster_key] = d
    return tuple(sorted(out.values(), key=lambda d: d.at))


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

    def running(self) -> tuple[InFlightOperation, ...]:
        """`load().in_flight` alone: the end of an apply asks only this, with 40,000 resources'
        entries and link operations in the journal that it need not read."""
        ...

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
