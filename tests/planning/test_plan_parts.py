"""The planner's building blocks: W3 window arithmetic, the DAG checks, the observed fingerprint."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from plan_builders import NOW, cluster, obs_cluster, obs_ws, observed, ws_id

from controller.model import ids
from controller.model.history import History, LinkOperation
from controller.model.limits import SEED
from controller.planning.budget import earliest_with_room, with_associate_dates
from controller.planning.fingerprint import changed_resources, fingerprint, resource_digests
from controller.planning.graph import PlanGraphError, topological_order
from controller.planning.plan import Action, Change, LinkParams

WS = "/subscriptions/x/resourcegroups/rg/providers/microsoft.operationalinsights/workspaces/w"


def _hist(*days_ago: float) -> History:
    return History(link_operations=tuple(
        LinkOperation(workspace_key=WS, kind="link" if i % 2 == 0 else "unlink", at=NOW - timedelta(days=d))
        for i, d in enumerate(days_ago)))


@pytest.mark.parametrize(
    ("days_ago", "needed", "expected"),
    [
        ((), 2, NOW),
        ((29,), 1, NOW),
        ((29,), 2, NOW + timedelta(days=1)),          # the op of 29 days ago leaves tomorrow
        ((29, 3), 1, NOW + timedelta(days=1)),
        ((29, 3), 2, NOW + timedelta(days=27)),       # both must leave for a move
        ((30,), 2, NOW),                               # exactly 30 days ago no longer counts
        ((31, 45, 60), 2, NOW),
    ],
)
def test_w3_earliest_time_with_room(days_ago: tuple[float, ...], needed: int, expected: object) -> None:
    assert earliest_with_room(_hist(*days_ago), WS, NOW, SEED, needed) == expected


def test_w3_never_when_more_than_the_budget_is_needed() -> None:
    assert earliest_with_room(History(), WS, NOW, SEED, 3) is None


def test_associate_date_joins_the_history_once() -> None:
    c = obs_cluster(cluster(), associated_workspaces={WS: NOW - timedelta(days=2)})
    o = observed([c])
    merged = with_associate_dates(History(), o)
    assert [(op.kind, op.source) for op in merged.link_operations] == [("link", "associateDate")]
    again = with_associate_dates(merged, o)
    assert len(again.link_operations) == 1


def _change(cid: str, *deps: str) -> Change:
    return Change(id=cid, action=Action.LINK, address=cid, resource_id=cid, depends_on=deps,
                  parameters=LinkParams(workspace_id=cid, cluster_id="c"))


def test_topological_order_is_deterministic_and_respects_dependencies() -> None:
    changes = {c.id: c for c in [_change("c", "a"), _change("b"), _change("a", "b"), _change("d")]}
    assert [c.id for c in topological_order(changes)] == ["b", "a", "c", "d"]


def test_a_cycle_or_a_dangling_dependency_is_a_planner_bug() -> None:
    with pytest.raises(PlanGraphError, match="cycle"):
        topological_order({"a": _change("a", "b"), "b": _change("b", "a")})
    with pytest.raises(PlanGraphError, match="not a change"):
        topological_order({"a": _change("a", "zzz")})


def test_fingerprint_ignores_read_time_order_and_casing_but_sees_changes() -> None:
    c = cluster()
    o = observed([obs_cluster(c)], [obs_ws("w1"), obs_ws("w2")])
    same = replace(o, read_at=NOW + timedelta(hours=1), warnings=("slow",),
                   workspaces=dict(reversed(list(o.workspaces.items()))))
    assert fingerprint(same) == fingerprint(o)
    moved = replace(o, workspaces={**o.workspaces,
                                   ids.id_key(obs_ws("w1").id): obs_ws("w1", cluster_id=c.arm_id)})
    assert fingerprint(moved) != fingerprint(o)
    assert changed_resources(resource_digests(o), resource_digests(moved)) == [
        "workspace:" + ids.id_key(obs_ws("w1").id)]


def test_a_workspace_digest_ignores_the_order_of_its_byos_links_but_sees_each_account() -> None:
    """The BYOS links of a workspace come back in whatever order Azure lists them: reading them in
    another order must not make a saved plan stale, while another storage account must."""
    alerts, query = f"{ids.id_key(ws_id('st'))}-a", f"{ids.id_key(ws_id('st'))}-q"
    one = observed([], [obs_ws("w1", byos={"alerts": alerts, "query": query}, byos_read=True)])
    other_order = observed([], [obs_ws("w1", byos={"query": query, "alerts": alerts}, byos_read=True)])
    swapped = observed([], [obs_ws("w1", byos={"alerts": query, "query": alerts}, byos_read=True)])
    unread = observed([], [obs_ws("w1", byos={"alerts": alerts, "query": query})])
    assert fingerprint(one) == fingerprint(other_order)
    assert fingerprint(swapped) != fingerprint(one)
    assert resource_digests(unread) != resource_digests(one)


def test_w3_budget_of_every_workspace_of_a_large_history_is_answered_per_workspace() -> None:
    """Scenario: a report, or a plan that moves every workspace, asks the W3 budget of each of 20,000
    workspaces whose links are all in the history: each answer holds only that workspace's operations,
    and all of them together take a fraction of a second, where scanning the whole history per
    question (quadratic) took ~10 s of CPU at this size (the bound is loose for a loaded machine)."""
    import time

    keys = [f"/subscriptions/s/resourcegroups/rg/providers/microsoft.operationalinsights/workspaces/w{i}"
            for i in range(20_000)]
    history = History(link_operations=tuple(
        LinkOperation(workspace_key=k, kind=kind, at=NOW - timedelta(days=d), source="journal")
        for k in keys
        for kind, d in (("link", 3), ("unlink", 2))
    ))
    started = time.process_time()
    answers = [earliest_with_room(history, k, NOW, SEED, needed=1) for k in keys]
    elapsed = time.process_time() - started
    # both of the profile's two operations used: room again when the link leaves the window
    assert answers[0] == answers[-1] == NOW - timedelta(days=3) + SEED.link_window
    assert [o.kind for o in history.link_ops_since(keys[7], NOW - timedelta(days=30))] == ["link", "unlink"]
    assert elapsed < 3, f"{elapsed:.1f} s of CPU for 20,000 budget questions"
