"""The GitOps loop: level-triggered passes that make Azure match the spec at the source's revision.

One pass (`Reconciler.run_pass`): fetch the source (record the commit) -> load the spec -> observe ->
plan (the same pure planner and rules as `cmkctl plan`) -> report drift -> in `apply` mode, take the
scope's writer lock and let the executor run what is ready -> status and metrics, written once in a
`finally`. Nothing is remembered between passes except the journal (SQLite, in the state directory)
and the status; a restarted controller simply runs the next pass.

When to run again (`PassOutcome.requeue_after`): the earliest of the jittered interval, the nearest
`not_before` of a deferred change (rules C4, W3: the controller wakes when the calendar allows it),
and a short busy retry after a retryable failure (lock held, Azure busy/throttled, source down).

Terminal errors (an invalid spec, a rule the service refused, a blocked change) stall: the
controller keeps observing and reporting drift, but makes no write until the revision changes. A
refusal that lifts by the calendar (rule C4: Azure's capacity lock, which can outlast the profile's)
stalls only until its date (`stalledUntil`); a refusal is never re-sent pass after pass.

Drift: every difference between live and spec is reported (JSON log line + /status). It is corrected
only in `apply` mode and only through the plan, so a correction obeys every rule any plan obeys
(a drifted capacity may be deferred by C4, a re-link by W3). With `settings.drift: report` in the
spec (the default), differences that appear at a revision already applied (someone changed Azure by
hand) are only reported; `settings.drift: correct` makes the controller revert them. A new commit
always converges its scope.

Each drifted field says which side moved (`cause`): the spec (a commit not yet applied), the live
side (the resource changed since the last pass that found live == spec, or since the last applied
plan finished: digests of that state are kept in the state directory), or neither yet (a deferred
change of the applied revision). /status lists the resources changed since that baseline.

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
from controller.azure.observe import observe
from controller.azure.operations import Operations
from controller.errors import LockHeldError, SpecError
from controller.execution.executor import ApplyResult, Gateway, StepStatus
from controller.loading import load
from controller.model import ids
from controller.model.history import Revision
from controller.model.settings import Settings
from controller.model.spec import DesiredState, DriftMode
from controller.planning.fingerprint import changed_resources, resource_digests
from controller.planning.plan import Change, Plan
from controller.reconcile.drift import drift_items, drifted_resources
from controller.reconcile.guard import GuardedGateway, ShuttingDown
from controller.reconcile.logs import JsonLog
from controller.reconcile.metrics import Metrics
from controller.reconcile.source import Checkout, SourceError, open_source, redact
from controller.reconcile.status import PassRecord, Reason, Status
from controller.service.apply_session import ApplySession
from controller.service.snapshot import look
from controller.service.state import JournalStore, StateBackend, StateRef

INTENT_FILE = "controller-intent.json"
BASELINE_FILE = "controller-baseline.json"  # digests of the live state the last time it matched the spec
CAUSE_LIVE = "live changed outside the controller since it last matched the spec"
CAUSE_PENDING = "the applied revision is not fully reached yet (e.g. a deferred change)"
CAUSE_SPEC = "the spec changed: this revision is not applied yet"
STALL_NOTE = " (no changes until the revision changes)"


class Mode(StrEnum):
    APPLY = "apply"
    REPORT = "report"


@dataclass
class ControllerConfig:
    source: str
    state_dir: Path
    ref: str = "main"
    path: str = "."
    interval: float = 600.0
    mode: Mode = Mode.APPLY
    suspend: bool = False
    busy_retry: float = 30.0
    jitter: float = 0.1  # the interval is stretched or shrunk by up to 10 % so replicas don't align
    parallelism: int = 10
    # wait this long for someone else's running operation (C6/W5), then retry next pass instead:
    # a pass must not block drift reporting for hours
    busy_timeout: float = 600.0
    backoff: float = 2.0
    workdir: Path | None = None  # where the git clone lives (default: <state>/source)
    state_url: str | None = None  # azureblob://... keeps the journal and lock in a blob (else state_dir)

    @property
    def scope(self) -> str:
        """What this instance owns: the spec path in its source, guarded by the state's lock."""
        return f"{redact(self.source)}@{self.ref}:{self.path}"


