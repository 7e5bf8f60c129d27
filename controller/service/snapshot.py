"""One look at the estate: load -> observe -> merge history -> plan. Written once, used by every face.

`cmkctl plan`, `drift`, `report`, `apply` and each controller pass start from a `Snapshot`; the
benchmarks call the same function, so what they measure is what users run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from controller.azure.clients import AzureClients
from controller.azure.observe import observe
from controller.loading import load
from controller.model import clouds
from controller.model.history import History
from controller.model.limits import for_profile
from controller.model.observed import ObservedState
from controller.model.settings import Settings
from controller.model.spec import DesiredState
from controller.planning.fingerprint import resource_digests
from controller.planning.plan import Plan
from controller.planning.planner import make_plan
from controller.service.state import StateRef, parse_state


@dataclass(frozen=True)
class Snapshot:
    """Everything one look at the estate yields: what plan, drift, report and apply start from."""

    desired: DesiredState
    observed: ObservedState
    history: History
    plan: Plan
    now: datetime

    def artefact(self, spec_paths: Sequence[str]) -> Plan:
        """The plan as `plan --out` writes it: with what `apply PLANFILE` needs to check it again."""
        return self.plan.model_copy(
            update={
                "spec_paths": tuple(str(Path(p).resolve()) for p in spec_paths),
                "resource_digests": resource_digests(self.observed),
            }
        )


def plan_now(settings: Settings | None = None) -> datetime:
    """The planning clock: CMKCTL_NOW if set (what-if: "plan as of"), else the wall clock."""
    chosen = (settings or Settings.read()).now
    return chosen if chosen is not None else datetime.now(UTC)


def look(
    desired: DesiredState,
    clients: AzureClients,
    *,
    journal: History,
    now: datetime,
    activity_log: bool = True,
) -> Snapshot:
    """Observe what `desired` touches, merge our journal with the live history, plan (pure)."""
    observed, live_history = observe(desired, clients, now=now, activity_log=activity_log)
    history = journal.merged(live_history)
    plan = make_plan(
        desired=desired,
        observed=observed,
        now=now,
        history=history,
        limits=for_profile(desired.settings.limits_profile),
    )
    return Snapshot(desired=desired, observed=observed, history=history, plan=plan, now=now)


def snapshot(
    paths: Sequence[str],
    *,
    state: StateRef | str | None = None,
    clients: AzureClients | None = None,
    now: datetime | None = None,
    journal: History | None = None,
    settings: Settings | None = None,
    cloud: clouds.Cloud | None = None,
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
        desired = load(list(paths), cloud=azure.cloud)
        when = now or plan_now(knobs)
        if journal is None:
            ref = state if isinstance(state, StateRef) else parse_state(state, knobs, cloud=azure.cloud)
            journal = ref.read_history(cloud=azure.cloud)
        return look(desired, azure, journal=journal, now=when)
    finally:
        if own:
            azure.close()
