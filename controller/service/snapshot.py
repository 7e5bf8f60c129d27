"""One look at the estate: load -> observe -> merge history -> plan. Written once, used by every face.

`cmkctl plan`, `drift`, `report`, `apply` and each controller pass start from a `Snapshot`; the
benchmarks call the same function, so what they measure is what users run.

`settings.drift: report` is decided here, once (controller.planning.held): a field changed outside
cmkctl since the last apply, whose spec value did not change, is reported and not planned, unless
drift is corrected (`settings.drift: correct`, `--correct-drift`). Every apply records, per resource,
the spec's intent and the live state it left (the journal's `AppliedResource`); `changed_outside`
diffs that live state against now, unmanaged fields included (deepdiff).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deepdiff import DeepDiff

from controller.azure.clients import AzureClients
from controller.azure.observe import observe
from controller.loading import load
from controller.model import clouds, ids
from controller.model.history import AppliedResource, History
from controller.model.limits import for_profile
from controller.model.observed import ObservedState
from controller.model.settings import Settings
from controller.model.spec import DesiredState, DriftMode
from controller.planning import held as holding
from controller.planning.fingerprint import fingerprint, resource_digests
from controller.planning.plan import Drift, Plan
from controller.planning.planner import make_plan
from controller.service.state import StateRef, parse_state


@dataclass(frozen=True)
class OutsideChange:
    """One field of a resource that changed outside cmkctl since the last apply (Terraform's
    "objects have changed outside"): `path` in the observed resource, before = what that apply left."""

    address: str
    resource_id: str
    path: str
    before: Any
    after: Any
    applied_revision: str

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "resourceId": self.resource_id,
            "path": self.path,
            "before": self.before,
            "after": self.after,
            "appliedRevision": self.applied_revision,
        }


@dataclass(frozen=True)
class Snapshot:
    """Everything one look at the estate yields: what plan, drift, report and apply start from."""

    desired: DesiredState
    observed: ObservedState
    history: History
    plan: Plan
    now: datetime
    # differences made outside cmkctl that the plan leaves as they are (drift: report); also in plan.drift
    held: tuple[Drift, ...] = ()
    # field-level changes since the last apply's live state, managed or not (deepdiff)
    outside: tuple[OutsideChange, ...] = ()
    correct_drift: bool = False
    applied: dict[str, AppliedResource] = field(default_factory=dict)

    @property
    def basis(self) -> RecordBasis:
        """What recording an apply of this snapshot needs of it (not its plan or its reading)."""
        return RecordBasis(self.desired, self.applied, self.held)

    def artefact(self, spec_paths: Sequence[str]) -> Plan:
        """The plan as `plan --out` writes it: with what `apply PLANFILE` needs to check it again."""
        return self.plan.model_copy(
            update={
                "spec_paths": tuple(str(Path(p).resolve()) for p in spec_paths),
                "resource_digests": resource_digests(self.observed),
                "correct_drift": self.correct_drift,
            }
        )


@dataclass(frozen=True)
class RecordBasis:
    """The part of a snapshot an apply's record needs once the plan has run: the spec, what the last
    apply left, the fields held as drift. An apply of 40,000 links holds this while it reads the
    state again, and lets go of the plan (~90 MB) and the state read before it."""

    desired: DesiredState
    applied: dict[str, AppliedResource]
    held: tuple[Drift, ...]

    def records(
        self, observed_after: ObservedState, *, revision: str, now: datetime
    ) -> list[AppliedResource]:
        """The journal entries the apply leaves (intent, and the live state after it)."""
        return holding.records(
            self.desired,
            observed_after,
            previous=self.applied,
            held=self.held,
            revision=revision,
            now=now,
        )


def plan_now(settings: Settings | None = None, clients: AzureClients | None = None) -> datetime:
    """The planning clock: CMKCTL_NOW if set (what-if: "plan as of"), else the service's clock (ARM's
    latest `Date`, so Azure's 30-day and 14-day windows are counted as Azure counts them), else,
    before any answer from Azure, the local clock."""
    chosen = (settings or Settings.read()).now
    if chosen is not None:
        return chosen
    return clients.service_now() if clients is not None else datetime.now(UTC)


# Full (oldest-generation) garbage collections while a snapshot is built: every object a look creates
# (the spec's models, 40,000 observed workspaces, their history) lives until the plan is made, so each
# full collection walks a growing heap and frees nothing; under CPython's default (one per 10
# middle-aged collections) ~14 of them run, a third of the CPU of a plan of a 40,000-workspace fleet.
# Young collections, which free the cycles the HTTP stack leaves, keep their default pace.
FULL_COLLECTION_THRESHOLD = 1000
_gc_lock = threading.Lock()
_gc_depth = 0
_gc_saved: tuple[int, int, int] = (0, 0, 0)


@contextlib.contextmanager
def few_full_collections() -> Iterator[None]:
    """Defer the garbage collector's full collections for the duration (see above). Nests, and is safe
    across threads: the threshold the process had is restored when the last one ends."""
    global _gc_depth, _gc_saved
    with _gc_lock:
        if _gc_depth == 0:
            _gc_saved = gc.get_threshold()
            young, middle, full = _gc_saved
            gc.set_threshold(young, middle, max(full, FULL_COLLECTION_THRESHOLD))
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0:
                gc.set_threshold(*_gc_saved)


def look(
    desired: DesiredState,
    clients: AzureClients,
    *,
    journal: History,
    now: datetime | None = None,
    activity_log: bool = True,
    correct_drift: bool = False,
) -> Snapshot:
    """Observe what `desired` touches, merge our journal with the live history, plan (pure).

    `correct_drift`: plan hand-made differences back to the spec even under `settings.drift: report`.
    `now` None: `plan_now` with the clients' knobs, read once the first lists have answered, so the
    service's clock is known; the plan counts from the time the observation finished.
    """
    with few_full_collections():
        return _look(desired, clients, journal=journal, now=now, activity_log=activity_log,
                     correct_drift=correct_drift)


def _look(
    desired: DesiredState,
    clients: AzureClients,
    *,
    journal: History,
    now: datetime | None,
    activity_log: bool,
    correct_drift: bool,
) -> Snapshot:
    clock = now if now is not None else (lambda: plan_now(clients.settings, clients))
    observed, live_history = observe(desired, clients, now=clock, activity_log=activity_log)
    now = observed.read_at
    history = journal.merged(live_history)
    correct = correct_drift or desired.settings.drift is DriftMode.CORRECT
    applied = journal.applied_by_key()
    planned_from, held = holding.hold(desired, observed, applied, correct=correct)
    plan = make_plan(
        desired=desired,
        observed=planned_from,
        now=now,
        history=history,
        limits=for_profile(desired.settings.limits_profile),
    )
    if held:  # the plan is of the live state as it is (stale-plan check), the held fields reported
        drift = tuple(sorted(held + plan.drift, key=lambda d: (d.address, d.field)))
        plan = plan.model_copy(
            update={
                "fingerprint": fingerprint(observed),
                "drift": drift,
                "summary": plan.summary.model_copy(update={"drift": len(drift)}),
            }
        )
    return Snapshot(
        desired=desired,
        observed=observed,
        history=history,
        plan=plan,
        now=now,
        held=held,
        outside=changed_outside(desired, observed, applied),
        correct_drift=correct,
        applied=applied,
    )


def changed_outside(
    desired: DesiredState, observed: ObservedState, applied: dict[str, AppliedResource]
) -> tuple[OutsideChange, ...]:
    """Every field that differs between what the last apply left and now, per declared resource."""
    if not applied:
        return ()
    out: list[OutsideChange] = []
    resources: list[tuple[str, str, str, Any]] = []
    for cluster in desired.clusters:
        obs = observed.clusters.get(ids.id_key(cluster.arm_id))
        key = holding.cluster_record_key(cluster.arm_id)
        resources.append((key, f"cluster.{cluster.metadata.name}", obs.id if obs else cluster.arm_id, obs))
    for ws_key, entry in desired.workspace_entries().items():
        ws = observed.workspaces.get(ws_key)
        name = ids.ResourceId.parse(entry.id).name
        resources.append((holding.workspace_record_key(entry.id), f"workspace.{name}", entry.id, ws))
    for key, address, rid, live in resources:
        record = applied.get(key)
        if record is None:
            continue
        now = holding.baseline_of(live) if live is not None else None
        if now is None:
            out.append(OutsideChange(address, rid, "(resource)", "exists", None, record.revision))
            continue
        diff = DeepDiff(record.baseline, now, ignore_order=True, view="tree")
        for levels in diff.values():
            for level in levels:
                before = None if _absent(level.t1) else level.t1
                after = None if _absent(level.t2) else level.t2
                out.append(OutsideChange(address, rid, _path(level.path(output_format="list")), before, after,
                                         record.revision))
    return tuple(sorted(out, key=lambda c: (c.address, c.path)))


def _absent(value: Any) -> bool:
    return type(value).__name__ == "NotPresent"


def _path(parts: list[Any]) -> str:
    return ".".join(str(p) for p in parts) or "(resource)"


def snapshot(
    paths: Sequence[str],
    *,
    state: StateRef | str | None = None,
    clients: AzureClients | None = None,
    now: datetime | None = None,
    journal: History | None = None,
    settings: Settings | None = None,
    cloud: clouds.Cloud | None = None,
    correct_drift: bool = False,
) -> Snapshot:
    """Load the spec, then `look`. Raises CmkError subclasses only.

    `journal` is the history of a store the caller already holds (apply, under its lock); otherwise
    the journal of `state` is read without locking or creating anything. The cloud is the clients'
    (`cloud` when this builds them): a key's vaultUri must be a vault of that cloud.
    """
    knobs = settings or Settings.read()
    own = clients is None
    azure = clients or AzureClients(cloud=cloud)
    try:
        with few_full_collections():
            desired = load(list(paths), cloud=azure.cloud)
            when = now or knobs.now  # None: the service's clock (plan_now), once Azure has answered
            if journal is None:
                ref = state if isinstance(state, StateRef) else parse_state(state, knobs, cloud=azure.cloud)
                journal = ref.read_history(cloud=azure.cloud)
            return look(desired, azure, journal=journal, now=when, correct_drift=correct_drift)
    finally:
        if own:
            azure.close()
