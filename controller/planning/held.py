"""`settings.drift: report`, decided once: which differences were made outside cmkctl and stay as they are.

A managed field of a resource is *held* (reported, not reverted) when, since the last apply recorded
in the journal (`AppliedResource`):
- the spec did not change it (the spec's value equals the recorded intent), and
- the live value did change (it differs from the live value read right after that apply), and
- it now differs from the spec.

A field the spec changed is always planned; so is everything about a resource no apply has recorded
yet, and every field when drift is corrected (`settings.drift: correct`, `--correct-drift`). Held
fields are planned as if live already matched the spec (the observed state is overlaid with the
spec's values for those fields only), so plan, apply, drift and the controller agree by construction
and every other rule still applies to the rest of the resource.

Managed here: a cluster's capacity, billing type, tags and key. Identity (C12 sequences) and links
(W3 budget) are always converged to the spec.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from controller.model import ids
from controller.model.history import AppliedResource
from controller.model.observed import ObservedState
from controller.model.spec import Cluster, DesiredState
from controller.planning.fingerprint import canonical
from controller.planning.plan import Drift, Severity

CLUSTER_FIELDS = ("capacity", "billing_type", "tags", "key")


def cluster_record_key(arm_id: str) -> str:
    return f"cluster:{ids.id_key(arm_id)}"


def workspace_record_key(arm_id: str) -> str:
    return f"workspace:{ids.id_key(arm_id)}"


_NAMING = ("id", "subscription", "resource_group", "name")  # in the record's key already


def baseline_of(resource: Any) -> dict[str, Any]:
    """A live resource as the journal keeps it: canonical JSON without what names it (a fleet has tens
    of thousands of workspaces; their names are in the record's key)."""
    body = canonical(resource)
    return {k: v for k, v in body.items() if k not in _NAMING} if isinstance(body, dict) else {}


def cluster_intent(cluster: Cluster) -> dict[str, Any]:
    """The fields of a cluster the spec manages, as JSON (what the journal records as intent)."""
    spec = cluster.spec
    key = spec.key.ref() if spec.key is not None else None
    return {
        "capacity": spec.capacity,
        "billing_type": str(spec.billing_type),
        "tags": dict(sorted(spec.tags.items())),
        "key": canonical(key),
    }


def _norm(field_: str, value: Any) -> Any:
    """Compare as the planner does: billing type and tag names, key host/name/version case-insensitive."""
    if value is None:
        return None
    if field_ == "billing_type":
        return str(value).lower()
    if field_ == "tags" and isinstance(value, dict):
        return {str(k).lower(): v for k, v in value.items()}
    if field_ == "key" and isinstance(value, dict):
        return {k: str(v).lower().rstrip("/") if v else None for k, v in value.items()}
    return value


def _same(field_: str, a: Any, b: Any) -> bool:
    return bool(_norm(field_, a) == _norm(field_, b))


def hold(
    desired: DesiredState,
    observed: ObservedState,
    applied: dict[str, AppliedResource],
    *,
    correct: bool,
) -> tuple[ObservedState, tuple[Drift, ...]]:
    """(the observed state to plan from, the held differences to report). Pure."""
    if correct or not applied:
        return observed, ()
    held: list[Drift] = []
    clusters = dict(observed.clusters)
    for cluster in desired.clusters:
        obs_key = ids.id_key(cluster.arm_id)
        obs = clusters.get(obs_key)
        record = applied.get(cluster_record_key(cluster.arm_id))
        if obs is None or record is None:
            continue
        want = cluster_intent(cluster)
        live = canonical(obs)
        overlay: dict[str, Any] = {}
        for name in CLUSTER_FIELDS:
            if name not in record.intent or name not in record.baseline:
                continue
            spec_unchanged = _same(name, record.intent[name], want[name])
            live_moved = not _same(name, record.baseline[name], live[name])
            if spec_unchanged and live_moved and not _same(name, want[name], live[name]):
                overlay[name] = _SPEC_VALUE[name](cluster)
                held.append(
                    Drift(
                        address=f"cluster.{cluster.metadata.name}",
                        resource_id=obs.id,
                        field=name,
                        desired=want[name],
                        live=live[name],
                        severity=Severity.WARNING,
                        held=True,
                    )
                )
        if overlay:
            clusters[obs_key] = dataclasses.replace(obs, **overlay)
    if not held:
        return observed, ()
    return dataclasses.replace(observed, clusters=clusters), tuple(held)


_SPEC_VALUE: dict[str, Callable[[Cluster], Any]] = {
    "capacity": lambda c: c.spec.capacity,
    "billing_type": lambda c: str(c.spec.billing_type),
    "tags": lambda c: dict(c.spec.tags),
    "key": lambda c: c.spec.key.ref() if c.spec.key is not None else None,
}


def held_fields(held: tuple[Drift, ...]) -> dict[str, set[str]]:
    """Resource id key -> the held field names (to keep their baseline when recording the next apply)."""
    out: dict[str, set[str]] = {}
    for d in held:
        out.setdefault(ids.id_key(d.resource_id), set()).add(d.field)
    return out



def records(
    desired: DesiredState,
    observed: ObservedState,
    *,
    previous: dict[str, AppliedResource],
    held: tuple[Drift, ...],
    revision: str,
    now: datetime,
) -> list[AppliedResource]:
    """The journal entries an apply leaves: per declared resource, the spec's intent and the live state
    read after it. A held field keeps its previous baseline, so it stays reported (and unreverted)
    after an apply of something else."""
    kept = held_fields(held)
    out: list[AppliedResource] = []
    for cluster in desired.clusters:
        obs = observed.clusters.get(ids.id_key(cluster.arm_id))
        if obs is None:
            continue
        key = cluster_record_key(cluster.arm_id)
        baseline = baseline_of(obs)
        before = previous.get(key)
        for name in kept.get(ids.id_key(obs.id), set()):
            if before is not None and name in before.baseline:
                baseline[name] = before.baseline[name]
        out.append(
            AppliedResource(
                key=key, revision=revision, at=now, intent=cluster_intent(cluster), baseline=baseline
            )
        )
    links = desired.desired_links()
    for ws_key in desired.workspace_entries():
        ws = observed.workspaces.get(ws_key)
        if ws is None:
            continue
        target = links.get(ws_key)
        out.append(
            AppliedResource(
                key=workspace_record_key(ws.id),
                revision=revision,
                at=now,
                intent={"cluster_id": ids.id_key(target.arm_id) if target is not None else None},
                baseline=baseline_of(ws),
            )
        )
    return out
