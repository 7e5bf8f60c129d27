"""BYOS (B1, B2): a Query storage account drops saved searches; refused without the opt-in."""

from __future__ import annotations

from plan_builders import cluster, desired, obs_cluster, obs_ws, observed, plan, storage_id, ws_id, wsset

from controller.planning.plan import Action, ByosLinkParams, Severity

A = cluster("clA")


def _entry(**byos: object) -> dict[str, object]:
    return {"id": ws_id("wks1"), "byos": byos}


def test_query_storage_without_opt_in_is_blocked_b2() -> None:
    d = desired([A], [wsset("t", None, [_entry(query=storage_id("st1"))])])
    p = plan(d, observed([obs_cluster(A)], [obs_ws("wks1", byos_read=True)]))
    (b,) = p.blocked
    assert b.rule == "B2" and "saved searches" in b.reason and "allowSavedSearchLoss" in b.remedy


def test_query_storage_with_opt_in_is_planned_and_loud() -> None:
    d = desired([A], [wsset("t", None, [_entry(query=storage_id("st1"), allowSavedSearchLoss=True)])])
    p = plan(d, observed([obs_cluster(A)], [obs_ws("wks1", byos_read=True)]))
    (ch,) = p.changes
    assert ch.action == Action.BYOS_LINK and ch.destructive and ch.warnings
    assert ch.parameters == ByosLinkParams(workspace_id=ws_id("wks1"), data_source_type="Query",
                                           storage_account_id=storage_id("st1"))
    assert any(w.rule == "B2" and w.severity == Severity.CRITICAL for w in p.warnings)


def test_alerts_storage_is_planned_and_matching_storage_adopted() -> None:
    d = desired([A], [wsset("t", None, [_entry(alerts=storage_id("st2"), query=storage_id("st1"))])])
    live = obs_ws("wks1", byos_read=True, byos={"query": storage_id("ST1").upper()})
    p = plan(d, observed([obs_cluster(A)], [live]))
    assert [(c.action, c.parameters.data_source_type) for c in p.changes] == [(Action.BYOS_LINK, "Alerts")]
