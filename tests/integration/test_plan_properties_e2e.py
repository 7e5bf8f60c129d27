"""Hypothesis through the whole read path: random estates seeded into the emulator, random specs, real
`cmkctl plan` (observe + history + planner). No step the plan would run now breaks W3, C2, C4 or C6/W4,
and the changes form a DAG in which every link waits for its cluster's create and key steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_runner import PlanRunner
from tests_azure_support import LOCATION, SUB, cluster_doc, vault, workspace_id, workspace_set_doc

from controller.model import ids
from controller.model.limits import CURRENT  # no Settings document: the default profile applies

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
NAMES = [f"cl-{c}01" for c in "abcdefg"]  # more than the region holds (rule C2)
WORKSPACES = [f"wsp{i}" for i in range(5)]


@st.composite
def worlds(draw: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    live = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=CURRENT.clusters_per_region))
    clusters = [
        {
            "subscription": SUB,
            "resource_group": "rg",
            "name": n,
            "location": LOCATION,
            "capacity": draw(st.sampled_from([1000, 2000, 5000])),
            "last_sku_update": (NOW - timedelta(days=draw(st.integers(0, 60)))).isoformat(),
            "provisioning_state": draw(st.sampled_from(["Succeeded", "Succeeded", "Creating"])),
            "remaining_seconds": 3600,
        }
        for n in live
    ]
    desired = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=3))
    workspaces = []
    for w in WORKSPACES:
        on = draw(st.sampled_from([None, *live]))
        ops = draw(st.lists(st.integers(1, 40), max_size=2))
        doc: dict[str, Any] = {
            "subscription": SUB,
            "resource_group": "rg-w",
            "name": w,
            "location": LOCATION,
            "link_ops": [
                {"time": (NOW - timedelta(days=d)).isoformat(), "kind": k}
                for d, k in zip(sorted(ops), ["link", "unlink"], strict=False)
            ],
        }
        if on:
            doc["cluster"] = ids.cluster_id(SUB, "rg", on)
            doc["linked_at"] = (NOW - timedelta(days=50)).isoformat()
        workspaces.append(doc)
    docs: list[dict[str, Any]] = []
    for n in desired:
        d = cluster_doc(resourceGroup="rg", capacity=draw(st.sampled_from([1000, 2000, 5000])), key=None)
        d["metadata"]["name"] = n
        docs.append(d)
    for i, n in enumerate(desired):
        members = draw(st.lists(st.sampled_from(WORKSPACES), unique=True, max_size=3))
        taken = {m for d in docs if d["kind"] == "WorkspaceSet" for m in d["_members"]}
        members = [m for m in members if m not in taken]
        if members:
            ws = workspace_set_doc([], cluster=n)
            ws["metadata"]["name"] = f"set{i}"
            ws["spec"]["workspaces"] = [workspace_id(m, rg="rg-w") for m in members]
            ws["_members"] = members
            docs.append(ws)
    estate = {"vaults": [vault()], "clusters": clusters, "workspaces": workspaces}
    return estate, docs


def _ops_in_window(ws: dict[str, Any]) -> int:
    return sum(1 for op in ws["link_ops"] if datetime.fromisoformat(op["time"]) > NOW - timedelta(days=30))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds())
def test_no_step_that_runs_now_breaks_a_rule(emulator: Any, plan: PlanRunner, world: Any) -> None:
    estate, docs = world
    emulator.reset()
    emulator.seed(estate)
    for d in docs:
        d.pop("_members", None)
    run = plan(docs)
    assert run.exit_code in (0, 2, 3), run.stderr
    changes = {c["id"]: c for c in run.plan["changes"]}

    # a DAG: depends_on only names changes of this plan, and there is no cycle
    order: list[str] = []
    remaining = dict(changes)
    while remaining:
        ready = [i for i, c in remaining.items() if all(d in order for d in c["depends_on"])]
        assert ready, f"cycle or dangling dependency among {list(remaining)}"
        order.extend(sorted(ready))
        for i in ready:
            del remaining[i]

    live = {c["name"]: c for c in estate["clusters"]}
    for c in changes.values():
        name = c["address"].split(".", 1)[1]
        new = c["parameters"].get("capacity")
        if c["action"] == "update" and name in live and new is not None:
            lock_ends = datetime.fromisoformat(live[name]["last_sku_update"]) + CURRENT.capacity_lock
            if new is not None and new < live[name]["capacity"]:
                assert lock_ends <= NOW, f"C4: decrease before {lock_ends}"
        if c["action"] in ("update", "set_key") and name in live:
            assert live[name]["provisioning_state"] == "Succeeded", "C6: update of a busy cluster"

    by_ws: dict[str, int] = {}
    for c in changes.values():
        if c["action"] in ("link", "unlink"):
            key = ids.id_key(c["resource_id"])
            by_ws[key] = by_ws.get(key, 0) + 1
        if c["action"] == "link":
            target = c["cluster_id"].rsplit("/", 1)[-1]
            if target in live:  # W4: never onto a cluster still provisioning
                assert live[target]["provisioning_state"] == "Succeeded"
            for other in changes.values():  # W4: after its cluster's create and key steps
                if other["action"] in ("create", "set_key") and other["address"].endswith("." + target):
                    assert other["id"] in _ancestors(c["id"], changes)
    for ws in estate["workspaces"]:
        planned = by_ws.get(ids.id_key(workspace_id(ws["name"], rg="rg-w")), 0)
        assert planned == 0 or _ops_in_window(ws) + planned <= 2, f"W3 on {ws['name']}"

    regional = {c["name"] for c in estate["clusters"]}
    regional |= {c["address"].split(".", 1)[1] for c in changes.values() if c["action"] == "create"}
    regional -= {c["address"].split(".", 1)[1] for c in changes.values() if c["action"] == "delete"}
    assert len(regional) <= CURRENT.clusters_per_region, "C2"


def _ancestors(step: str, changes: dict[str, dict[str, Any]]) -> set[str]:
    seen: set[str] = set()
    todo = list(changes[step]["depends_on"])
    while todo:
        d = todo.pop()
        if d not in seen:
            seen.add(d)
            todo.extend(changes.get(d, {}).get("depends_on", []))
    return seen
