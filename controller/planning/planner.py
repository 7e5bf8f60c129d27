"""The pure planner: make_plan(desired, observed, now, history, limits) -> Plan.

No I/O here, ever (import-linter `pure-core` contract): `now` is a parameter, history is a value.
The kinds run in dependency order, each recording its steps on a `Workbench`:

    clusters (deletes, creates, updates, keys) → workspace links → BYOS

then the graph is checked (every dependency exists, no cycle) and the changes are emitted in a
deterministic topological order; deferred, blocked, warnings and drift are sorted.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime

from controller.model.history import History
from controller.model.limits import Limits
from controller.model.observed import ObservedState
from controller.model.spec import DesiredState
from controller.planning.context import Workbench
from controller.planning.fingerprint import fingerprint
from controller.planning.graph import PlanGraphError, topological_order
from controller.planning.kinds.byos import plan_byos
from controller.planning.kinds.cluster import plan_clusters
from controller.planning.kinds.workspace_link import plan_links
from controller.planning.plan import Action, Plan, Severity, Summary, Warning_

_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def _warning_order(w: Warning_) -> tuple[int, str, str, str]:
    return (_SEVERITY_ORDER[w.severity], w.address or "", w.code, w.message)


def spec_digest(desired: DesiredState) -> str:
    """sha256 of the desired state (without source locations), to tie a plan to its spec."""
    body = desired.model_dump_json(by_alias=True, exclude={"sources"})
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def make_plan(
    *, desired: DesiredState, observed: ObservedState, now: datetime, history: History, limits: Limits
) -> Plan:
    wb = Workbench(desired=desired, observed=observed, now=now, history=history, limits=limits)
    plan_clusters(wb)
    plan_links(wb)
    plan_byos(wb)
    for warning in observed.warnings:
        wb.warn("observe", warning)

    ordered = topological_order(wb.changes)
    known = set(wb.changes) | set(wb.deferred) | set(wb.blocked)
    for item in wb.deferred.values():
        missing = [d for d in item.depends_on if d not in known]
        if missing:
            raise PlanGraphError(f"deferred {item.id} depends on unknown steps {missing}")

    counts = Counter(c.action for c in ordered)
    summary = Summary(
        by_action={a: counts[a] for a in Action if counts[a]},
        deferred=len(wb.deferred), blocked=len(wb.blocked), drift=len(wb.drift),
    )
    warnings = {(w.code, w.message, w.address): w for w in wb.warnings}
    return Plan(
        generated_at=now,
        limits_profile=limits.profile,
        fingerprint=fingerprint(observed),
        spec_digest=spec_digest(desired),
        changes=tuple(ordered),
        deferred=tuple(sorted(wb.deferred.values(), key=lambda d: d.id)),
        blocked=tuple(sorted(wb.blocked.values(), key=lambda b: b.id)),
        warnings=tuple(sorted(warnings.values(), key=_warning_order)),
        drift=tuple(sorted(wb.drift, key=lambda d: (_SEVERITY_ORDER[d.severity], d.address, d.field))),
        summary=summary,
    )
