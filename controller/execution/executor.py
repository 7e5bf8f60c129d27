"""Applies a Plan: walks its DAG, journals every step, resumes what a crash left running.

Order per step: journal "begin" -> pre-check (skip what is already done) -> send ->
journal the LRO token -> wait -> verify against its parameters -> journal "done" (+ link time, rule W3).

A step runs in two halves: `start` (journal, pre-check, send, journal the token) and `finish` (verify,
journal the result). Between them the operation is only an entry in the gateway's watch
(`when_done`), which calls back when Azure has ended it: 40,000 links of 90 minutes in flight cost
memory, not 40,000 threads. A few workers (`parallelism` + a margin) run the halves, taking work
round-robin per subscription so one subscription waiting for its write budget never starves another.

* Parallel across independent branches (`parallelism` requests at once), serialised per cluster for the
  cluster's own operations (C6) and per workspace for links, unlinks and BYOS (W5): a step holds the
  locks of what it touches, taken in sorted order so two steps can never deadlock. Links into one
  cluster run in parallel (each is its workspace's operation).
* A failed step marks its descendants "skipped: upstream failed"; only root causes are errors.
* Deferred items are not run; the result repeats their dates.
* Transient errors (429 with Retry-After, 5xx, resets) are retried with backoff (tenacity, sleep
  injected). azure-core does not retry 429 on PATCH, so the Transient surfaces here and we retry.
* Busy (C6/W5) waits for the running operation and tries again within `busy_timeout`.
* "Outcome unknown" (sent, no answer) never re-sends blindly: every retry starts with a fresh pre-check
  that re-reads the target, so a link that did go through is found, not sent twice (rule W3).
* Rule violations and terminal errors stop the branch with Azure's code and message verbatim.
"""

from __future__ import annotations

import functools
import queue
import sys
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from controller.azure import errors
from controller.azure.operations import Handle, OnSent, Precheck
from controller.errors import CmkError
from controller.execution.progress import NullProgress, Progress
from controller.model import ids
from controller.model.history import (
    ClusterDeletion,
    HistoryStore,
    InFlightOperation,
    LinkOperation,
)
from controller.planning.plan import (
    Action,
    Change,
    DeleteParams,
    LinkParams,
    LockScope,
    Plan,
    UnlinkParams,
)


class Gateway(Protocol):
    """What the executor needs from Azure (controller.azure.operations.Operations implements it)."""

    def precheck(self, change: Change) -> Precheck: ...

    def wait_idle(self, change: Change, *, timeout: float) -> None: ...

    def start(self, change: Change, on_sent: OnSent) -> Handle: ...

    def wait(self, handle: Handle) -> None: ...

    def verify(self, change: Change) -> None: ...

    def resume(self, *, action: str, target: str, parameters: dict[str, Any], token: str) -> None: ...

    def read_link(self, workspace_id: str) -> dict[str, Any] | None: ...


@runtime_checkable
class Watching(Protocol):
    """A gateway that follows an accepted operation without a thread: `on_end(None)` when it ended
    well, else its error (controller.azure.operations.Operations implements it). A gateway without it
    is waited on with `wait`, one thread per operation."""

    def when_done(self, handle: Handle, on_end: Callable[[errors.AzureError | None], None]) -> None: ...


class StepStatus(StrEnum):
    DONE = "done"
    ALREADY_DONE = "already done"
    FAILED = "failed"
    SKIPPED_UPSTREAM = "skipped: upstream failed"
    RESUMED = "resumed"
    RESUME_FAILED = "resumed operation ended in error"


@dataclass(slots=True)
class StepResult:
    id: str
    address: str
    action: str
    status: StepStatus
    message: str = ""
    upstream: str | None = None  # for skipped steps: the root cause step id
    seconds: float = 0.0


@dataclass
class ApplyResult:
    steps: list[StepResult] = field(default_factory=list)
    deferred: list[tuple[str, str, datetime | None, str]] = field(
        default_factory=list
    )  # address, rule, date, why
    resumed: list[StepResult] = field(default_factory=list)
    blocked: list[tuple[str, str, str, str]] = field(default_factory=list)  # address, rule, why, remedy

    @property
    def failed(self) -> list[StepResult]:
        """Root causes only: skipped descendants are not errors of their own."""
        return [s for s in self.steps if s.status is StepStatus.FAILED]

    @property
    def ok(self) -> bool:
        return not self.failed

    def count(self, status: StepStatus) -> int:
        return sum(1 for s in self.steps if s.status is status)


