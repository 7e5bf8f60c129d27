"""The GitOps loop, shaped like a controller-runtime reconciler: one pass, one typed outcome.

A pass (`Reconciler.run_pass`): fetch the source -> load the spec (or, when the head does not
validate, the last good revision) -> `service.snapshot.look` (observe, merge the journal, decide
`drift: report`, plan) -> report drift -> in `apply` mode, take the scope's writer lock and let the
executor run what is ready -> record what the apply left in the journal. It returns ONE `Outcome`:

    succeeded  Azure matches the spec (or everything that can run now ran)
    deferred   changes wait for a date: the planner's (C4, W3) or one a refusal named
    drift      differences made outside cmkctl are reported, not reverted (settings.drift: report)
    retry      a transient failure: Azure busy (C6/W5 409s), throttled, 403, lock held, source down
    stalled    the user must act: an invalid spec, a blocked change, a refusal without a date

`_conclude` turns it into conditions, the pass record, metrics and the requeue delay, in one place:
the interval (jittered), or the nearest date a deferral waits for, or, after `retry`, an exponential
backoff over consecutive failures, capped.

Nothing is a "stall until the next commit": every pass observes and plans again, so a blocked item
or a refused change that was fixed outside (a key-access policy granted by hand) converges without
a commit. A refused change is not re-sent while what was observed when it was refused is unchanged
(and its backoff has not passed); a refusal that names a date (rule C4's lock end, rule W3's window)
is a deferral to that date.

`drift: report` is the service layer's (controller.service.snapshot): the plan already leaves
hand-made differences alone; the controller reports them (`cause`) and the fields changed outside
cmkctl since the last apply (`changedOutside`, from the journal's intent and baseline). A bad head
does not blind it: the last good DesiredState is kept in memory (after a restart, it is loaded from
the git revision the journal last recorded) and drift is reported against it, without writing.

Suspend: `--suspend` or `settings.suspend: true` in the spec repository: observe and report only.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from controller.azure.clients import AzureClients
from controller.azure.errors import AzureError
from controller.azure.operations import Operations
from controller.errors import CmkError, LockHeldError, SpecError
from controller.execution.executor import ApplyResult, Gateway, StepStatus
from controller.loading import load
from controller.model import ids
from controller.model.history import Revision
from controller.model.limits import for_profile
from controller.model.settings import Settings
from controller.model.spec import DesiredState
from controller.planning.plan import Change, Plan
from controller.reconcile.drift import drift_items, drifted_resources
from controller.reconcile.guard import GuardedGateway, ShuttingDown
from controller.reconcile.logs import JsonLog, LogProgress
from controller.reconcile.metrics import Metrics
from controller.reconcile.source import GIT_TIMEOUT, Checkout, SourceError, open_source, redact
from controller.reconcile.status import PassRecord, Reason, Status
from controller.reporting import build_report
from controller.service.apply_session import ApplySession, record_applied
from controller.service.snapshot import Snapshot, look
from controller.service.state import JournalStore, StateBackend, StateRef

CAUSE_HELD = "changed outside cmkctl since the last apply; reported, not reverted (settings.drift: report)"
CAUSE_LIVE = "live changed outside the controller since the last apply"
CAUSE_PENDING = "the applied revision is not fully reached yet (e.g. a deferred change)"
CAUSE_SPEC = "the spec changed: this revision is not applied yet"


class Mode(StrEnum):
    APPLY = "apply"
    REPORT = "report"


class Result(StrEnum):
    """The one thing a pass concludes (controller-runtime's Result, with the reason it has)."""

    SUCCEEDED = "succeeded"
    DEFERRED = "deferred"
    DRIFT = "drift"
    RETRY = "retry"
    STALLED = "stalled"


@dataclass
class ControllerConfig:
    source: str
    state_dir: Path
    ref: str = "main"
    path: str = "."
    interval: float = 600.0
    mode: Mode = Mode.APPLY
    suspend: bool = False
    busy_retry: float = 30.0  # the first retry after a transient failure; doubles per consecutive one
    max_backoff: float = 1800.0  # ... up to this
    jitter: float = 0.1  # the interval is stretched or shrunk by up to 10 % so replicas don't align
    parallelism: int = 10
    # wait this long for someone else's running operation (C6/W5), then retry next pass instead:
    # a pass must not block drift reporting for hours
    busy_timeout: float = 600.0
    backoff: float = 2.0
    heartbeat: float = 60.0  # a log line per running operation this often
    workdir: Path | None = None  # where the git clone lives (default: <state>/source)
    state_url: str | None = None  # azureblob://... keeps the journal and lock in a blob (else state_dir)
    git_timeout: float = GIT_TIMEOUT  # a git command running longer is killed; the pass retries

    @property
    def scope(self) -> str:
        """What this instance owns: the spec path in its source, guarded by the state's lock."""
        return f"{redact(self.source)}@{self.ref}:{self.path}"


@dataclass
class Outcome:
    """A pass's conclusion. `label` is the finer word logs, /status and the passes metric show
    (applied, in-sync, reported, suspended, busy, failed, ...); `wake_at` a date to requeue at."""

    result: Result
    reason: Reason
    message: str
    label: str
    wake_at: datetime | None = None


@dataclass
class PassOutcome:
    record: PassRecord
    requeue_after: float
    outcome: Outcome | None = None
    plan: Plan | None = None
    apply: ApplyResult | None = None
    drift: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Refused:
    """A change Azure refused: not re-sent before `not_before` (a date the refusal named), or, without
    one, while the observed state is what it was (`observed`) and before `retry_at` (backoff)."""

    change_id: str
    address: str
    revision: str
    message: str
    not_before: datetime | None
    retry_at: datetime
    attempts: int = 1
    observed: str | None = None  # plan fingerprint of the first pass after the refusal

    def holds(self, now: datetime, fingerprint: str) -> bool:
        if self.not_before is not None:
            return now < self.not_before
        if self.observed is None:
            self.observed = fingerprint
        return self.observed == fingerprint and now < self.retry_at


def _identity(change: Change) -> str:
    parameters = change.parameters.model_dump(mode="json")
    return json.dumps({"id": change.id, "parameters": parameters}, sort_keys=True)


class Reconciler:
    """Runs passes for one scope. Thread model: `run()` in one thread; /status reads `status`."""

    def __init__(
        self,
        config: ControllerConfig,
        *,
        clients: AzureClients,
        now: Callable[[], datetime] | None = None,
        log: JsonLog | None = None,
        metrics: Metrics | None = None,
        rng: random.Random | None = None,
        gateway: Callable[[AzureClients], Gateway] | None = None,
    ) -> None:
        self.config = config
        self.clients = clients
        self.now = now or (lambda: datetime.now(UTC))
        ref = StateRef(url=config.state_url) if config.state_url else StateRef(directory=config.state_dir)
        self.backend: StateBackend = ref.backend(
            command=f"cmkctl controller {config.scope}", now=self.now, cloud=clients.cloud
        )
        self.log = log or JsonLog(now=self.now)
        self.metrics = metrics or Metrics(clients.counter.snapshot)
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._gateway = gateway or Operations
        self.settings = Settings.read()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.passes_done = 0
        self.last_pass_finished: float | None = None  # time.monotonic(), for /healthz
        self.failures = 0  # consecutive `retry` outcomes: the backoff's exponent
        self.refused: dict[str, Refused] = {}  # change identity -> refusal
        self.last_good: tuple[str, DesiredState] | None = None  # revision, spec: drift when head is bad
        workdir = config.workdir or config.state_dir / "source"
        self.source = open_source(
            config.source,
            ref=config.ref,
            path=config.path,
            workdir=workdir,
            stop=self.stop,
            timeout=config.git_timeout,
        )
        self.status = Status(
            scope=config.scope,
            source=self.source.display,
            ref=config.ref,
            path=config.path,
            mode=str(config.mode),
            suspended=config.suspend,
        )
        self.status.last_applied_revision = self._journal_revision()
        self.status.set_outcome(
            ready=False,
            reconciling=True,
            stalled=False,
            reason=Reason.STARTING,
            message="waiting for the first pass",
            now=self.now(),
        )
        self.metrics.suspended.set(1 if config.suspend else 0)

    # -- the loop ------------------------------------------------------------------------------------

    def run(self) -> None:
        """Pass, sleep, pass... until `stop` is set (SIGTERM). Never raises."""
        self.log.emit(
            "controller.started",
            scope=self.config.scope,
            mode=str(self.config.mode),
            interval_seconds=self.config.interval,
            suspended=self.config.suspend,
        )
        while not self.stop.is_set():
            outcome = self.run_pass()
            if self.stop.is_set():
                break
            self.status.next_pass_at = self.now() + timedelta(seconds=outcome.requeue_after)
            self.wake.wait(timeout=outcome.requeue_after)
            self.wake.clear()
        self.log.emit("controller.stopped", scope=self.config.scope)

    def request_stop(self) -> None:
        """SIGTERM: finish (or journal) what was started, start nothing new, leave the loop."""
        self.stop.set()
        self.wake.set()

    # -- one pass ------------------------------------------------------------------------------------

    def run_pass(self) -> PassOutcome:
        started = time.monotonic()
        out = PassOutcome(record=PassRecord(started=self.now()), requeue_after=self._interval())
        try:
            outcome = self._reconcile(out)
        except CmkError as exc:  # e.g. a lost or damaged journal: its message names the way out
            outcome = Outcome(Result.RETRY, Reason.RETRYING, str(exc)[:1000], "failed")
        except Exception as exc:  # a bug must not kill the controller: report it and retry
            outcome = Outcome(
                Result.RETRY,
                Reason.RETRYING,
                f"internal error ({type(exc).__name__}): {str(exc)[:300]}",
                "failed",
            )
        out.record.seconds = time.monotonic() - started
        self._conclude(out, outcome)
        return out

    def _step(self, name: str, **fields: Any) -> None:
        self.log.emit("pass.step", step=name, scope=self.config.scope, **fields)

    def _reconcile(self, out: PassOutcome) -> Outcome:
        record = out.record
        self._step("fetch")
        try:
            checkout = self.source.fetch()
        except SourceError as exc:
            return Outcome(Result.RETRY, Reason.SOURCE, str(exc), "failed")
        record.revision = checkout.revision
        previous = self.status.last_attempted_revision
        if checkout.revision != previous:  # what a person watching the log waits for after a merge
            self.log.emit(
                "source.new_revision",
                scope=self.config.scope,
                revision=checkout.revision,
                previous=previous,
                source=self.source.display,
            )
        self.status.last_attempted_revision = checkout.revision
        if self.last_good is not None and self.last_good[0] != checkout.revision:
            # a new commit is new intent: refusals without a date are tried again (dated ones stand)
            self.refused = {k: r for k, r in self.refused.items() if r.not_before is not None}
        self._step("load", revision=checkout.revision)
        try:
            desired = load([checkout.spec_dir], cloud=self.clients.cloud, root=checkout.root)
        except SpecError as exc:
            return self._bad_head(out, checkout, exc)
        self.last_good = (checkout.revision, desired)
        suspended = self.config.suspend or desired.settings.suspend
        self.status.suspended = suspended
        self.metrics.suspended.set(1 if suspended else 0)

        store = self.backend.store()
        try:
            self._step("observe", revision=checkout.revision)
            try:
                snap = look(desired, self.clients, journal=store.load(), now=self.now())
            except AzureError as exc:
                return Outcome(Result.RETRY, Reason.OBSERVE, f"cannot read Azure: {exc}", "failed")
            self._observed(out, snap, at_applied=checkout.revision == self.status.last_applied_revision)
            if suspended:
                return self._reported(out, snap, Reason.SUSPENDED, "suspended: observing and reporting only")
            if self.config.mode is Mode.REPORT:
                return self._reported(out, snap, Reason.DRIFT, "report mode: nothing is changed")
            return self._apply(out, checkout, store, snap)
        finally:
            store.close()

    def _bad_head(self, out: PassOutcome, checkout: Checkout, exc: SpecError) -> Outcome:
        """The head does not validate: no writes, but drift is still observed against the last good
        revision (kept in memory; after a restart, the one the journal last recorded)."""
        problem = f"the spec at {checkout.revision[:12]} is invalid: {_relative(str(exc), checkout)}"
        good = self.last_good or self._journal_good()
        if good is None:
            return Outcome(
                Result.STALLED, Reason.SPEC_INVALID, problem + "; no changes until it is fixed", "stalled"
            )
        revision, desired = good
        self.last_good = good
        store = self.backend.store()
        try:
            self._step("observe", revision=revision, reason="the head is invalid: last good revision")
            snap = look(desired, self.clients, journal=store.load(), now=self.now())
        except AzureError as err:
            return Outcome(Result.RETRY, Reason.OBSERVE, f"{problem}; cannot read Azure: {err}", "failed")
        finally:
            store.close()
        self._observed(out, snap, at_applied=revision == self.status.last_applied_revision)
        differ = drifted_resources(out.drift)
        return Outcome(
            Result.STALLED,
            Reason.SPEC_INVALID,
            f"{problem}; no changes until it is fixed; against the last good revision {revision[:12]}, "
            + (f"{differ} resource(s) differ" if differ else "Azure matches it"),
            "stalled",
        )

    def _journal_good(self) -> tuple[str, DesiredState] | None:
        """The spec at the newest revision the journal recorded that the source can still show (a CI
        apply records a spec digest, not a commit: skipped)."""
        loader = getattr(self.source, "checkout_at", None)
        if loader is None or not self.backend.has_journal():
            return None
        store = self.backend.store()
        try:
            revisions = [r.revision for r in store.revisions()]
        finally:
            store.close()
        for revision in list(dict.fromkeys(reversed(revisions)))[:5]:
            try:
                checkout = loader(revision)
                return revision, load([checkout.spec_dir], cloud=self.clients.cloud, root=checkout.root)
            except (SourceError, SpecError):
                continue
        return None

    # -- what was seen -------------------------------------------------------------------------------

    def _observed(self, out: PassOutcome, snap: Snapshot, *, at_applied: bool) -> None:
        """Drift, changes outside cmkctl and deferred work, from this pass's observation only."""
        plan = snap.plan
        out.plan = plan
        report = build_report(
            desired=snap.desired, observed=snap.observed, history=snap.history, plan=plan, now=snap.now
        )
        self.metrics.report(report, blocked=len(plan.blocked))
        for warning in snap.observed.warnings:
            self.log.emit("observe.warning", level="warning", message=warning)
        outside = [o.to_json() for o in snap.outside]
        moved = {ids.id_key(o["resourceId"]) for o in outside}
        items = drift_items(plan)
        for item in items:
            rid = ids.id_key(str(item["resourceId"]))
            if item.get("held"):
                item["cause"] = CAUSE_HELD
            elif rid in moved:
                item["cause"] = CAUSE_LIVE
            elif at_applied:
                item["cause"] = CAUSE_PENDING
            else:
                item["cause"] = CAUSE_SPEC
            self.log.emit("drift", level="warning", **item)
        for change in outside:
            self.log.emit("changed_outside", level="warning", **change)
        out.drift = items
        out.record.drifted = drifted_resources(items)
        with self.status._lock:
            self.status.drift = items
            self.status.changed_outside = outside
        self._deferred(plan, [])

    def _deferred(self, plan: Plan, refused: list[Refused]) -> None:
        deferred = [
            {
                "address": d.address,
                "action": str(d.action),
                "rule": d.rule,
                "reason": d.reason,
                "notBefore": d.not_before.isoformat() if d.not_before else None,
            }
            for d in plan.deferred
        ] + [
            {
                "address": r.address,
                "action": r.change_id.split(":", 1)[0],
                "rule": None,
                "reason": f"Azure refused it: {r.message}",
                "notBefore": r.not_before.isoformat() if r.not_before else None,
            }
            for r in refused
            if r.not_before is not None
        ]
        dates = [d for d in [plan.next_not_before, *(r.not_before for r in refused)] if d is not None]
        nearest = min(dates) if dates else None
        with self.status._lock:
            self.status.deferred = deferred
            self.status.next_not_before = nearest
        out_of = len(deferred)
        self.metrics.deferred.set(out_of)
        self.metrics.next_not_before.set(nearest.timestamp() if nearest else 0)

    def _reported(self, out: PassOutcome, snap: Snapshot, reason: Reason, message: str) -> Outcome:
        plan = snap.plan
        differs = bool(out.drift or plan.deferred or plan.blocked)
        count = drifted_resources(out.drift)
        detail = f"{count} resource(s) differ from the spec" if differs else "Azure matches the spec"
        label = "suspended" if reason is Reason.SUSPENDED else "reported"
        if reason is Reason.SUSPENDED or differs:
            return Outcome(Result.DRIFT, reason, f"{message}; {detail}", label)
        return Outcome(Result.SUCCEEDED, Reason.SUCCEEDED, f"{message}; {detail}", label)

    # -- writing -------------------------------------------------------------------------------------

    def _held_back(self, plan: Plan) -> tuple[list[Change], list[Refused]]:
        """The changes to run now: a refused change (and what depends on it) stays out while its
        refusal holds; a refusal that no longer holds is dropped, so the change is tried again."""
        now = self.now()
        holding: list[Refused] = []
        out_ids: set[str] = set()
        for change in plan.changes:
            key = _identity(change)
            refusal = self.refused.get(key)
            if refusal is None:
                continue
            if refusal.holds(now, plan.fingerprint):
                holding.append(refusal)
                out_ids.add(change.id)
            else:
                del self.refused[key]
                self._step("retry-refused", address=change.address, change=change.id)
        grew = bool(out_ids)
        while grew:  # what depends on a held-back change waits with it
            grew = False
            for change in plan.changes:
                if change.id not in out_ids and any(d in out_ids for d in change.depends_on):
                    out_ids.add(change.id)
                    grew = True
        return [c for c in plan.changes if c.id not in out_ids], holding

    def _apply(self, out: PassOutcome, checkout: Checkout, store: JournalStore, snap: Snapshot) -> Outcome:
        plan = snap.plan
        changes, holding = self._held_back(plan)
        record = out.record
        gateway = GuardedGateway(self._gateway(self.clients), self.stop, self.metrics.in_flight)
        progress = LogProgress(self.log, heartbeat=self.config.heartbeat, revision=checkout.revision)
        session = ApplySession(
            self.backend.lock(),
            lambda: store,
            clients=self.clients,
            settings=self.settings,
            gateway=gateway,
            parallelism=self.config.parallelism,
            busy_timeout=self.config.busy_timeout,
            backoff=self.config.backoff,
            progress=progress,
            now=self.now,
            plan_id=f"controller:{checkout.revision[:12]}",
            close_store=False,  # the pass opened the journal and closes it
        )
        self._step("lock")
        try:
            session.open(timeout=0.0)  # one writer per scope: a CI apply or a second replica waits its turn
        except LockHeldError as exc:
            return Outcome(Result.RETRY, Reason.LOCKED, str(exc), "busy")
        self.metrics.lock_held.set(1)
        try:
            self._step("apply", revision=checkout.revision, changes=len(changes))
            resumed = session.resume()
            work = plan.model_copy(update={"changes": tuple(changes)})
            result = session.execute(work) if (changes or plan.deferred) else ApplyResult()
            result.resumed = resumed
            out.apply = result
        finally:
            session.close()
            progress.close()
            self.metrics.lock_held.set(0)
        done = result.count(StepStatus.DONE) + len([s for s in resumed if s.status is StepStatus.RESUMED])
        record.applied = done
        record.failed = len(result.failed)
        for step in result.steps + result.resumed:
            self.log.emit(
                "step",
                level="error" if step.status is StepStatus.FAILED else "info",
                address=step.address,
                action=str(step.action),
                status=str(step.status),
                message=step.message,
                revision=checkout.revision,
            )
        failed, refused_now = self._failed(result, gateway, checkout, plan, desired=snap.desired)
        holding += refused_now
        self._deferred(plan, holding)
        # what this pass left, per resource (the intent and baseline `drift: report` compares with);
        # read again only when something was written, else this pass's reading is the baseline
        self._step("record", revision=checkout.revision)
        record_applied(
            store, snap.basis, self.clients if done else None, observed=snap.observed,
            revision=checkout.revision, now=self.now(), only_missing=not done,
        )
        if failed is not None:
            return failed
        if done or checkout.revision != self.status.last_applied_revision:  # not one row per idle pass
            store.record_revision(
                Revision(
                    revision=checkout.revision,
                    applied_at=self.now(),
                    summary={"applied": done, "deferred": len(plan.deferred)},
                )
            )
        self.status.last_applied_revision = checkout.revision
        if plan.blocked:
            b = plan.blocked[0]
            return Outcome(
                Result.STALLED,
                Reason.BLOCKED,
                f"applied {done}; {len(plan.blocked)} change(s) can never run as declared; first: "
                f"{b.address} (rule {b.rule}): {b.reason}; {b.remedy}",
                "stalled",
            )
        if holding:
            return self._refusals_outcome(done, holding)
        if plan.deferred:
            d = min(plan.deferred, key=lambda x: x.not_before or datetime.max.replace(tzinfo=UTC))
            when = d.not_before.isoformat() if d.not_before else "after its upstream change"
            return Outcome(
                Result.DEFERRED,
                Reason.DEFERRED,
                f"applied {done}; {len(plan.deferred)} deferred, next {d.address} (rule {d.rule}) "
                f"not before {when}",
                "deferred",
                wake_at=plan.next_not_before,
            )
        if snap.held:
            return Outcome(
                Result.DRIFT,
                Reason.DRIFT,
                f"applied {done}; {len({d.address for d in snap.held})} resource(s) changed outside cmkctl: "
                "reported, not reverted (settings.drift: report)",
                "drift",
            )
        return Outcome(
            Result.SUCCEEDED,
            Reason.SUCCEEDED,
            f"applied revision {checkout.revision[:12]} ({done} change(s))",
            "applied" if done else "in-sync",
        )

    def _failed(
        self,
        result: ApplyResult,
        gateway: GuardedGateway,
        checkout: Checkout,
        plan: Plan,
        *,
        desired: DesiredState,
    ) -> tuple[Outcome | None, list[Refused]]:
        """What the failed steps mean: retry (transient, busy, 403, stopping), or refusals remembered
        (with the date they lift: a deferral; without: re-evaluated every pass)."""
        if not result.failed:
            return None, []
        first = result.failed[0]
        msg = f"{len(result.failed)} failed; first: {first.address}: {first.message}"
        if self.stop.is_set():
            stopping = f"stopped before finishing; the next start resumes: {msg}"
            return Outcome(Result.RETRY, Reason.STOPPING, stopping, "failed"), []
        if all(gateway.retryable(s.id) for s in result.failed):
            return Outcome(Result.RETRY, Reason.RETRYING, msg, "failed"), []
        now = self.now()
        window = for_profile(desired.settings.limits_profile).link_window
        by_id = {c.id: c for c in plan.changes}
        refusals: list[Refused] = []
        for step in result.failed:
            change = by_id.get(step.id)
            if change is None or gateway.retryable(step.id):
                continue
            key = _identity(change)
            previous = self.refused.get(key)
            attempts = previous.attempts + 1 if previous is not None else 1
            wait = min(self.config.max_backoff * 8, self.config.interval * (2 ** (attempts - 1)))
            refusal = Refused(
                change_id=change.id,
                address=change.address,
                revision=checkout.revision,
                message=step.message,
                not_before=gateway.lifts_at(step.id, now=now, window=window),
                retry_at=now + timedelta(seconds=wait),
                attempts=attempts,
            )
            self.refused[key] = refusal
            refusals.append(refusal)
        if refusals and all(r.not_before is not None for r in refusals):
            return None, refusals  # deferrals to the dates the refusals named (rules C4, W3)
        return Outcome(
            Result.STALLED,
            Reason.FAILED,
            f"{msg}; not sent again until what Azure refused changes (re-evaluated every pass)",
            "stalled",
        ), refusals

    def _refusals_outcome(self, done: int, holding: list[Refused]) -> Outcome:
        dated = [r for r in holding if r.not_before is not None]
        if len(dated) == len(holding):
            until = max(r.not_before for r in dated if r.not_before is not None)
            first = min(dated, key=lambda r: r.not_before or until)
            return Outcome(
                Result.DEFERRED,
                Reason.DEFERRED,
                f"applied {done}; {len(dated)} refused by Azure until a date, next {first.address} not "
                f"before {first.not_before.isoformat() if first.not_before else '?'}: {first.message}",
                "deferred",
                wake_at=min(r.not_before for r in dated if r.not_before is not None),
            )
        first = next(r for r in holding if r.not_before is None)
        return Outcome(
            Result.STALLED,
            Reason.FAILED,
            f"applied {done}; {len(holding)} refused by Azure; first: {first.address}: {first.message}; "
            "not sent again until what Azure refused changes (re-evaluated every pass)",
            "stalled",
        )

    # -- the one place an outcome becomes status, metrics and a requeue -----------------------------

    def _conclude(self, out: PassOutcome, outcome: Outcome) -> None:
        now = self.now()
        out.outcome = outcome
        requeue = self._interval()
        if outcome.result is Result.RETRY:
            self.failures += 1
            requeue = min(self.config.max_backoff, self.config.busy_retry * 2 ** (self.failures - 1))
        else:
            self.failures = 0
        wake = [d for d in (outcome.wake_at, self.status.next_not_before) if d is not None]
        if wake:  # wake when the calendar allows the change (C4, W3), not after the interval
            requeue = min(requeue, max(1.0, (min(wake) - now).total_seconds()))
        out.requeue_after = requeue
        record = out.record
        record.result, record.reason, record.message = outcome.label, outcome.reason, outcome.message
        record.outcome = str(outcome.result)
        ready = outcome.result is Result.SUCCEEDED
        self.status.set_outcome(
            ready=ready,
            reconciling=outcome.result in (Result.RETRY, Result.DEFERRED),
            stalled=outcome.result is Result.STALLED,
            reason=outcome.reason,
            message=outcome.message,
            now=now,
        )
        with self.status._lock:
            self.status.consecutive_failures = self.failures
        self.status.record_pass(record)
        self.metrics.ready.set(1 if ready else 0)
        if ready:
            self.metrics.last_success.set(time.time())
        self.metrics.stalled.set(1 if outcome.result is Result.STALLED else 0)
        self.metrics.failures.set(self.failures)
        self.metrics.drifted.set(record.drifted)
        self.metrics.pass_seconds.observe(record.seconds)
        self.metrics.passes.labels(result=record.result).inc()
        self.passes_done += 1
        self.last_pass_finished = time.monotonic()
        self.log.emit(
            "pass",
            level="error" if outcome.result in (Result.RETRY, Result.STALLED) else "info",
            scope=self.config.scope,
            requeue_after_seconds=round(requeue, 1),
            **record.to_json(),
        )

    # -- helpers -------------------------------------------------------------------------------------

    def _interval(self) -> float:
        j = max(0.0, min(self.config.jitter, 0.5))
        return max(1.0, self.config.interval * self.rng.uniform(1 - j, 1 + j))

    def _journal_revision(self) -> str | None:
        """The last revision this scope applied, from the journal: a restart keeps lastAppliedRevision."""
        if not self.backend.has_journal():
            return None
        store = self.backend.store()
        try:
            revisions = store.revisions()
        finally:
            store.close()
        return revisions[-1].revision if revisions else None


def _relative(text: str, checkout: Checkout) -> str:
    """Spec errors name files inside the checkout, not the controller's private clone path."""
    return text.replace(str(checkout.spec_dir) + "/", "")


__all__ = ["ControllerConfig", "Mode", "Outcome", "PassOutcome", "Reconciler", "Result", "ShuttingDown"]
