"""BYOS storage links (rules B1, B2) for the workspaces the spec names with a `byos` block.

Decisions:
* Linking (or replacing) a `Query` account removes the workspace's saved searches (B2): blocked
  without `allowSavedSearchLoss`, and even when opted in the change carries a loud warning and the
  plan a critical warning.
* A data source type the spec omits is not managed: a live link there is drift, never removed
  (removing a Query account hides the saved searches it holds). `byos_unlink` is reserved for that
  opt-in later.
* Workspaces whose BYOS could not be read (`byos_read` False) get a warning and no step.
"""

from __future__ import annotations

from controller.model import ids
from controller.model.rules import Rule
from controller.planning.context import Workbench, workspace_path
from controller.planning.plan import Action, ByosLinkParams, Change, Severity


def plan_byos(wb: Workbench) -> None:
    for ws_key, entry in sorted(wb.desired.workspace_entries().items()):
        if entry.byos is None:
            continue
        ws = wb.observed.workspaces.get(ws_key)
        name = ids.ResourceId.parse(entry.id).name
        address = f"workspace.{name}"
        if ws is None:
            continue  # reported by the link planner (W2), or nothing to attach storage to
        if not ws.byos_read:
            wb.warn("byos-unread", f"{address}: linked storage accounts could not be read", address=address)
            continue
        for kind, wanted in (("query", entry.byos.query), ("alerts", entry.byos.alerts)):
            live = ws.byos.get(kind)
            if wanted is None:
                if live is not None:
                    wb.drifted(address=address, resource_id=ws.id, field_=f"byos.{kind}", desired=None,
                               live=live, severity=Severity.INFO, rule=Rule.B1)
                continue
            if live is not None and ids.id_key(live) == ids.id_key(wanted):
                continue
            wb.drifted(address=address, resource_id=ws.id, field_=f"byos.{kind}", desired=wanted, live=live,
                       rule=Rule.B1)
            source = "Query" if kind == "query" else "Alerts"
            step = f"byos_link:{workspace_path(ws.id)}:{kind}"
            warns: tuple[str, ...] = ()
            if kind == "query":
                if not entry.byos.allow_saved_search_loss:
                    wb.block(id=step, action=Action.BYOS_LINK, address=address, resource_id=ws.id,
                             rule=Rule.B2,
                             reason=f"linking a Query storage account REMOVES the saved searches of {name}",
                             remedy="export the saved searches, then set byos.allowSavedSearchLoss: true")
                    continue
                msg = f"{address}: linking Query storage REMOVES the workspace's existing saved searches (B2)"
                wb.warn("byos-query-drops-saved-searches", msg, address=address, rule=Rule.B2,
                        severity=Severity.CRITICAL)
                warns = ("REMOVES the workspace's existing saved searches (B2, opted in)",)
            wb.add(Change(id=step, action=Action.BYOS_LINK, address=address, resource_id=ws.id,
                          parameters=ByosLinkParams(workspace_id=ws.id, data_source_type=source,
                                                    storage_account_id=wanted),
                          before={"storage_account_id": live}, after={"storage_account_id": wanted},
                          reason=f"declared {source} storage account", rules=(Rule.B1, Rule.B2),
                          destructive=kind == "query", warnings=warns))