def journal_target(change: Change) -> str:
    """The id the journal files an operation under: the workspace for link/BYOS, else the resource."""
    return change.workspace_id or change.resource_id


def _is_link(action: str) -> bool:
    return action in (Action.LINK, Action.UNLINK)


def _refused(exc: errors.AzureError) -> bool:
    """Azure answered and said no (4xx, throttling included): the request was not taken on. A 5xx or no
    answer at all leaves the outcome in doubt, and in doubt the budget counts as spent (rule W3)."""
    return (
        not isinstance(exc, errors.OutcomeUnknown) and exc.status is not None and 400 <= exc.status < 500
    )


def _link_state(link: dict[str, Any] | None) -> str:
    """provisioningState of a linkedServices/cluster as read back (wire JSON)."""
    props = (link or {}).get("properties") or {}
    # SDK 14 nests its own Mapping models, not dicts
    return str(props.get("provisioningState") or "") if isinstance(props, Mapping) else ""


def usual(action: Action) -> tuple[float, str]:
    """(typical seconds, human text) for the progress view: "create 41m, usually ~2h"."""
    traits = action.traits
    return traits.usual_seconds, traits.usual_text


class Executor:
    def __init__(
        self,
        *,
        gateway: Gateway,
        store: HistoryStore,
        parallelism: int = 10,
        busy_timeout: float = 3 * 3600,
        max_attempts: int = 8,
        backoff: float = 2.0,
        backoff_max: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        progress: Progress | None = None,
        plan_id: str | None = None,
        max_waiting: int = 500,
    ) -> None:
        self.gateway = gateway
        self.store = store
        # `parallelism` bounds the requests being made at once (reads, sends, verifies), like
        # Terraform's; an operation that Azure accepted waits without holding one of those slots, so
        # 1000 links of ~90 min take ~90 min, not 100 waves of them. It waits in the gateway's watch
        # (no thread); only a gateway that cannot call back is waited on by threads, `max_waiting` of them.
        self.parallelism = max(1, parallelism)
        # the workers that run the halves of steps: a few more than the request slots, for the steps
        # that sleep (retry backoff, waiting for someone else's running operation) without a request
        self.workers = self.parallelism + 8
        self.max_waiting = max(self.parallelism, max_waiting)
        self._request_slots = threading.BoundedSemaphore(self.parallelism)
        self.busy_timeout = busy_timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._now = now
        self.progress = progress or NullProgress()
        self.plan_id = plan_id
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- restart: finish what the journal says is still running ------------------------------------

    def resume_in_flight(self) -> list[StepResult]:
        """Resume journaled LROs by polling their tokens; re-observe links whose outcome is unknown.

        Never re-sends: a create that is running is waited for, and a link that may or may not have
        reached Azure is read back (GET linkedServices/cluster) and counted for rule W3 if it did.
        The operations are resumed side by side, `parallelism` at a time: each may wait up to the
        operation timeout, and one after another would hold the apply N times that long.
        """
        ops = list(self.store.load().in_flight)
        if not ops:
            return []
        workers = min(self.parallelism, len(ops))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="resume") as pool:
            found = list(pool.map(self._resume_one, ops))
        return [r for r in found if r is not None]

    def _resume_one(self, op: InFlightOperation) -> StepResult | None:
        started = time.monotonic()
        label = f"{op.action} {op.target}"
        try:
            if op.phase == "sent" and op.continuation_token:
                self.progress.step_started(
                    op.op_id, f"{label} (resumed)", *usual(Action(op.action))
                )
                self._retrying(
                    lambda: self.gateway.resume(
                        action=op.action,
                        target=op.target,
                        parameters={"workspace_id": op.target} if _is_link(op.action) else {},
                        token=op.continuation_token or "",
                    )
                )
                self._record_effects(op.action, op.target, None, op.started, op.request_id)
                self.store.end_operation(op.op_id, "done", "resumed after restart")
                return StepResult(
                    op.op_id,
                    label,
                    op.action,
                    StepStatus.RESUMED,
                    "resumed the recorded operation",
                    seconds=time.monotonic() - started,
                )
            if _is_link(op.action):
                link = self.gateway.read_link(op.target)
                # outcome unknown: if Azure did act, the operation counts against W3; over-count is
                # safe. An unlink Azure accepted shows the link still there, Deleting, until it ends.
                state = str(_link_state(link)).lower()
                gone = link is None or state == "deleting"
                sent = link is not None if op.action == Action.LINK else gone
                if sent:
                    self._record_effects(op.action, op.target, None, op.started, op.request_id)
                self.store.end_operation(
                    op.op_id,
                    "observed",
                    "re-observed after restart: "
                    + ("it reached Azure" if sent else "it did not take effect"),
                )
            else:
                self.store.end_operation(op.op_id, "abandoned", "not sent before restart; re-planned")
            return None
        except errors.StillRunning as exc:
            # still running in Azure: stays in the journal as "sent"; the next run resumes it again
            return StepResult(op.op_id, label, op.action, StepStatus.RESUME_FAILED, str(exc))
        except errors.AzureError as exc:
            # Not a failure of this apply: the re-plan that follows reads the live state and decides
            # again (a create that failed is planned again and its error, if it recurs, reported).
            self.store.end_operation(op.op_id, "failed", str(exc))
            return StepResult(op.op_id, label, op.action, StepStatus.RESUME_FAILED, str(exc))
        finally:
            self.progress.step_finished(op.op_id, "resumed")

    # -- the plan ----------------------------------------------------------------------------------

    def apply(self, plan: Plan) -> ApplyResult:
        result = ApplyResult(
            deferred=[(d.address, d.rule, d.not_before, d.reason) for d in plan.deferred],
            blocked=[(b.address, b.rule or "", b.reason, b.remedy) for b in plan.blocked],
        )
        changes = {c.id: c for c in plan.changes}
        order = {c.id: i for i, c in enumerate(plan.changes)}
        deferred_ids = {d.id for d in plan.deferred}
        deps_of = {
            c.id: [d for d in c.depends_on if d in changes or d in deferred_ids] for c in plan.changes
        }
        dependents: dict[str, list[str]] = defaultdict(list)
        for cid, deps in deps_of.items():
            for d in deps:
                dependents[d].append(cid)
        keys_of: dict[str, frozenset[str]] = {}
        outcome: dict[str, StepResult] = {}
        root_of: dict[str, str] = {}
        pending = dict(changes)
        running: set[str] = set()
        held: set[str] = set()  # cluster/workspace keys of running steps (rules C6, W5)
        blocked_on_keys: set[str] = set()  # ready, but a running step holds one of their keys
        ended: queue.SimpleQueue[StepResult] = queue.SimpleQueue()
        work = _FairQueue()

        def keys(cid: str) -> frozenset[str]:
            if cid not in keys_of:
                keys_of[cid] = frozenset(self._lock_keys(changes[cid]))
            return keys_of[cid]

        def schedule(candidates: Iterable[str]) -> None:
            """Skip what can't run, start what is ready and whose cluster/workspace is free. Only the
            steps a finished step can have changed are looked at (its dependents, those waiting for
            its keys), in plan order: a 40,000-step plan is not rescanned per finished step."""
            todo = sorted(set(candidates), key=order.__getitem__)
            while todo:
                later: set[str] = set()
                for cid in todo:
                    if cid not in pending:
                        continue
                    change = pending[cid]
                    deps = deps_of[cid]
                    bad = [
                        d
                        for d in deps
                        if d in deferred_ids
                        or (
                            d in outcome
                            and outcome[d].status in (StepStatus.FAILED, StepStatus.SKIPPED_UPSTREAM)
                        )
                    ]
                    if bad:
                        root = root_of.get(bad[0], bad[0])
                        why = "upstream deferred" if bad[0] in deferred_ids else "upstream failed"
                        outcome[cid] = StepResult(
                            cid,
                            change.address,
                            change.action,
                            StepStatus.SKIPPED_UPSTREAM,
                            f"skipped: {why} ({root})",
                            upstream=root,
                        )
                        root_of[cid] = root
                        del pending[cid]
                        blocked_on_keys.discard(cid)
                        later.update(dependents[cid])  # a skip can skip steps seen earlier
                        continue
                    if not all(d in outcome for d in deps):
                        continue
                    if keys(cid) & held:
                        blocked_on_keys.add(cid)
                        continue
                    # a busy cluster must not tie up a worker: wait here, not in the pool
                    held.update(keys(cid))
                    blocked_on_keys.discard(cid)
                    running.add(cid)
                    del pending[cid]
                    work.put(_lane(change), functools.partial(self._start_step, change, work, ended, waiters))
                todo = sorted(later, key=order.__getitem__)

        workers = [
            threading.Thread(target=work.serve, name=f"apply-{i}", daemon=True) for i in range(self.workers)
        ]
        for t in workers:
            t.start()
        waiters = ThreadPoolExecutor(max_workers=self.max_waiting, thread_name_prefix="apply-wait")
        try:
            schedule(pending)
            while pending or running:
                if not running:
                    if pending:  # a cycle or a dependency that can never finish: refuse, never guess
                        for cid, change in pending.items():
                            outcome[cid] = StepResult(
                                cid,
                                change.address,
                                change.action,
                                StepStatus.FAILED,
                                "dependency cycle in the plan",
                            )
                        pending.clear()
                    break
                finished = [ended.get()]
                while True:  # everything that ended meanwhile, then one scheduling pass
                    try:
                        finished.append(ended.get_nowait())
                    except queue.Empty:
                        break
                candidates: set[str] = set()
                for res in finished:
                    running.discard(res.id)
                    held.difference_update(keys(res.id))
                    outcome[res.id] = res
                    if res.status is StepStatus.FAILED:
                        root_of[res.id] = res.id
                    candidates.update(dependents[res.id])
                candidates.update(blocked_on_keys)
                schedule(candidates)
        finally:
            work.close()
            waiters.shutdown(wait=False)
        result.steps = [outcome[c.id] for c in plan.changes if c.id in outcome]
        return result

    # -- one step ----------------------------------------------------------------------------------

    def _lock_keys(self, change: Change) -> list[str]:
        """What the step holds, as its action's traits say: its cluster (rule C6: one operation of the
        cluster at a time) or its workspace (rule W5: one link/unlink per workspace at a time). A link
        is an operation of its workspace, so links into one cluster run side by side: a cluster's 1000
        links one after another would take 60 days. The plan's DAG already puts every link after its
        cluster's create and key steps (W4)."""
        keys = {ids.id_key(change.resource_id)}
        scope = change.action.traits.lock
        if scope is LockScope.CLUSTER and change.cluster_id:
            keys.add(ids.id_key(change.cluster_id))
        if scope is LockScope.WORKSPACE and change.workspace_id:
            keys.add(ids.id_key(change.workspace_id))
        return sorted(keys)

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _start_step(
        self,
        change: Change,
        work: _FairQueue,
        ended: queue.SimpleQueue[StepResult],
        waiters: ThreadPoolExecutor,
    ) -> None:
        """The first half: journal "begin", pre-check, send, journal the token; then hand the accepted
        operation to the gateway's watch, whose callback queues the second half (`_finish_step`)."""
        step = _Step(change, time.monotonic(), ended)
        if _is_link(change.action):
            # rule W3: the request carries an id journaled before it is sent; the Activity Log shows it,
            # so the journal's record and Azure's are one operation, and a restart can find it there
            step.request_id = str(uuid.uuid4())
            change = step.as_sent()
        # the locks of what the step touches (C6/W5), held until its second half ends; the scheduler
        # already starts no two steps that share a key, so these are never contended within one apply
        for key in self._lock_keys(change):
            lock = self._lock(key)
            lock.acquire()
            step.locks.append(lock)
        try:
            self.store.begin_operation(
                InFlightOperation(
                    op_id=change.id,
                    action=str(change.action),
                    target=journal_target(change),
                    status_url=None,
                    started=self._now(),
                    plan_id=self.plan_id,
                    request_id=change.parameters.request_id
                    if isinstance(change.parameters, LinkParams | UnlinkParams)
                    else None,
                )
            )
            typical, text = usual(change.action)
            self.progress.step_started(change.id, change.address + f": {change.action}", typical, text)

            def attempt() -> StepStatus | Handle:
                step.tries += 1
                return self._send(change, step)

            sent = self._retrying(attempt)
        except Exception as exc:
            self._end_step(step, self._failed(step, exc))
            return
        if isinstance(sent, StepStatus):  # already in effect (found by the pre-check)
            self._finish_step(step, None, sent)
            return
        # one small object per operation in flight (40,000 links), not a closure and its cells
        on_end = functools.partial(self._ended, step, work, _lane(change))
        gateway = self.gateway
        if isinstance(gateway, Watching):
            gateway.when_done(sent, on_end)
        else:
            waiters.submit(self._wait_then, sent, on_end)

    def _ended(self, step: _Step, work: _FairQueue, lane: str, exc: errors.AzureError | None) -> None:
        """The watch's thread: only queue the second half (its verify is a request: a worker's)."""
        work.put(lane, functools.partial(self._finish_step, step, exc), urgent=True)

    def _wait_then(self, handle: Handle, on_end: Callable[[errors.AzureError | None], None]) -> None:
        """For a gateway that cannot call back: wait on this thread, then call back."""
        try:
            self.gateway.wait(handle)
        except errors.AzureError as exc:
            on_end(exc)
            return
        except Exception as exc:  # a bug must not hang the apply: the step fails with it
            on_end(errors.Terminal(f"internal error: {type(exc).__name__}: {exc}"))
            return
        on_end(None)

    def _finish_step(
        self, step: _Step, waited: errors.AzureError | None, status: StepStatus = StepStatus.DONE
    ) -> None:
        """The second half: verify (when something was sent), record W3/C11 effects, journal the end."""
        change = step.as_sent()
        try:
            if waited is not None:
                if not isinstance(waited, _RETRIED) or step.tries >= self.max_attempts:
                    raise waited
                # the wait failed in a way a fresh try may cure: back off, then try again from a fresh
                # pre-check (it finds a link that did go through), waiting on this worker (rare)
                self._sleep(self._backoff_for(waited, step.tries))
                status = self._retrying(
                    lambda: self._attempt(change, step), attempts=self.max_attempts - step.tries
                )
            if status is StepStatus.DONE:
                with self._request_slots:
                    self.gateway.verify(change)
            if status is StepStatus.DONE or (step.attempted and _is_link(change.action)):
                # a link whose response was lost but which took effect still spent W3 budget
                self._record_effects(str(change.action), journal_target(change), change, self._now())
            self.store.end_operation(change.id, "done" if status is StepStatus.DONE else "already done")
            res = StepResult(change.id, change.address, change.action, status)
        except Exception as exc:
            res = self._failed(step, exc)
        self._end_step(step, res)

    def _failure(self, step: _Step, exc: Exception) -> StepResult:
        change = step.as_sent()
        if isinstance(exc, errors.StillRunning):
            # sent and still running in Azure: the journal keeps it "sent" with its token, so the next
            # run resumes it and never re-sends it (a second create/link would cost W3 budget or 409)
            return StepResult(change.id, change.address, change.action, StepStatus.FAILED, _verbatim(exc))
        if isinstance(exc, errors.AzureError):
            if step.accepted and _is_link(change.action):
                # rule W3: a link/unlink Azure accepted and then failed still spent budget (fault matrix
                # cells link/op-failed, unlink/op-failed: the journal undercounted by one)
                self._record_effects(str(change.action), journal_target(change), change, self._now())
            self.store.end_operation(change.id, "failed", _verbatim(exc))
            return StepResult(change.id, change.address, change.action, StepStatus.FAILED, _verbatim(exc))
        # a bug must not take the other branches down; report it as a failure
        self.store.end_operation(change.id, "failed", f"{type(exc).__name__}: {exc}")
        return StepResult(change.id, change.address, change.action, StepStatus.FAILED, _why(exc))

    def _failed(self, step: _Step, exc: Exception) -> StepResult:
        """`_failure`, and if journaling the failure fails too (a full disk), still a result: a step
        that never ends would hang the apply."""
        try:
            return self._failure(step, exc)
        except Exception as again:
            change = step.change
            return StepResult(change.id, change.address, change.action, StepStatus.FAILED, _why(again))

    def _end_step(self, step: _Step, res: StepResult) -> None:
        for lock in reversed(step.locks):
            lock.release()
        step.locks.clear()
        res.seconds = time.monotonic() - step.started
        failed = res.status is StepStatus.FAILED
        try:
            self.progress.step_finished(step.change.id, str(res.status), res.message if failed else "")
        finally:
            step.ended.put(res)

    def _send(self, change: Change, step: _Step) -> StepStatus | Handle:
        """One try: re-read first (idempotency, outcome unknown), wait out a running op, then send.
        Returns ALREADY_DONE, or the handle of the operation Azure accepted (not waited for)."""
        with self._request_slots:
            pre = self.gateway.precheck(change)
        if pre is Precheck.IN_PROGRESS:
            self.progress.note(change.id, "waiting for a running operation (rules C6/W5)")
            self.gateway.wait_idle(change, timeout=self.busy_timeout)
            with self._request_slots:
                pre = self.gateway.precheck(change)
            if pre is Precheck.IN_PROGRESS:
                raise errors.Busy(f"{change.address}: another operation is still running")
        if pre is Precheck.DONE:
            return StepStatus.ALREADY_DONE

        def on_sent(status_url: str | None, token: str | None) -> None:
            # journaled BEFORE waiting: a crash from here on resumes this operation, never re-issues it
            self.store.record_operation_sent(change.id, status_url=status_url, continuation_token=token)

        step.attempted = True
        try:
            with self._request_slots:
                handle = self.gateway.start(change, on_sent)
        except errors.AzureError as exc:
            if _refused(exc):
                step.attempted = False  # Azure answered no: nothing was spent (rule W3)
            raise
        step.accepted = True  # Azure took the request: from here a failure still spent W3 budget
        return handle

    def _attempt(self, change: Change, step: _Step) -> StepStatus:
        """One try that also waits on this thread (the retry of an operation whose wait failed)."""
        step.tries += 1
        sent = self._send(change, step)
        if isinstance(sent, StepStatus):
            return sent
        self.gateway.wait(sent)  # polling an accepted operation holds no request slot
        return StepStatus.DONE

    def _retrying(self, fn: Callable[[], Any], *, attempts: int | None = None) -> Any:
        retryer = Retrying(
            retry=retry_if_exception_type(_RETRIED),
            stop=stop_after_attempt(max(1, self.max_attempts if attempts is None else attempts)),
            wait=self._wait_for,
            sleep=self._sleep,
            reraise=True,
        )
        return retryer(fn)

    def _wait_for(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return self._backoff_for(exc, state.attempt_number)

    def _backoff_for(self, exc: BaseException | None, attempt: int) -> float:
        hinted = getattr(exc, "retry_after", None)
        if isinstance(hinted, int | float) and hinted >= 0:
            return float(min(hinted, self.backoff_max))
        return float(min(self.backoff * (2 ** (attempt - 1)), self.backoff_max))

    def _record_effects(
        self, action: str, target: str, change: Change | None, at: datetime, request_id: str | None = None
    ) -> None:
        """W3: every link/unlink that reached Azure counts; C11: a deleted cluster's name stays reserved."""
        p = change.parameters if change else None
        if _is_link(action):
            cluster = p.cluster_id if isinstance(p, LinkParams | UnlinkParams) else None
            sent_as = request_id or (p.request_id if isinstance(p, LinkParams | UnlinkParams) else None)
            self.store.record_link_operation(
                LinkOperation(
                    workspace_key=ids.id_key(target),
                    kind=str(action),
                    at=at,
                    cluster_key=ids.id_key(str(cluster)) if cluster else None,
                    request_id=sent_as,
                )
            )
        elif action == Action.DELETE:
            rid = ids.ResourceId.parse(target)
            self.store.record_cluster_deletion(
                ClusterDeletion(
                    cluster_key=ids.id_key(target),
                    subscription=rid.subscription,
                    # a delete resumed after a restart has no parameters: its region is unknown
                    location=ids.normalise_location(p.location) if isinstance(p, DeleteParams) else "",
                    name=rid.name,
                    at=at,
                )
            )


_RETRIED = (errors.Transient, errors.Busy, errors.OutcomeUnknown)


def _why(exc: Exception) -> str:
    """A CmkError (the journal's disk is full) says itself what to do; anything else is a bug."""
    return str(exc) if isinstance(exc, CmkError) else f"internal error: {type(exc).__name__}: {exc}"


@dataclass(eq=False, slots=True)
class _Step:
    """A step between its two halves: what the second half needs, and nothing holding a thread."""

    change: Change
    started: float
    ended: queue.SimpleQueue[StepResult]
    tries: int = 0
    attempted: bool = False  # a request was sent that may have reached Azure (rule W3)
    accepted: bool = False  # Azure took it: a later failure still spent W3 budget
    locks: list[threading.Lock] = field(default_factory=list)
    request_id: str | None = None  # the id a link or unlink is sent with, journaled first (rule W3)

    def as_sent(self) -> Change:
        """The change with its request id in its parameters. Made when a half needs it, not kept between
        the halves: 40,000 links in flight would each hold a copy of their change (~1 KB)."""
        if self.request_id is None:
            return self.change
        sent_as = self.change.parameters.model_copy(update={"request_id": self.request_id})
        return self.change.model_copy(update={"parameters": sent_as})


def _lane(change: Change) -> str:
    """The subscription a step's requests are metered in (ARM's buckets are per subscription)."""
    try:
        return sys.intern(ids.ResourceId.parse(change.resource_id).subscription.lower())
    except Exception:
        return ""


class _FairQueue:
    """Work for the apply's workers: second halves first (they free locks and dependents), then first
    halves round-robin by subscription, so a subscription waiting for its write budget takes one
    worker at a time, never all of them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._urgent: deque[Callable[[], None]] = deque()
        self._lanes: dict[str, deque[Callable[[], None]]] = {}
        self._turn: deque[str] = deque()  # lanes with work, in round-robin order
        self._closed = False

    def put(self, lane: str, task: Callable[[], None], *, urgent: bool = False) -> None:
        with self._cond:
            if urgent:
                self._urgent.append(task)
            else:
                if lane not in self._lanes or not self._lanes[lane]:
                    self._lanes.setdefault(lane, deque())
                    self._turn.append(lane)
                self._lanes[lane].append(task)
            self._cond.notify()

    def _take(self) -> Callable[[], None] | None:
        with self._cond:
            while not self._closed and not self._urgent and not self._turn:
                self._cond.wait()
            if self._urgent:
                return self._urgent.popleft()
            if not self._turn:
                return None  # closed
            lane = self._turn.popleft()
            tasks = self._lanes[lane]
            task = tasks.popleft()
            if tasks:
                self._turn.append(lane)
            return task

    def serve(self) -> None:
        while (task := self._take()) is not None:
            task()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _verbatim(exc: errors.AzureError) -> str:
    """Azure's code and message as Azure wrote them, with our context first."""
    return str(exc)


def summarise(result: ApplyResult) -> Iterable[str]:
    """Lines for the end of an apply: counts, root causes only, and the deferred dates again."""
    done = result.count(StepStatus.DONE)
    already = result.count(StepStatus.ALREADY_DONE)
    skipped = result.count(StepStatus.SKIPPED_UPSTREAM)
    failed = result.failed
    yield (
        f"Apply {'complete' if not failed else 'failed'}: {done} changed, {already} already done, "
        f"{len(failed)} failed, {skipped} skipped, {len(result.resumed)} resumed."
    )
    for step in failed:
        yield f"  error: {step.address}: {step.message}"
        blocked = [s.address for s in result.steps if s.upstream == step.id]
        if blocked:
            yield f"    skipped because of it: {', '.join(blocked)}"
    for address, rule, when, why in result.deferred:
        date = f"not before {when:%Y-%m-%d %H:%M} UTC" if when else "until its upstream change runs"
        yield f"  deferred: {address} (rule {rule}) {date}: {why}"
    for address, rule, why, remedy in result.blocked:
        yield f"  blocked: {address} (rule {rule}): {why}; to fix: {remedy}"
