"""`--target ADDRESS`: a plan cut down to some resources and what they depend on (Terraform's -target).

Pure (no I/O): a function of the full plan, the spec and the addresses. The cut keeps every step of a
targeted address and, transitively, every step those depend on (a link needs its cluster's create and
key: `depends_on`, controller.planning.graph), so what is left is a plan the executor can run as it
is. Nothing is dropped silently: every step of the full plan that the cut leaves out is named in
`Plan.targeting.left_out`, and the renderers say "N changes left out by --target".

Addresses are the plan's: `cluster.<metadata.name>` and `workspace.<workspace name>` (case-insensitive,
like Azure names). An address that names nothing in the spec or the plan is an error that names it,
with the closest known address when there is one.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

from controller.errors import CmkError
from controller.model import ids
from controller.model.spec import DesiredState
from controller.planning.graph import ancestors
from controller.planning.held import cluster_record_key, workspace_record_key
from controller.planning.plan import Action, Blocked, Change, Deferred, LeftOut, Plan, Targeting


class UnknownTargetError(CmkError):
    """A --target address that names no resource of the spec or the plan."""


def _steps(plan: Plan) -> dict[str, Change | Deferred | Blocked]:
    """Every step of the plan by id: what runs now, what waits, what can never run."""
    out: dict[str, Change | Deferred | Blocked] = {c.id: c for c in plan.changes}
    out.update({d.id: d for d in plan.deferred})
    out.update({b.id: b for b in plan.blocked})
    return out


def known_addresses(desired: DesiredState, plan: Plan) -> set[str]:
    """Every address a --target may name: the spec's resources (in sync or not) and the plan's."""
    out = {f"cluster.{c.metadata.name}" for c in desired.clusters}
    out |= {f"workspace.{ids.ResourceId.parse(e.id).name}" for e in desired.workspace_entries().values()}
    out |= {i.address for i in _steps(plan).values()}
    out |= {d.address for d in plan.drift}
    out |= {w.address for w in plan.warnings if w.address}
    return out


def resolve(addresses: Sequence[str], known: Iterable[str]) -> tuple[str, ...]:
    """The targets as the plan spells them (deduplicated, in the order given); UnknownTargetError
    naming every address that matches nothing, with the closest known one when there is one."""
    by_lower = {a.lower(): a for a in sorted(known)}
    out: list[str] = []
    problems: list[str] = []
    for raw in addresses:
        address = raw.strip()
        hit = by_lower.get(address.lower())
        if hit is None:
            close = difflib.get_close_matches(address.lower(), list(by_lower), n=1, cutoff=0.6)
            hint = f" (did you mean {by_lower[close[0]]}?)" if close else ""
            problems.append(
                f"--target {address!r}: no resource with this address in the spec or the plan{hint}"
            )
        elif hit not in out:
            out.append(hit)
    if problems:
        raise UnknownTargetError(
            "\n".join(problems)
            + "\naddresses are the plan's: cluster.<metadata.name> or workspace.<workspace name>"
        )
    return tuple(out)


def target_plan(plan: Plan, addresses: Sequence[str], *, desired: DesiredState) -> Plan:
    """The plan of `addresses` and everything they depend on; the rest listed in `targeting.left_out`.

    Warnings and drift are kept for the resources the cut keeps (and warnings that name no resource)."""
    targets = resolve(addresses, known_addresses(desired, plan))
    wanted = {a.lower() for a in targets}
    items = _steps(plan)
    edges = {i: getattr(item, "depends_on", ()) for i, item in items.items()}
    keep = {i for i, item in items.items() if item.address.lower() in wanted}
    for step in list(keep):
        keep |= ancestors(step, edges) & set(items)
    kept_addresses = wanted | {items[i].address.lower() for i in keep}

    left: list[LeftOut] = []
    groups: tuple[tuple[Literal["change", "deferred", "blocked"], Sequence[Change | Deferred | Blocked]], ...]
    groups = (("change", plan.changes), ("deferred", plan.deferred), ("blocked", plan.blocked))
    for status, group in groups:
        left += [LeftOut(id=i.id, action=i.action, address=i.address, status=status)
                 for i in group if i.id not in keep]
    changes = tuple(c for c in plan.changes if c.id in keep)
    deferred = tuple(d for d in plan.deferred if d.id in keep)
    blocked = tuple(b for b in plan.blocked if b.id in keep)
    drift = tuple(d for d in plan.drift if d.address.lower() in kept_addresses)
    warnings = tuple(w for w in plan.warnings if w.address is None or w.address.lower() in kept_addresses)
    counts = Counter(c.action for c in changes)
    summary = plan.summary.model_copy(update={
        "by_action": {a: counts[a] for a in Action if counts[a]},
        "deferred": len(deferred), "blocked": len(blocked), "drift": len(drift),
    })
    return plan.model_copy(update={
        "changes": changes, "deferred": deferred, "blocked": blocked, "drift": drift, "warnings": warnings,
        "summary": summary,
        "targeting": Targeting(addresses=targets,
                               left_out=tuple(sorted(left, key=lambda x: (x.address, x.id)))),
    })


def record_keys(plan: Plan, desired: DesiredState) -> set[str]:
    """The journal keys (`AppliedResource.key`) of the resources a targeted plan covers: a targeted
    apply records intent and baseline for those only, never for resources it left alone."""
    if plan.targeting is None:
        raise ValueError("record_keys is for a targeted plan")
    covered = {a.lower() for a in plan.targeting.addresses}
    covered |= {i.address.lower() for i in _steps(plan).values()}
    out: set[str] = set()
    for cluster in desired.clusters:
        if f"cluster.{cluster.metadata.name}".lower() in covered:
            out.add(cluster_record_key(cluster.arm_id))
    for entry in desired.workspace_entries().values():
        if f"workspace.{ids.ResourceId.parse(entry.id).name}".lower() in covered:
            out.add(workspace_record_key(entry.id))
    return out
