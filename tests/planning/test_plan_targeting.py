"""`--target` (controller.planning.targeting): the cut of a plan to some addresses.

Property: over random estates and random address choices, a targeted plan is a subset of the full
plan that is closed under dependencies (every step it keeps has what it waits on), keeps every step of
a targeted address, names every step it drops in `targeting.left_out`, and still orders its changes
topologically. Examples: an unknown address is an error naming it with the closest match.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_builders import cluster, desired, obs_cluster, obs_ws, observed, ws_id, wsset
from plan_builders import plan as plan_of
from test_plan_properties import estates

from controller.planning.graph import ancestors
from controller.planning.plan import Action
from controller.planning.planner import make_plan
from controller.planning.targeting import UnknownTargetError, known_addresses, target_plan

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(estates(), st.data())
def test_a_targeted_plan_is_a_dependency_closed_subset_of_the_full_plan(estate: Any, data: Any) -> None:
    d, o, h, limits = estate
    full = make_plan(desired=d, observed=o, now=o.read_at, history=h, limits=limits)
    known = sorted(known_addresses(d, full))
    chosen = data.draw(st.lists(st.sampled_from(known), min_size=1, max_size=3))
    cut = target_plan(full, chosen, desired=d)

    full_steps = {i.id: i for i in (*full.changes, *full.deferred, *full.blocked)}
    kept = {i.id: i for i in (*cut.changes, *cut.deferred, *cut.blocked)}
    # a subset: the very same steps (same parameters, same status), nothing invented
    assert set(kept) <= set(full_steps)
    assert all(c in full.changes for c in cut.changes)
    assert all(x in full.deferred for x in cut.deferred)
    assert all(b in full.blocked for b in cut.blocked)
    # closed under dependencies: what a kept step waits on is kept
    edges = {i: getattr(s, "depends_on", ()) for i, s in full_steps.items()}
    for step in kept:
        assert ancestors(step, edges) & set(full_steps) <= set(kept), step
    # every step of a targeted address is kept
    wanted = {a.lower() for a in chosen}
    assert {i for i, s in full_steps.items() if s.address.lower() in wanted} <= set(kept)
    # nothing dropped silently
    assert cut.targeting is not None
    assert {x.id for x in cut.targeting.left_out} == set(full_steps) - set(kept)
    # still runnable in order, and the summary counts what is kept
    seen: set[str] = set()
    for ch in cut.changes:
        assert set(ch.depends_on) <= seen, ch.id
        seen.add(ch.id)
    assert cut.summary.changes == len(cut.changes)
    assert cut.summary.deferred == len(cut.deferred) and cut.summary.blocked == len(cut.blocked)


def test_a_workspace_target_brings_its_clusters_create_and_leaves_the_rest_out() -> None:
    """A link needs its cluster (W4): targeting one workspace of a new cluster plans the cluster's
    create and key, that link, and names the other link as left out."""
    c = cluster("prod1", identity="UserAssigned", granted=True)
    d = desired([c], [wsset("apps", "prod1", [ws_id("wsp1"), ws_id("wsp2")])])
    o = observed([], [obs_ws("wsp1"), obs_ws("wsp2")])
    full = plan_of(d, o)
    cut = target_plan(full, ["workspace.wsp1"], desired=d)
    assert [ch.address for ch in cut.changes if ch.action is Action.LINK] == ["workspace.wsp1"]
    assert {ch.action for ch in cut.changes if ch.address == "cluster.prod1"} >= {Action.CREATE}
    assert cut.targeting is not None
    assert [(x.action, x.address) for x in cut.targeting.left_out] == [(Action.LINK, "workspace.wsp2")]


def test_an_in_sync_resource_is_a_valid_target_with_nothing_to_do() -> None:
    c = cluster("prod1", key=None)
    d = desired([c], [])
    o = observed([obs_cluster(c, key=None)], [])
    cut = target_plan(plan_of(d, o), ["cluster.prod1"], desired=d)
    assert cut.changes == () and cut.targeting is not None


def test_an_unknown_address_is_an_error_that_names_it_and_the_closest_match() -> None:
    c = cluster("prod-weu")
    d = desired([c], [])
    p = plan_of(d, observed([], []))
    with pytest.raises(UnknownTargetError) as err:
        target_plan(p, ["cluster.prod-wue", "workspace.nowhere"], desired=d)
    text = str(err.value)
    assert "--target 'cluster.prod-wue'" in text and "did you mean cluster.prod-weu?" in text
    assert "--target 'workspace.nowhere'" in text
