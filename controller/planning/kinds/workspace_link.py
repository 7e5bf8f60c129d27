"""Workspace links: link, move (unlink + link), prune unlink; rules W1-W6, C8.

Decisions:
* W3 counts links and unlinks (docs/rules.md: "link or unlink"); a move costs two. A move starts only
  when both halves fit in the rolling window now, and only when the target cluster is linkable in
  this plan: an unlink whose relink can't follow would leave the workspace on Microsoft keys (W6).
  Otherwise both halves are deferred, with the date the window frees (`budget.earliest_with_room`).
* W4: a link depends on every step of its cluster in this plan (create, identity, set_key, update);
  a cluster not Succeeded, busy, or with a deferred/blocked step defers its links (no date of its own
  unless the cluster's step has one).
* W5: a workspace whose link operation is still running is deferred, never re-issued.
* W1: per cluster, live links − unlinks out in this plan + links in ≤ the limit; links that need the
  slots freed by unlinks out depend on them; the excess waits (deferred) when more unlinks out are
  deferred, else is blocked.
* Prune: workspaces linked to a declared cluster but named by no WorkspaceSet are unlinked only with
  `settings.prune.workspaceLinks`, and only when the link is ours: cmkctl made or applied it (the
  journal's record of the workspace, `AppliedResource` intent, or a link operation it journaled, names
  that cluster), or the cluster carries this scope's ownership tag (`cmkctl-scope`: cmkctl created
  it). A foreign link is drift and a `prune-not-owned` warning, never unlinked. More than `maxUnlinks`
  prune unlinks block them all. Without the opt-in they are drift and a warning. Workspaces named by
  a set without a cluster are left alone.
* A declared workspace that does not exist is blocked (rule W2: there is nothing to link).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from controller.model import compare, ids
from controller.model.history import History
from controller.model.observed import ObservedWorkspace
from controller.model.rules import Rule
from controller.model.spec import Cluster
from controller.planning.budget import earliest_with_room, with_associate_dates
from controller.planning.context import Workbench, workspace_path
from controller.planning.held import workspace_record_key
from controller.planning.plan import Action, Change, LinkParams, UnlinkParams

_IN_PROGRESS_DONE = {None, "succeeded", "failed", "canceled"}


@dataclass
class _Intent:
    ws_key: str
    ws: ObservedWorkspace
    target: Cluster | None  # None: a prune unlink
    old_cluster_id: str | None  # the cluster it leaves (move / prune)
    link_id: str = ""
    unlink_id: str = ""
    status: str = "ok"  # ok | deferred | blocked
    rule: Rule = Rule.W2
    reason: str = ""
    remedy: str = ""
    not_before: datetime | None = None
    wait_ids: list[str] = field(default_factory=list)
    extra_deps: list[str] = field(default_factory=list)

    def stop(self, status: str, rule: Rule, reason: str, not_before: datetime | None = None,
             remedy: str = "", wait_ids: list[str] | None = None) -> None:
        if self.status != "ok":
            return
        self.status, self.rule, self.reason, self.not_before = status, rule, reason, not_before
        self.remedy = remedy
        self.wait_ids = wait_ids or []


def _current_links(wb: Workbench) -> dict[str, str]:
    """workspace id key -> the cluster id it is linked to now (features.clusterResourceId first)."""
    out: dict[str, str] = {}
    for _key, cluster in sorted(wb.observed.clusters.items()):
        for ws_key in cluster.associated_workspaces:
            out.setdefault(ws_key, cluster.id)
    for ws_key, ws in wb.observed.workspaces.items():
        if ws.cluster_id:
            live = wb.observed.clusters.get(ids.id_key(ws.cluster_id))
            out[ws_key] = live.id if live is not None else ws.cluster_id
    return out


def ours(wb: Workbench) -> Callable[[str, str], bool]:
    """(workspace id, cluster id) -> whether prune may remove that link: cmkctl made or applied it, or
    created its cluster.

    The journal says what cmkctl made: the last apply's record of the workspace (`AppliedResource`
    intent names the cluster it declared) or a link operation it journaled into that cluster. The
    cluster's ownership tag says what it created (`cmkctl-scope` = this spec's scope)."""
    declared = {a.key: a.intent.get("cluster_id") for a in wb.history.applied}
    journaled = {(op.workspace_key, op.cluster_key) for op in wb.history.link_operations
                 if op.source == "journal" and op.kind == "link"}
    scope = wb.desired.scope_id

    def check(workspace_id: str, cluster_id: str) -> bool:
        ws_key, cluster_key = ids.id_key(workspace_id), ids.id_key(cluster_id)
        obs = wb.observed.clusters.get(cluster_key)
        if obs is not None and compare.owner_scope(obs.tags) == scope:
            return True
        return declared.get(workspace_record_key(workspace_id)) == cluster_key or (
            (ws_key, cluster_key) in journaled)

    return check


def plan_links(wb: Workbench) -> None:
    history = with_associate_dates(wb.history, wb.observed)
    want = wb.desired.desired_links()
    entries = wb.desired.workspace_entries()
    current = _current_links(wb)
    managed = {ids.id_key(c.arm_id): c for c in wb.desired.clusters}
    intents: list[_Intent] = []
    # id keys of the few cluster ids every workspace is compared with, computed once each
    cluster_keys: dict[str, str] = {}

    def key_of(cluster_id: str) -> str:
        key = cluster_keys.get(cluster_id)
        if key is None:
            key = cluster_keys[cluster_id] = ids.id_key(cluster_id)
        return key

    for ws_key in sorted(want):
        target = want[ws_key]
        entry = entries[ws_key]
        ws = wb.observed.workspaces.get(ws_key)
        cur = current.get(ws_key)
        if ws is not None and cur is not None and key_of(cur) == key_of(target.arm_id):
            continue  # adopted: already where the spec wants it
        path = workspace_path(entry.id)
        link_id = f"link:{path}@{target.azure_name}"
        address = f"workspace.{ids.ResourceId.parse(entry.id).name}"
        if ws is None:
            wb.block(id=link_id, action=Action.LINK, address=address, resource_id=entry.id, rule=Rule.W2,
                     reason="the workspace does not exist (or is not readable)",
                     remedy="create the workspace or fix its id in the WorkspaceSet")
            continue
        wb.drifted(address=address, resource_id=ws.id, field_="cluster", desired=target.arm_id, live=cur)
        intent = _Intent(ws_key=ws_key, ws=ws, target=target, old_cluster_id=cur, link_id=link_id)
        if cur is not None:
            intent.unlink_id = f"unlink:{path}@{ids.ResourceId.parse(cur).name}"
        intents.append(intent)

    prune = wb.desired.settings.prune
    prunes: list[_Intent] = []
    link_is_ours = ours(wb)
    for ws_key in sorted(current):
        cur = current[ws_key]
        if ids.id_key(cur) not in managed or ws_key in entries:
            continue
        ws = wb.observed.workspaces.get(ws_key)
        name = ids.ResourceId.parse(ws.id).name if ws else ws_key.rsplit("/", 1)[-1]
        address = f"workspace.{name}"
        wb.drifted(address=address, resource_id=ws.id if ws else ws_key, field_="cluster", desired=None,
                   live=cur)
        if not prune.workspace_links or ws is None:
            wb.warn("prune-disabled", f"{address} is linked to {ids.ResourceId.parse(cur).name} but no "
                    "WorkspaceSet names it; set settings.prune.workspaceLinks to unlink it", address=address)
            continue
        if not link_is_ours(ws.id, cur):
            # prune removes only what this scope made: a link someone else made to a cluster we did not
            # create is reported, never unlinked (its data would silently go to Microsoft keys, W6)
            cluster_name = ids.ResourceId.parse(cur).name
            wb.warn("prune-not-owned",
                    f"{address} is linked to {cluster_name} but no WorkspaceSet names it; cmkctl did not "
                    f"make that link (no journal record) and did not create {cluster_name} "
                    f"({compare.OWNER_TAG} is not '{wb.desired.scope_id}'), so prune leaves it linked",
                    address=address, rule=Rule.W6)
            continue
        intent = _Intent(ws_key=ws_key, ws=ws, target=None, old_cluster_id=cur,
                         unlink_id=f"unlink:{workspace_path(ws.id)}@{ids.ResourceId.parse(cur).name}")
        prunes.append(intent)
    if len(prunes) > prune.max_unlinks:
        for intent in prunes:
            intent.stop("blocked", Rule.W6, f"{len(prunes)} prune unlinks exceed settings.prune.maxUnlinks "
                        f"({prune.max_unlinks}); unlinked workspaces store new data with Microsoft keys",
                        remedy="raise maxUnlinks or name the workspaces in a WorkspaceSet")
    intents.extend(prunes)

    for intent in intents:
        _check_workspace(wb, intent, history)
    _check_w1(wb, intents, current)
    for intent in intents:
        _emit(wb, intent)
    _order_deletes_after_unlinks(wb, intents)


def _check_workspace(wb: Workbench, intent: _Intent, history: History) -> None:
    """W5 in-progress, C8 region, W4 gate, W3 budget, in that order (the first reason wins)."""
    ws = intent.ws
    if (ws.link_state or "").lower() not in {s or "" for s in _IN_PROGRESS_DONE}:
        intent.stop("deferred", Rule.W5, f"a link operation on {ws.name} is still {ws.link_state}")
        return
    if any(ids.id_key(op.target) == intent.ws_key for op in wb.history.in_flight):
        intent.stop("deferred", Rule.W5, f"a link operation we started on {ws.name} has not finished")
        return
    target = intent.target
    if target is not None:
        if ids.normalise_location(ws.location) != target.spec.location:
            intent.stop("blocked", Rule.C8, f"workspace {ws.name} is in {ws.location}, cluster "
                        f"{target.azure_name} in {target.spec.location}",
                        remedy="link it to a cluster in its own region")
            return
        gate = wb.gate(target.arm_id)
        if gate.waiting:
            intent.stop("deferred", gate.rule, f"cluster {target.azure_name}: {gate.reason}", gate.not_before,
                        wait_ids=list(gate.wait_ids))
            # the budget date still matters: report the later of the two
            _budget(wb, intent, history, only_date=True)
            return
    _budget(wb, intent, history, only_date=False)


def _budget(wb: Workbench, intent: _Intent, history: History, *, only_date: bool) -> None:
    needed = (1 if intent.target is not None else 0) + (1 if intent.old_cluster_id else 0)
    at = earliest_with_room(history, intent.ws_key, wb.now, wb.limits, needed)
    if at is None:
        intent.stop("blocked", Rule.W3,
                    f"{needed} operations never fit in {wb.limits.link_ops_per_window} per window",
                    remedy="link the workspace in two steps")
        return
    if at <= wb.now:
        return
    if only_date:
        if intent.not_before is None or at > intent.not_before:
            intent.not_before = at
        return
    what = "a move (unlink + link) needs 2" if needed == 2 else "needs 1"
    intent.stop("deferred", Rule.W3, f"{intent.ws.name} used its {wb.limits.link_ops_per_window} link/unlink "
                f"operations of the last {wb.limits.link_window.days} days; {what}", at)


def _check_w1(wb: Workbench, intents: list[_Intent], current: dict[str, str]) -> None:
    """Rule W1 after the plan, to a fixed point (a cancelled move frees no slot)."""
    limit = wb.limits.workspaces_per_cluster
    live: dict[str, int] = {}
    for cur in current.values():
        live[ids.id_key(cur)] = live.get(ids.id_key(cur), 0) + 1
    changed = True
    while changed:
        changed = False
        out_now: dict[str, list[str]] = {}
        out_later: dict[str, int] = {}
        for i in intents:
            if i.old_cluster_id is None:
                continue
            key = ids.id_key(i.old_cluster_id)
            if i.status == "ok":
                out_now.setdefault(key, []).append(i.unlink_id)
            elif i.status == "deferred":
                out_later[key] = out_later.get(key, 0) + 1
        into: dict[str, int] = {}
        for i in intents:
            if i.target is None or i.status != "ok":
                continue
            key = ids.id_key(i.target.arm_id)
            n_live, n_out = live.get(key, 0), len(out_now.get(key, []))
            count = n_live - n_out + into.get(key, 0) + 1
            if count > limit:
                if out_later.get(key, 0):
                    i.stop("deferred", Rule.W1, f"cluster {i.target.azure_name} would exceed {limit} linked "
                           "workspaces until the deferred unlinks out of it have run")
                else:
                    i.stop("blocked", Rule.W1, f"cluster {i.target.azure_name} would exceed {limit} linked "
                           "workspaces", remedy="link the workspace to another cluster")
                changed = True
                continue
            into[key] = into.get(key, 0) + 1
            if n_live + into[key] > limit:
                i.extra_deps = sorted(out_now.get(key, []))


def _emit(wb: Workbench, i: _Intent) -> None:
    ws = i.ws
    address = f"workspace.{ws.name}"
    unlink_params = UnlinkParams(workspace_id=ws.id, cluster_id=i.old_cluster_id)
    link_params = LinkParams(workspace_id=ws.id, cluster_id=i.target.arm_id) if i.target else None
    if i.status == "blocked":
        for sid, action in ((i.link_id, Action.LINK), (i.unlink_id, Action.UNLINK)):
            if sid:
                wb.block(id=sid, action=action, address=address, resource_id=ws.id, rule=i.rule,
                         reason=i.reason, remedy=i.remedy)
        return
    if i.status == "deferred":
        if i.unlink_id:
            wb.defer(id=i.unlink_id, action=Action.UNLINK, address=address, resource_id=ws.id, rule=i.rule,
                     reason=i.reason + ("; the move's unlink waits with its link (W6)" if i.target else ""),
                     not_before=i.not_before, depends_on=i.wait_ids, parameters=unlink_params)
        if i.link_id:
            deps = [*i.wait_ids, *([i.unlink_id] if i.unlink_id else [])]
            wb.defer(id=i.link_id, action=Action.LINK, address=address, resource_id=ws.id, rule=i.rule,
                     reason=i.reason, not_before=i.not_before, depends_on=deps, parameters=link_params)
        return
    if i.unlink_id:
        prune = i.target is None
        wb.add(Change(
            id=i.unlink_id, action=Action.UNLINK, address=address, resource_id=ws.id,
            cluster_id=i.old_cluster_id, parameters=unlink_params, before={"cluster_id": i.old_cluster_id},
            after={"cluster_id": None},
            reason="not named by any WorkspaceSet (prune)" if prune else "first half of a move (W2)",
            rules=(Rule.W2, Rule.W3, Rule.W5, Rule.W6), destructive=prune,
            warnings=("new data of this workspace will use Microsoft keys (W6)",) if prune else ()))
    if i.target is not None:
        deps = [*wb.gate(i.target.arm_id).depends_on, *i.extra_deps]
        if i.unlink_id:
            deps.append(i.unlink_id)
        wb.add(Change(
            id=i.link_id, action=Action.LINK, address=address, resource_id=ws.id, cluster_id=i.target.arm_id,
            depends_on=tuple(sorted(set(deps))), parameters=link_params,
            before={"cluster_id": i.old_cluster_id}, after={"cluster_id": i.target.arm_id},
            reason=f"declared on cluster {i.target.azure_name}", rules=(Rule.W1, Rule.W3, Rule.W4, Rule.W5)))


def _order_deletes_after_unlinks(wb: Workbench, intents: list[_Intent]) -> None:
    """A cluster being deleted keeps its slot until the moves out of it have unlinked."""
    for i in intents:
        if not i.old_cluster_id or i.unlink_id not in wb.changes:
            continue
        step = wb.deletes.get(ids.id_key(i.old_cluster_id))
        if step is None or step not in wb.changes:
            continue
        delete = wb.changes[step]
        wb.changes[step] = delete.model_copy(
            update={"depends_on": tuple(sorted({*delete.depends_on, i.unlink_id}))})
