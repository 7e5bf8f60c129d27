"""Hypothesis properties over random estates and specs.

For every plan: ids unique; the DAG is acyclic and closed; no step violates W1, W3, C2, C4, C6/W4;
every link depends (transitively) on its cluster's create and set_key steps; output is deterministic;
and planning the state that results from applying the plan brings no new changes (only deferred
steps that became due).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_builders import (
    LOC,
    NOW,
    SUB,
    UAI,
    V1,
    V2,
    cluster,
    desired,
    good_key,
    good_vault,
    obs_cluster,
    obs_ws,
    observed,
    storage_id,
    ws_id,
    wsset,
)
from plan_sim import apply_plan

from controller.azure.operations import differences
from controller.model import ids
from controller.model.history import ClusterDeletion, History, InFlightOperation, LinkOperation
from controller.model.limits import CURRENT, SEED, Limits
from controller.model.observed import ObservedState
from controller.model.spec import DesiredState
from controller.planning.budget import ops_in_window, with_associate_dates
from controller.planning.graph import ancestors
from controller.planning.plan import Action, Plan
from controller.planning.planner import make_plan

LOCS = (LOC, "northeurope")
WS = [f"wsp{i}" for i in range(6)]
SMALL = replace(SEED, workspaces_per_cluster=3)


@st.composite
def estates(draw: Any) -> tuple[DesiredState, ObservedState, History, Limits]:
    n = draw(st.integers(1, 3))
    clusters = []
    for i in range(n):
        ident = draw(st.sampled_from(["SystemAssigned", "UserAssigned", "UserAssignedGranted"]))
        clusters.append(cluster(
            f"c{i}", location=draw(st.sampled_from(LOCS)), capacity=draw(st.sampled_from([1000, 1500, 2000])),
            identity="UserAssigned" if ident.startswith("User") else ident, uai=UAI,
            granted=ident == "UserAssignedGranted",
            key=draw(st.booleans()) or None, version=draw(st.sampled_from([V1, V2, None])),
            tags=draw(st.sampled_from([{}, {"env": "prod"}]))))
    live = []
    for c in clusters:
        if draw(st.booleans()):
            live.append(obs_cluster(
                c, capacity=draw(st.sampled_from([1000, 1500, 2000])),
                provisioning_state=draw(st.sampled_from(["Succeeded", "Succeeded", "Updating", "Failed"])),
                last_sku_update=NOW - timedelta(days=draw(st.integers(0, 60))),
                key=draw(st.sampled_from([None, ids.KeyRef(vault_uri="https://kv-cmk.vault.azure.net/",
                                                           name="cmk", version=V1)])),
                tags={}))
    for j in range(draw(st.integers(0, 2))):  # unmanaged clusters in managed scope
        live.append(obs_cluster(cluster(f"x{j}", location=draw(st.sampled_from(LOCS)))))
    declared = [c.metadata.name for c in clusters]
    live_ids = [c.id for c in live]
    workspaces, sets, ops = [], {}, []
    for w in WS:
        loc = draw(st.sampled_from(LOCS))
        linked = draw(st.sampled_from([None, *live_ids])) if live_ids else None
        if linked and live[live_ids.index(linked)].location != loc:
            linked = None
        workspaces.append(obs_ws(w, location=loc, cluster_id=linked, byos_read=True))
        target = draw(st.sampled_from([None, None, *declared]))
        byos = draw(st.sampled_from([None, None, {"alerts": storage_id("sta")},
                                     {"query": storage_id("stq"), "allowSavedSearchLoss": True},
                                     {"query": storage_id("stq")}]))
        entry: Any = {"id": ws_id(w), "byos": byos} if byos else ws_id(w)
        if target is not None or byos:
            sets.setdefault(target or "", []).append(entry)
        for k in range(draw(st.integers(0, 2))):
            ops.append(LinkOperation(workspace_key=ids.id_key(ws_id(w)), kind=("link", "unlink")[k % 2],
                                     at=NOW - timedelta(days=draw(st.integers(1, 40)), hours=k)))
    prune = {"clusters": draw(st.booleans()), "workspaceLinks": draw(st.booleans())}
    ws_sets = [wsset(f"s-{name or 'byos'}", name or None, wl) for name, wl in sorted(sets.items())]
    d = desired(clusters, ws_sets, prune=prune)
    key = good_key((V1, draw(st.booleans())), (V2, True))
    o = observed(live, workspaces, key=key, vault=good_vault(purge=draw(st.integers(0, 5)) > 0))
    deletions = tuple(
        ClusterDeletion(cluster_key=ids.id_key(c.arm_id), subscription=SUB, location=c.spec.location,
                        name=c.azure_name, at=NOW - timedelta(days=draw(st.integers(1, 20))))
        for c in clusters if c.arm_id not in live_ids and draw(st.integers(0, 3)) == 0)
    in_flight = tuple(
        InFlightOperation(op_id="x", action="update", target=c.id, status_url=None, started=NOW)
        for c in live if draw(st.integers(0, 5)) == 0)
    history = History(link_operations=tuple(ops), cluster_deletions=deletions, in_flight=in_flight)
    return d, o, history, draw(st.sampled_from([SEED, SMALL, CURRENT]))


def _plan(d: DesiredState, o: ObservedState, h: History, limits: Limits, now: Any = NOW) -> Plan:
    return make_plan(desired=d, observed=o, now=now, history=h, limits=limits)


PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(estates())
def test_graph_is_closed_acyclic_and_ids_unique(estate: Any) -> None:
    d, o, h, limits = estate
    p = _plan(d, o, h, limits)
    all_ids = [i.id for i in (*p.changes, *p.deferred, *p.blocked)]
    assert len(all_ids) == len(set(all_ids))
    seen: set[str] = set()
    for ch in p.changes:  # emitted in topological order: every dependency already seen
        assert set(ch.depends_on) <= seen, ch.id
        seen.add(ch.id)
    for item in p.deferred:
        assert set(item.depends_on) <= set(all_ids)


@PROPS
@given(estates())
def test_deterministic(estate: Any) -> None:
    d, o, h, limits = estate
    shuffled = replace(o, clusters=dict(reversed(list(o.clusters.items()))),
                       workspaces=dict(reversed(list(o.workspaces.items()))))
    assert _plan(d, o, h, limits) == _plan(d, shuffled, h, limits)


@PROPS
@given(estates())
def test_no_step_breaks_w1_w3_c2_c4_c6(estate: Any) -> None:
    d, o, h, limits = estate
    p = _plan(d, o, h, limits)
    # C4, C6: no update/key/delete on a busy cluster, no capacity decrease inside the lock
    for ch in p.changes:
        on_cluster = ch.action in (Action.UPDATE, Action.SET_KEY, Action.DELETE)
        if on_cluster and ids.id_key(ch.resource_id) in o.clusters:
            live = o.clusters[ids.id_key(ch.resource_id)]
            assert not live.busy, ch.id
            capacity = getattr(ch.parameters, "capacity", None)
            if capacity is not None and capacity < live.capacity:
                assert live.last_sku_update is not None
                assert live.last_sku_update + limits.capacity_lock <= NOW
    # W3: existing ops in the window + this plan's ops on the workspace <= the budget
    merged = with_associate_dates(h, o)
    per_ws: dict[str, int] = {}
    for ch in p.changes:
        if ch.action in (Action.LINK, Action.UNLINK):
            k = ids.id_key(ch.parameters.workspace_id)
            per_ws[k] = per_ws.get(k, 0) + 1
    for k, n in per_ws.items():
        assert len(ops_in_window(merged, k, NOW, limits)) + n <= limits.link_ops_per_window, k
    # W1 and C2 after applying, and W4 / C6 at each step (asserted inside the simulator)
    after, _, _ = apply_plan(p, o, h, NOW)
    linked: dict[str, int] = {}
    for ws in after.workspaces.values():
        if ws.cluster_id:
            linked[ids.id_key(ws.cluster_id)] = linked.get(ids.id_key(ws.cluster_id), 0) + 1
    before: dict[str, int] = {}
    for ws in o.workspaces.values():
        if ws.cluster_id:
            before[ids.id_key(ws.cluster_id)] = before.get(ids.id_key(ws.cluster_id), 0) + 1
    targets = {ids.id_key(ch.parameters.cluster_id) for ch in p.changes if ch.action == Action.LINK}
    for ckey in targets:
        assert linked.get(ckey, 0) <= limits.workspaces_per_cluster, ckey
    regions: dict[tuple[str, str], int] = {}
    for c in after.clusters.values():
        regions[(c.subscription, c.location)] = regions.get((c.subscription, c.location), 0) + 1
    for ch in p.changes:
        if ch.action == Action.CREATE and ids.id_key(ch.resource_id) not in o.clusters:
            # a new cluster takes a slot (C2); re-provisioning a Failed one does not
            region = (SUB, ch.parameters.location)
            assert regions[region] <= limits.clusters_per_region, region


@PROPS
@given(estates())
def test_every_link_waits_on_its_clusters_create_and_key(estate: Any) -> None:
    d, o, h, limits = estate
    p = _plan(d, o, h, limits)
    edges = {c.id: c.depends_on for c in p.changes}
    cluster_steps: dict[str, set[str]] = {}
    for ch in p.changes:
        if ch.action in (Action.CREATE, Action.SET_KEY):
            cluster_steps.setdefault(ids.id_key(ch.resource_id), set()).add(ch.id)
    for ch in p.changes:
        if ch.action == Action.LINK:
            needed = cluster_steps.get(ids.id_key(ch.parameters.cluster_id), set())
            assert needed <= ancestors(ch.id, edges), ch.id


@PROPS
@given(estates())
def test_replanning_after_apply_brings_only_deferred_steps(estate: Any) -> None:
    d, o, h, limits = estate
    p = _plan(d, o, h, limits)
    after, history, t = apply_plan(p, o, h, NOW)
    again = _plan(d, after, history, limits, now=t)
    waiting = {x.id for x in p.deferred}
    new = {c.id for c in again.changes} - waiting
    assert not new, f"new changes after applying the plan: {sorted(new)}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(estates())
def test_repeated_plan_and_apply_converges_without_churn(estate: Any) -> None:
    """Apply, wait a month, plan again: no step ever runs twice, and the work runs out."""
    d, o, h, limits = estate
    now, applied = NOW, set()
    for _ in range(5):
        p = _plan(d, o, h, limits, now=now)
        ids_now = {c.id for c in p.changes}
        assert not ids_now & applied, f"churn: {sorted(ids_now & applied)}"
        applied |= ids_now
        o, h, now = apply_plan(p, o, h, now)
        now += timedelta(days=31)
    assert _plan(d, o, h, limits, now=now).changes == ()


UAI_OTHER = UAI.rsplit("/", 1)[0] + "/id-other"
_LIVE_IDENTITIES = (None, ("UserAssigned", (UAI_OTHER,)), ("UserAssigned", (UAI, UAI_OTHER)),
                    ("SystemAssigned", ()), ("UserAssigned", (UAI.upper(),)))


def _target(ch: Any, state: ObservedState) -> Any:
    if ch.action in (Action.UPDATE, Action.SET_KEY):
        return state.clusters.get(ids.id_key(ch.resource_id))
    return state.workspaces[ids.id_key(ch.parameters.workspace_id)]


@PROPS
@given(estates(), st.data())
def test_precheck_and_verify_agree_with_the_planner(estate: Any, data: st.DataObject) -> None:
    """Rules C5, C6, K1, W2: a change the planner proposes is never "already done" to the executor's
    precheck, and once Azure has applied it (plan_sim) the executor's verify finds it in effect. Both
    sides compare identities, keys, tags and ids through controller.model.compare."""
    d, o, h, limits = estate
    clusters = {}
    for key, c in o.clusters.items():  # live identities the spec may not name: another one, or two
        live = data.draw(st.sampled_from(_LIVE_IDENTITIES))
        clusters[key] = c if live is None else replace(c, identity_type=live[0],
                                                       user_assigned_identities=live[1])
    o = replace(o, clusters=clusters)
    p = _plan(d, o, h, limits)
    for i, ch in enumerate(p.changes):
        if ch.action not in (Action.UPDATE, Action.SET_KEY, Action.LINK, Action.BYOS_LINK):
            continue
        before, _, _ = apply_plan(p.model_copy(update={"changes": p.changes[:i]}), o, h, NOW)
        assert differences(ch, _target(ch, before)), f"{ch.id}: precheck would skip it as already done"
        after, _, _ = apply_plan(p.model_copy(update={"changes": p.changes[: i + 1]}), o, h, NOW)
        assert differences(ch, _target(ch, after)) == [], f"{ch.id}: verify would call it inconsistent"
