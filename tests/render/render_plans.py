"""Plans to render, made by the real planner from small estates (no hand-written plan shapes)."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "planning"))

from plan_builders import (
    NOW,
    cluster,
    desired,
    obs_cluster,
    obs_ws,
    observed,
    plan,
    storage_id,
    ws_id,
    wsset,
)

from controller.planning.plan import Plan


def busy_plan() -> Plan:
    """Creates, a move, a C4 deferral with a date, a B2 block, an opted-in B2 warning, drift."""
    a, b, new = cluster("clA"), cluster("clB", capacity=2000), cluster("new1", location="northeurope")
    d = desired([a, b, new], [
        wsset("t", "clB", [ws_id("wks1"), ws_id("wks2")]),
        wsset("n", "new1", [ws_id("wks4")]),
        wsset("u", None, [{"id": ws_id("wks3"), "byos": {"query": storage_id("stquery")}},
                          {"id": ws_id("wks5"),
                           "byos": {"query": storage_id("stquery"), "allowSavedSearchLoss": True}}]),
    ])
    o = observed([obs_cluster(a), obs_cluster(b, capacity=3000, last_sku_update=NOW - timedelta(days=2))],
                 [obs_ws("wks1", cluster_id=a.arm_id), obs_ws("wks2"), obs_ws("wks3", byos_read=True),
                  obs_ws("wks4", location="northeurope"), obs_ws("wks5", byos_read=True)])
    return plan(d, o)


def empty_plan() -> Plan:
    a = cluster("clA")
    return plan(desired([a]), observed([obs_cluster(a)]))


def big_plan(n: int) -> Plan:
    """A new cluster with n workspaces to link: a plan too long for one PR comment."""
    c = cluster("big1")
    names = [f"workspace-with-a-long-name-{i:05d}" for i in range(n)]
    return plan(desired([c], [wsset("t", "big1", [ws_id(x) for x in names])]),
                observed([], [obs_ws(x) for x in names]))
