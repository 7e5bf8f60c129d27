"""The plan's dependency graph: checks, cycle detection and a deterministic topological order.

A cycle, or a dependency on a step that is not in the plan, is a planner bug, not a user error:
`PlanGraphError` is raised so that tests catch it and no half-ordered plan is ever written.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

from controller.planning.plan import Change


class PlanGraphError(RuntimeError):
    """The planner produced an inconsistent graph (a bug)."""


def topological_order(changes: Mapping[str, Change]) -> list[Change]:
    """Kahn's algorithm; ready steps by (the action's phase, id), so equal inputs give equal plans.

    Among steps that are ready together the phase gives the natural reading order: make room, build,
    key, link (`Action.traits`)."""
    indegree: dict[str, int] = dict.fromkeys(changes, 0)
    children: dict[str, list[str]] = {cid: [] for cid in changes}
    for cid, change in changes.items():
        for dep in change.depends_on:
            if dep not in changes:
                raise PlanGraphError(f"{cid} depends on {dep}, which is not a change of this plan")
            indegree[cid] += 1
            children[dep].append(cid)
    def rank(cid: str) -> tuple[int, str]:
        return (changes[cid].action.traits.phase, cid)

    ready = [rank(cid) for cid, n in indegree.items() if n == 0]
    heapq.heapify(ready)
    out: list[Change] = []
    while ready:
        _, cid = heapq.heappop(ready)
        out.append(changes[cid])
        for child in children[cid]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, rank(child))
    if len(out) != len(changes):
        stuck = sorted(cid for cid, n in indegree.items() if n > 0)
        raise PlanGraphError(f"dependency cycle among {', '.join(stuck)}")
    return out


def ancestors(step_id: str, edges: Mapping[str, Iterable[str]]) -> set[str]:
    """Every step `step_id` waits on, directly or transitively."""
    seen: set[str] = set()
    stack = list(edges.get(step_id, ()))
    while stack:
        dep = stack.pop()
        if dep not in seen:
            seen.add(dep)
            stack.extend(edges.get(dep, ()))
    return seen