@dataclass
class PassOutcome:
    record: PassRecord
    requeue_after: float
    plan: Plan | None = None
    apply: ApplyResult | None = None
    drift: list[dict[str, Any]] = field(default_factory=list)


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
        workdir = config.workdir or config.state_dir / "source"
        self.source = open_source(config.source, ref=config.ref, path=config.path, workdir=workdir)
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
        # addresses deferred at the applied revision: spec intent still to do, not hand-made drift;
        # kept in the state directory so a restarted controller still applies them when their date comes
        self._intent_file = config.state_dir / INTENT_FILE
        self._baseline_file = config.state_dir / BASELINE_FILE
        self._intended: set[str] = self._load_intent()

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
        record = PassRecord(started=self.now())
        outcome = PassOutcome(record=record, requeue_after=self._interval())
        try:
            self._pass(outcome)
        except Exception as exc:  # a bug must not kill the controller: report it and retry soon
            self._finish(
                outcome,
                ok=False,
                result="failed",
                reason=Reason.RETRYING,
                message=f"internal error ({type(exc).__name__}): {str(exc)[:300]}",
                retry=True,
            )
        finally:
            record.seconds = time.monotonic() - started
            self.status.record_pass(record)
            self.metrics.pass_seconds.observe(record.seconds)
            self.metrics.passes.labels(result=record.result).inc()
            self.passes_done += 1
            self.last_pass_finished = time.monotonic()
            self.log.emit(
                "pass",
                level="error" if record.result in ("failed", "stalled") else "info",
                scope=self.config.scope,
                requeue_after_seconds=round(outcome.requeue_after, 1),
                **record.to_json(),
            )
        return outcome

    def _pass(self, outcome: PassOutcome) -> None:
        record = outcome.record
        # 1. source
        try:
            checkout = self.source.fetch()
        except SourceError as exc:
            self._finish(
                outcome, ok=False, result="failed", reason=Reason.SOURCE, message=str(exc), retry=True
            )
            return
        record.revision = checkout.revision
        self.status.last_attempted_revision = checkout.revision
        if self.status.stalled_revision not in (None, checkout.revision):
            self.status.stalled_revision = None  # a new commit: try again (Flux semantics)
        if self.status.stalled_until is not None and self.now() >= self.status.stalled_until:
            self.status.stalled_revision = None  # the refusal's date has come (rule C4): try again
        if self.status.stalled_revision is None:
            self.status.stalled_until = None
        # 2. spec
        try:
            desired = load([checkout.spec_dir], cloud=self.clients.cloud, root=checkout.root)
        except SpecError as exc:
            self._stall(
                outcome,
                checkout,
                Reason.SPEC_INVALID,
                f"the spec at {checkout.revision[:12]} is invalid: {_relative(str(exc), checkout)}",
            )
            return
        suspended = self.config.suspend or desired.settings.suspend
        self.status.suspended = suspended
        self.metrics.suspended.set(1 if suspended else 0)
        # 3. observe and plan (every pass, even stalled or suspended: drift is always reported)
        store = self.backend.store()
        try:
            now = self.now()
            try:
                snap = look(desired, self.clients, journal=store.load(), now=now)
            except AzureError as exc:
                self._finish(
                    outcome,
                    ok=False,
                    result="failed",
                    reason=Reason.OBSERVE,
                    message=f"cannot read Azure: {exc}",
                    retry=True,
                )
                return
            plan, observed = snap.plan, snap.observed
            outcome.plan = plan
            for warning in observed.warnings:
                self.log.emit("observe.warning", level="warning", message=warning)
            at_applied = checkout.revision == self.status.last_applied_revision
            digests = resource_digests(observed)
            moved = self._moved_since_converged(digests)
            outcome.drift = self._report_drift(plan, at_applied=at_applied, moved=moved)
            if not plan.changes and not plan.blocked:  # live == spec (deferred aside): the new baseline
                self._save_baseline(checkout.revision, digests, now)
            self._report_deferred(plan)
            record.drifted = len({d["address"] for d in outcome.drift})
            record.deferred = len(plan.deferred)
            if plan.next_not_before is not None:  # wake when the calendar allows the change (C4, W3)
                until = (plan.next_not_before - now).total_seconds()
                outcome.requeue_after = min(outcome.requeue_after, max(1.0, until))
            # 4. decide whether to write
            if suspended:
                self._finish_reported(outcome, Reason.SUSPENDED, "suspended: observing and reporting only")
                return
            if self.config.mode is Mode.REPORT:
                self._finish_reported(
                    outcome,
                    Reason.DRIFT if plan.has_work or plan.drift else Reason.SUCCEEDED,
                    "report mode: nothing is changed",
                )
                return
            if self.status.stalled_revision == checkout.revision:
                cond = self.status.condition("Stalled")
                self._stall(
                    outcome,
                    checkout,
                    Reason(cond.reason) if cond else Reason.FAILED,
                    cond.message if cond else "stalled",
                )
                if self.status.stalled_until is not None:  # wake when the refusal lifts (C4)
                    wait = (self.status.stalled_until - now).total_seconds()
                    outcome.requeue_after = min(outcome.requeue_after, max(1.0, wait))
                return
            changes = self._selected(plan, desired, at_applied=at_applied)
            self._apply(outcome, checkout, store, plan, changes, desired)
        finally:
            store.close()

    # -- writing -------------------------------------------------------------------------------------

    def _selected(self, plan: Plan, desired: DesiredState, *, at_applied: bool) -> list[Change]:
        """All ready changes, except hand-made drift at an applied revision when drift is 'report'."""
        if not at_applied or desired.settings.drift is DriftMode.CORRECT:
            return list(plan.changes)
        keep = {c.id for c in plan.changes if c.address in self._intended}
        changed = True
        while changed:  # a change whose dependency is left out is left out too
            changed = False
            for c in plan.changes:
                if c.id in keep and any(
                    d not in keep and d in {x.id for x in plan.changes} for d in c.depends_on
                ):
                    keep.discard(c.id)
                    changed = True
        return [c for c in plan.changes if c.id in keep]

    def _apply(
        self,
        outcome: PassOutcome,
        checkout: Checkout,
        store: JournalStore,
        plan: Plan,
        changes: list[Change],
        desired: DesiredState,
    ) -> None:
        record = outcome.record
        gateway = GuardedGateway(self._gateway(self.clients), self.stop, self.metrics.in_flight)
        session = ApplySession(
            self.backend.lock(),
            lambda: store,
            clients=self.clients,
            settings=self.settings,
            gateway=gateway,
            parallelism=self.config.parallelism,
            busy_timeout=self.config.busy_timeout,
            backoff=self.config.backoff,
            now=self.now,
            plan_id=f"controller:{checkout.revision[:12]}",
            close_store=False,  # the pass opened the journal and closes it
        )
        try:
            session.open(timeout=0.0)  # one writer per scope: a CI apply or a second replica waits its turn
        except LockHeldError as exc:
            self._finish(outcome, ok=False, result="busy", reason=Reason.LOCKED, message=str(exc), retry=True)
            return
        self.metrics.lock_held.set(1)
        try:
            resumed = session.resume()
            work = plan.model_copy(update={"changes": tuple(changes)})
            result = session.execute(work) if (changes or plan.deferred) else ApplyResult()
            result.resumed = resumed
            outcome.apply = result
        finally:
            session.close()
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
        self._save_intent(checkout.revision, {d.address for d in plan.deferred})
        if result.failed:
            first = result.failed[0]
            msg = f"{len(result.failed)} failed; first: {first.address}: {first.message}"
            if self.stop.is_set():
                self._finish(
                    outcome,
                    ok=False,
                    result="failed",
                    reason=Reason.STOPPING,
                    retry=True,
                    message=f"stopped before finishing; the next start resumes: {msg}",
                )
            elif all(gateway.retryable(s.id) for s in result.failed):
                self._finish(
                    outcome, ok=False, result="failed", reason=Reason.RETRYING, message=msg, retry=True
                )
            else:
                self._stall(outcome, checkout, Reason.FAILED, msg)
                lifts = [gateway.lifts_at(s.id) for s in result.failed if not gateway.retryable(s.id)]
                if lifts and all(d is not None for d in lifts):
                    # every permanent refusal lifts by the calendar (C4): stalled until the last one
                    # lifts, not for good; the next pass then tries once more
                    until = max(d for d in lifts if d is not None)
                    self.status.stalled_until = until
                    wait = (until - self.now()).total_seconds()
                    outcome.requeue_after = min(outcome.requeue_after, max(1.0, wait))
            return
        if plan.blocked:
            b = plan.blocked[0]
            self._stall(
                outcome,
                checkout,
                Reason.BLOCKED,
                f"{len(plan.blocked)} change(s) can never run as declared; first: {b.address} "
                f"(rule {b.rule}): {b.reason}; {b.remedy}",
            )
            return
        if done or checkout.revision != self.status.last_applied_revision:  # not one row per idle pass
            store.record_revision(
                Revision(
                    revision=checkout.revision,
                    applied_at=self.now(),
                    summary={"applied": done, "deferred": len(plan.deferred)},
                )
            )
        self.status.last_applied_revision = checkout.revision
        left_out = len(plan.changes) - len(changes)
        if done and not left_out:
            self._rebaseline(desired, checkout.revision)
        if plan.deferred:
            d = min(plan.deferred, key=lambda x: x.not_before or datetime.max.replace(tzinfo=UTC))
            when = d.not_before.isoformat() if d.not_before else "after its upstream change"
            self._finish(
                outcome,
                ok=False,
                result="deferred",
                reason=Reason.DEFERRED,
                message=f"applied {done}; {len(plan.deferred)} deferred, next {d.address} "
                f"(rule {d.rule}) not before {when}",
                retry=False,
                reconciling=True,
            )
        elif left_out:
            self._finish(
                outcome,
                ok=False,
                result="drift",
                reason=Reason.DRIFT,
                message=f"applied {done}; {left_out} hand-made change(s) reported, not reverted "
                "(settings.drift: report)",
                retry=False,
            )
        else:
            self._finish(
                outcome,
                ok=True,
                result="applied" if done else "in-sync",
                reason=Reason.SUCCEEDED,
                message=f"applied revision {checkout.revision[:12]} ({done} change(s))",
                retry=False,
            )

    # -- reporting -----------------------------------------------------------------------------------

    def _report_drift(self, plan: Plan, *, at_applied: bool, moved: set[str]) -> list[dict[str, Any]]:
        """Live vs spec, per resource and field; `cause` says which side moved.

        `moved`: resources (id keys) whose live state changed since the last pass that found Azure
        matching the spec: a difference there was made outside this controller.
        """
        items = drift_items(plan)
        for item in items:
            rid = ids.id_key(str(item["resourceId"]))
            if any(rid == m or rid.startswith(m + "/") for m in moved):
                item["cause"] = CAUSE_LIVE
            elif at_applied:
                item["cause"] = CAUSE_PENDING
            else:
                item["cause"] = CAUSE_SPEC
        for item in items:
            self.log.emit("drift", level="warning", **item)
        with self.status._lock:
            self.status.drift = items
        self.metrics.drifted.set(drifted_resources(items))
        return items

    def _report_deferred(self, plan: Plan) -> None:
        deferred = [
            {
                "address": d.address,
                "action": str(d.action),
                "rule": d.rule,
                "reason": d.reason,
                "notBefore": d.not_before.isoformat() if d.not_before else None,
            }
            for d in plan.deferred
        ]
        with self.status._lock:
            self.status.deferred = deferred
            self.status.next_not_before = plan.next_not_before
        self.metrics.deferred.set(len(deferred))
        nnb = plan.next_not_before
        self.metrics.next_not_before.set(nnb.timestamp() if nnb else 0)

    def _finish_reported(self, outcome: PassOutcome, reason: Reason, message: str) -> None:
        plan = outcome.plan
        differs = bool(outcome.drift or (plan and (plan.deferred or plan.blocked)))
        detail = (
            f"{len({d['address'] for d in outcome.drift})} resource(s) differ from the spec"
            if differs
            else "Azure matches the spec"
        )
        self._finish(
            outcome,
            ok=not differs and reason is not Reason.SUSPENDED,
            result="suspended" if reason is Reason.SUSPENDED else "reported",
            reason=reason if differs or reason is Reason.SUSPENDED else Reason.SUCCEEDED,
            message=f"{message}; {detail}",
            retry=False,
        )

    def _stall(self, outcome: PassOutcome, checkout: Checkout, reason: Reason, message: str) -> None:
        self.status.stalled_revision = checkout.revision
        self.metrics.stalled.set(1)
        outcome.record.result, outcome.record.reason, outcome.record.message = "stalled", reason, message
        self.status.set_outcome(
            ready=False,
            reconciling=False,
            stalled=True,
            reason=reason,
            message=message if message.endswith(STALL_NOTE) else message + STALL_NOTE,
            now=self.now(),
        )
        self.metrics.ready.set(0)

    def _finish(
        self,
        outcome: PassOutcome,
        *,
        ok: bool,
        result: str,
        reason: Reason,
        message: str,
        retry: bool,
        reconciling: bool | None = None,
    ) -> None:
        if retry:
            outcome.requeue_after = min(outcome.requeue_after, self.config.busy_retry)
        outcome.record.result, outcome.record.reason, outcome.record.message = result, reason, message
        if self.status.stalled_revision is None:
            self.metrics.stalled.set(0)
        self.status.set_outcome(
            ready=ok,
            reconciling=retry if reconciling is None else reconciling,
            stalled=False,
            reason=reason,
            message=message,
            now=self.now(),
        )
        self.metrics.ready.set(1 if ok else 0)

    # -- helpers -------------------------------------------------------------------------------------

    def _interval(self) -> float:
        j = max(0.0, min(self.config.jitter, 0.5))
        return max(1.0, self.config.interval * self.rng.uniform(1 - j, 1 + j))

    def _moved_since_converged(self, digests: dict[str, str]) -> set[str]:
        """Id keys of resources whose live state changed since the last converged pass (if any)."""
        try:
            base = json.loads(self._baseline_file.read_text(encoding="utf-8"))
            before = dict(base["digests"])
        except (OSError, ValueError, KeyError, TypeError):
            return set()
        moved = {k.split(":", 1)[1] for k in changed_resources(before, digests) if ":" in k}
        with self.status._lock:
            self.status.last_converged = {"revision": base.get("revision"), "at": base.get("at")}
            self.status.changed_since_converged = sorted(moved)
        return moved

    def _rebaseline(self, desired: DesiredState, revision: str) -> None:
        """What the applied plan left is the new 'live matches the spec' baseline (one more read)."""
        now = self.now()
        try:
            observed, _ = observe(desired, self.clients, now=now, activity_log=False)
        except AzureError:
            return  # the next pass that finds nothing to do records it instead
        self._save_baseline(revision, resource_digests(observed), now)

    def _save_baseline(self, revision: str, digests: dict[str, str], now: datetime) -> None:
        tmp = self._baseline_file.with_suffix(".tmp")
        body = {"revision": revision, "at": now.isoformat(), "digests": digests}
        tmp.write_text(json.dumps(body, sort_keys=True), encoding="utf-8")
        tmp.replace(self._baseline_file)
        with self.status._lock:
            self.status.last_converged = {"revision": revision, "at": now.isoformat()}
            self.status.changed_since_converged = []

    def _load_intent(self) -> set[str]:
        try:
            data = json.loads(self._intent_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return set()
        if not isinstance(data, dict) or data.get("revision") != self.status.last_applied_revision:
            return set()
        return {str(a) for a in data.get("deferred", [])}

    def _save_intent(self, revision: str, addresses: set[str]) -> None:
        self._intended = addresses
        tmp = self._intent_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"revision": revision, "deferred": sorted(addresses)}), encoding="utf-8")
        tmp.replace(self._intent_file)  # atomic: a crash leaves the old file or the new one

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


__all__ = ["ControllerConfig", "Mode", "PassOutcome", "Reconciler", "ShuttingDown"]
