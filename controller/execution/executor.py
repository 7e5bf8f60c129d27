"""Applies a Plan: walks its DAG, journals every step, resumes what a crash left running.

Order per step: journal "begin" -> pre-check (skip what is already done) -> send ->
journal the LRO token -> wait -> verify against its parameters -> journal "done" (+ link time, rule W3).

* Parallel across independent branches (thread pool, `parallelism`), serialised per cluster for the
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

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

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


class StepStatus(StrEnum):
    DONE = "done"
    ALREADY_DONE = "already done"
    FAILED = "failed"
    SKIPPED_UPSTREAM = "skipped: upstream failed"
    RESUMED = "resumed"
    RESUME_FAILED = "resumed operation ended in error"


@dataclass
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
        max_in_flight: int = 500,
    ) -> None:
        self.gateway = gateway
        self.store = store
        # `parallelism` bounds the requests being made at once (reads, sends, verifies), like
        # Terraform's; an operation that Azure accepted waits without holding one of those slots, so
        # 1000 links of ~90 min take ~90 min, not 100 waves of them. `max_in_flight`
        # bounds the operations waiting at once (one thread each).
        self.parallelism = max(1, parallelism)
        self.max_in_flight = max(self.parallelism, max_in_flight)
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
        deferred_ids = {d.id for d in plan.deferred}
        outcome: dict[str, StepResult] = {}
        root_of: dict[str, str] = {}
        pending = dict(changes)
        running: dict[Future[StepResult], str] = {}
        held: set[str] = set()  # cluster/workspace keys of running steps (rules C6, W5)

        def schedule(pool: ThreadPoolExecutor) -> None:
            """Skip what can't run, start what is ready and whose cluster/workspace is free."""
            progressed = True
            while progressed:  # a skip can unblock (skip) steps seen earlier in the same scan
                progressed = False
                for cid, change in list(pending.items()):
                    deps = [d for d in change.depends_on if d in changes or d in deferred_ids]
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
                        progressed = True
                        continue
                    keys = set(self._lock_keys(change))
                    if all(d in outcome for d in deps) and not keys & held:
                        # a busy cluster must not tie up a worker: wait here, not in the pool
                        held.update(keys)
                        running[pool.submit(self._run_step, change)] = cid
                        del pending[cid]

        with ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="apply") as pool:
            while pending or running:
                schedule(pool)
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
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    cid = running.pop(fut)
                    held.difference_update(self._lock_keys(changes[cid]))
                    outcome[cid] = fut.result()
                    if outcome[cid].status is StepStatus.FAILED:
                        root_of[cid] = cid
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

    def _run_step(self, change: Change) -> StepResult:
        started = time.monotonic()
        request_id: str | None = None
        if _is_link(change.action):
            # rule W3: the request carries an id journaled before it is sent; the Activity Log shows it,
            # so the journal's record and Azure's are one operation, and a restart can find it there
            request_id = str(uuid.uuid4())
            change = change.model_copy(
                update={"parameters": change.parameters.model_copy(update={"request_id": request_id})})
        with ExitStack() as stack:
            for key in self._lock_keys(change):
                stack.enter_context(self._lock(key))
            self.store.begin_operation(
                InFlightOperation(
                    op_id=change.id,
                    action=str(change.action),
                    target=journal_target(change),
                    status_url=None,
                    started=self._now(),
                    plan_id=self.plan_id,
                    request_id=request_id,
                )
            )
            typical, text = usual(change.action)
            self.progress.step_started(change.id, change.address + f": {change.action}", typical, text)
            attempted: list[bool] = []
            accepted: list[bool] = []
            try:
                status = self._retrying(lambda: self._attempt(change, attempted, accepted))
                if status is StepStatus.DONE:
                    with self._request_slots:
                        self.gateway.verify(change)
                if status is StepStatus.DONE or (attempted and _is_link(change.action)):
                    # a link whose response was lost but which took effect still spent W3 budget
                    self._record_effects(str(change.action), journal_target(change), change, self._now())
                self.store.end_operation(change.id, "done" if status is StepStatus.DONE else "already done")
                res = StepResult(change.id, change.address, change.action, status)
            except errors.StillRunning as exc:
                # sent and still running in Azure: the journal keeps it "sent" with its token, so the next
                # run resumes it and never re-sends it (a second create/link would cost W3 budget or 409)
                res = StepResult(change.id, change.address, change.action, StepStatus.FAILED, _verbatim(exc))
            except errors.AzureError as exc:
                if accepted and _is_link(change.action):
                    # rule W3: a link/unlink Azure accepted and then failed still spent budget (fault matrix
                    # cells link/op-failed, unlink/op-failed: the journal undercounted by one)
                    self._record_effects(str(change.action), journal_target(change), change, self._now())
                self.store.end_operation(change.id, "failed", _verbatim(exc))
                res = StepResult(change.id, change.address, change.action, StepStatus.FAILED, _verbatim(exc))
            except Exception as exc:  # a bug must not take the other branches down; report it as a failure
                self.store.end_operation(change.id, "failed", f"{type(exc).__name__}: {exc}")
                # a CmkError (the journal's disk is full) says itself what to do; anything else is a bug
                why = f"internal error: {type(exc).__name__}: {exc}"
                if isinstance(exc, CmkError):
                    why = str(exc)
                res = StepResult(change.id, change.address, change.action, StepStatus.FAILED, why)
        res.seconds = time.monotonic() - started
        failed = res.status is StepStatus.FAILED
        self.progress.step_finished(change.id, str(res.status), res.message if failed else "")
        return res

    def _attempt(
        self, change: Change, attempted: list[bool], accepted: list[bool] | None = None
    ) -> StepStatus:
        """One try: re-read first (idempotency, outcome unknown), wait out a running op, then send."""
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

        attempted.append(True)
        try:
            with self._request_slots:
                handle = self.gateway.start(change, on_sent)
        except errors.AzureError as exc:
            if _refused(exc):
                attempted.pop()  # Azure answered no: nothing was spent (rule W3)
            raise
        if accepted is not None:
            accepted.append(True)  # Azure took the request: from here a failure still spent W3 budget
        self.gateway.wait(handle)  # polling an accepted operation holds no request slot
        return StepStatus.DONE

    def _retrying(self, fn: Callable[[], Any]) -> Any:
        retryer = Retrying(
            retry=retry_if_exception_type((errors.Transient, errors.Busy, errors.OutcomeUnknown)),
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait_for,
            sleep=self._sleep,
            reraise=True,
        )
        return retryer(fn)

    def _wait_for(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "retry_after", None)
        if isinstance(hinted, int | float) and hinted >= 0:
            return float(min(hinted, self.backoff_max))
        return float(min(self.backoff * (2 ** (state.attempt_number - 1)), self.backoff_max))

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
