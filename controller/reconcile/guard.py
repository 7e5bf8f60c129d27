"""A wrapper around the executor's Azure gateway: SIGTERM stops new operations, errors are classified.

Why at the gateway seam: the executor already journals every step and resumes LROs
from their tokens; the controller only needs (1) no *new* operation to start once shutdown began,
and no more waiting for operations already sent: Azure runs them on, their tokens are journaled
when sent, so the wait ends as `StillRunning` (the journal keeps them "sent") and the next start
resumes them; a pod stops within its grace period instead of after hours,
(2) to know what *kind* of error ended a step (terminal -> Stalled until the commit changes,
transient/busy -> retry soon), and (3) how many operations are in flight, for /metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from controller.azure import errors
from controller.azure.operations import Handle, OnSent, Precheck
from controller.execution.executor import Gateway
from controller.model.rules import Rule
from controller.planning.plan import Change

# Forbidden: a 403 is often a role or access policy granted minutes later (RBAC propagation); retried
# with the controller's backoff rather than stalling until a commit
RETRYABLE = (errors.Transient, errors.Busy, errors.OutcomeUnknown, errors.Forbidden)


class ShuttingDown(Exception):
    """Raised instead of starting a step once the controller was asked to stop."""

    def __init__(self) -> None:
        super().__init__("not started: the controller is shutting down (SIGTERM)")


_RESUMES = "the next start resumes it"


def _until_stopped(
    stop: threading.Event, what: str, fn: Callable[[], None], *, ours: bool = True
) -> None:
    """Run `fn` (a poll of an operation Azure accepted) until it returns or `stop` is set.

    On stop, raise StillRunning and leave the poll to a daemon thread that dies with the process:
    the operation's token is already journaled, so nothing is lost and nothing is sent again.
    `ours=False`: waiting for someone else's operation (rules C6, W5); nothing of ours was sent,
    so the stop is ShuttingDown."""
    if not ours and stop.is_set():
        raise ShuttingDown()
    if stop.is_set():
        raise errors.StillRunning(f"{what}: not waited for: the controller is stopping; {_RESUMES}")
    done = threading.Event()
    failure: list[BaseException] = []

    def poll() -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the waiting thread, re-raised there
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=poll, name="cmkctl-operation-wait", daemon=True).start()
    while not done.wait(0.2):
        if stop.is_set() and not ours:
            raise ShuttingDown()
        if stop.is_set():
            raise errors.StillRunning(
                f"{what}: still running in Azure when the controller stopped; journaled, {_RESUMES}"
            )
    if failure:
        raise failure[0]


class GuardedGateway:
    def __init__(self, inner: Gateway, stop: threading.Event, in_flight: Any = None) -> None:
        self.inner = inner
        self.stop = stop
        self.in_flight = in_flight  # a prometheus Gauge (inc/dec), or None
        self.errors: dict[str, BaseException] = {}  # change id -> last error seen for it
        self._handles: dict[int, Change] = {}
        self._lock = threading.Lock()

    def _note(self, change: Change, exc: BaseException) -> None:
        with self._lock:
            self.errors[change.id] = exc

    def precheck(self, change: Change) -> Precheck:
        if self.stop.is_set():
            exc = ShuttingDown()
            self._note(change, exc)
            raise exc
        try:
            return self.inner.precheck(change)
        except Exception as exc:
            self._note(change, exc)
            raise

    def wait_idle(self, change: Change, *, timeout: float) -> None:
        try:
            _until_stopped(
                self.stop, change.address, lambda: self.inner.wait_idle(change, timeout=timeout), ours=False
            )
        except Exception as exc:
            self._note(change, exc)
            raise

    def start(self, change: Change, on_sent: OnSent) -> Handle:
        if self.stop.is_set():
            exc = ShuttingDown()
            self._note(change, exc)
            raise exc
        try:
            handle = self.inner.start(change, on_sent)
        except Exception as exc:
            self._note(change, exc)
            raise
        with self._lock:
            self._handles[id(handle)] = change
        if self.in_flight is not None:
            self.in_flight.inc()
        return handle

    def wait(self, handle: Handle) -> None:
        with self._lock:
            change = self._handles.pop(id(handle), None)
        what = f"{change.action} {change.address}" if change is not None else "an operation"
        try:
            _until_stopped(self.stop, what, lambda: self.inner.wait(handle))
        except Exception as exc:
            if change is not None:
                self._note(change, exc)
            raise
        finally:
            if self.in_flight is not None:
                self.in_flight.dec()

    def verify(self, change: Change) -> None:
        try:
            self.inner.verify(change)
        except Exception as exc:
            self._note(change, exc)
            raise

    def resume(self, *, action: str, target: str, parameters: dict[str, Any], token: str) -> None:
        if self.in_flight is not None:
            self.in_flight.inc()
        try:
            _until_stopped(
                self.stop,
                f"{action} {target}",
                lambda: self.inner.resume(action=action, target=target, parameters=parameters, token=token),
            )
        finally:
            if self.in_flight is not None:
                self.in_flight.dec()

    def read_link(self, workspace_id: str) -> dict[str, Any] | None:
        return self.inner.read_link(workspace_id)

    def lifts_at(self, change_id: str, *, now: datetime, window: timedelta) -> datetime | None:
        """When the step's refusal lifts by the calendar, if it does: rule C4's lock end (the refusal
        states the lock, the cluster its last SKU update), or rule W3's window from now (the
        refusal means the workspace's link budget is spent; it is whole again one window later at
        the latest: the window Azure's text states, else the profile's). None: not by the calendar."""
        exc = self.errors.get(change_id)
        if not isinstance(exc, errors.RuleViolation):
            return None
        if exc.not_before is not None:
            return exc.not_before
        if exc.rule_id is Rule.W3:
            days = errors.window_days(exc.azure_message)
            return now + (timedelta(days=days) if days is not None else window)
        return None

    def retryable(self, change_id: str) -> bool:
        """True when the step's last error is worth retrying soon (not a rule or a terminal refusal)."""
        exc = self.errors.get(change_id)
        return isinstance(exc, (*RETRYABLE, ShuttingDown))
