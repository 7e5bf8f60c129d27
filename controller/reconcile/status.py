"""The controller's status: Flux-style conditions, revisions, drift and the last passes, as JSON.

Why Flux's shape: platform teams already read `Ready` / `Reconciling` / `Stalled` with a reason and a
message, and `lastAppliedRevision` vs `lastAttemptedRevision` tells at a glance whether the commit
they just merged has landed. The status is written once per pass (in the loop's `finally`), and read
by the HTTP server from another thread, hence the lock and the deep-copied snapshot.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

MAX_PASSES = 5


class Reason(StrEnum):
    SUCCEEDED = "ReconciliationSucceeded"
    PROGRESSING = "Progressing"
    DEFERRED = "ChangesDeferred"
    DRIFT = "DriftDetected"
    SUSPENDED = "Suspended"
    SOURCE = "SourceUnavailable"
    SPEC_INVALID = "SpecInvalid"
    OBSERVE = "ObserveFailed"
    LOCKED = "LockHeld"
    RETRYING = "RetryableFailure"
    FAILED = "ApplyFailed"
    BLOCKED = "ChangesBlocked"
    STOPPING = "ShuttingDown"
    STARTING = "Starting"


@dataclass(frozen=True)
class Condition:
    type: str  # Ready | Reconciling | Stalled
    status: bool
    reason: str
    message: str
    last_transition: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": "True" if self.status else "False",
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": self.last_transition.isoformat(),
        }


@dataclass
class PassRecord:
    """One pass, for the history in /status (and the JSON log line that ends the pass)."""

    started: datetime
    revision: str | None = None
    seconds: float = 0.0
    result: str = "running"  # applied | in-sync | reported | deferred | failed | stalled | ...
    outcome: str = ""  # the typed outcome: succeeded | deferred | drift | retry | stalled
    reason: str = ""
    message: str = ""
    applied: int = 0
    failed: int = 0
    deferred: int = 0
    drifted: int = 0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["started"] = self.started.isoformat()
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass
class Status:
    """Everything /status shows; mutate only through `update()` and read through `snapshot()`."""

    scope: str = ""  # source@ref:path: what this instance owns (one writer per scope)
    source: str = ""
    ref: str = ""
    path: str = ""
    mode: str = "apply"
    suspended: bool = False
    conditions: dict[str, Condition] = field(default_factory=dict)
    last_applied_revision: str | None = None
    last_attempted_revision: str | None = None
    drift: list[dict[str, Any]] = field(default_factory=list)
    # every field of a declared resource changed outside cmkctl since the last apply (the journal's
    # baseline vs this pass's reading, unmanaged fields included)
    changed_outside: list[dict[str, Any]] = field(default_factory=list)
    consecutive_failures: int = 0  # retry outcomes in a row: the backoff's exponent
    deferred: list[dict[str, Any]] = field(default_factory=list)
    next_not_before: datetime | None = None
    next_pass_at: datetime | None = None
    passes: deque[PassRecord] = field(default_factory=lambda: deque(maxlen=MAX_PASSES))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_condition(self, type_: str, status: bool, reason: str, message: str, now: datetime) -> None:
        """Keep lastTransitionTime when only the message changes (as Kubernetes conditions do)."""
        old = self.conditions.get(type_)
        since = old.last_transition if old is not None and old.status == status else now
        self.conditions[type_] = Condition(type_, status, reason, message, since)

    def set_outcome(
        self, *, ready: bool, reconciling: bool, stalled: bool, reason: str, message: str, now: datetime
    ) -> None:
        """The three conditions from one outcome: exactly one reason and message explain them all."""
        with self._lock:
            self.set_condition("Ready", ready, reason, message, now)
            self.set_condition(
                "Reconciling",
                reconciling,
                reason if reconciling else Reason.SUCCEEDED,
                message if reconciling else "",
                now,
            )
            self.set_condition(
                "Stalled", stalled, reason if stalled else Reason.SUCCEEDED, message if stalled else "", now
            )

    def record_pass(self, record: PassRecord) -> None:
        with self._lock:
            self.passes.append(record)

    def condition(self, type_: str) -> Condition | None:
        with self._lock:
            return self.conditions.get(type_)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy, safe to serialise while the loop keeps running."""
        with self._lock:
            return {
                "scope": self.scope,
                "source": {"url": self.source, "ref": self.ref, "path": self.path},
                "mode": self.mode,
                "suspended": self.suspended,
                "conditions": [c.to_json() for c in self.conditions.values()],
                "lastAppliedRevision": self.last_applied_revision,
                "lastAttemptedRevision": self.last_attempted_revision,
                "drift": copy.deepcopy(self.drift),
                "changedOutside": copy.deepcopy(self.changed_outside),
                "consecutiveFailures": self.consecutive_failures,
                "deferred": copy.deepcopy(self.deferred),
                "nextNotBefore": self.next_not_before.isoformat() if self.next_not_before else None,
                "nextPassAt": self.next_pass_at.isoformat() if self.next_pass_at else None,
                "passes": [p.to_json() for p in reversed(self.passes)],  # newest first
            }
