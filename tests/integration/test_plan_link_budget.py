"""Rule W3 (link budget) and C11 (reserved names) from the Activity Log as Azure writes it: other
linked services and workspace writes under the same provider, ARM deployments that share one correlation
id across workspaces, refused and failed attempts, cluster deletions nobody journaled, paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from plan_runner import PlanRunner
from tests_azure_support import CLUSTER, LOCATION, RG, SUB, cluster_doc, estate, workspace_set_doc

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # the emulator fixture's clock


def _ws(name: str, link_ops: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "subscription": SUB,
        "resource_group": "rg-apps",
        "name": name,
        "location": LOCATION,
        "link_ops": link_ops,
    }
    doc.update(extra)
    return doc


def _seed(emulator: Any, workspaces: list[dict[str, Any]]) -> None:
    seeded = estate()
    seeded["workspaces"] = [w for w in seeded["workspaces"] if w["name"] != "wks1"] + workspaces
    emulator.seed(seeded)


def _spec(names: list[str]) -> list[dict[str, Any]]:
    return [cluster_doc(), workspace_set_doc(names)]


def _deferred_w3(run: Any) -> dict[str, str]:
    return {
        d["address"].rsplit("/", 1)[-1].strip("]'\""): d["not_before"]
        for d in run.items("deferred", "link")
        if d["rule"] == "W3"
    }


def test_w3_automation_linked_service_writes_do_not_spend_the_cluster_link_budget(
    emulator: Any, plan: PlanRunner
) -> None:
    """Same operation name, another linked service: linking wks3 to the cluster is still possible."""
    automation = [
        {"time": "2026-11-05T00:00:00Z", "kind": "link", "linked_service": "Automation"},
        {"time": "2026-11-20T00:00:00Z", "kind": "unlink", "linked_service": "Automation"},
        {"time": "2026-11-25T00:00:00Z", "kind": "link", "linked_service": "Automation"},
    ]
    _seed(emulator, [_ws("wks3", automation, activity_noise=12)])
    run = plan(_spec(["wks3"]))
    assert "wks3" in str(run.items("changes", "link")), run.plan
    assert _deferred_w3(run) == {}


def test_w3_one_deployment_linking_many_workspaces_spends_each_workspace_budget(
    emulator: Any, plan: PlanRunner
) -> None:
    """An ARM deployment links wks3..wks5 (one correlation id), a second one unlinks them: each workspace
    has used 2 of 2, so none may be linked before the first operation leaves the window."""
    ops = [
        {"time": "2026-11-05T00:00:00Z", "kind": "link", "correlation": "deployment-1"},
        {"time": "2026-11-20T00:00:00Z", "kind": "unlink", "correlation": "deployment-2"},
    ]
    names = ["wks3", "wks4", "wks5"]
    _seed(emulator, [_ws(n, ops) for n in names])
    run = plan(_spec(names))
    assert run.items("changes", "link") == []
    deferred = run.items("deferred", "link")
    assert sorted(d["rule"] for d in deferred) == ["W3"] * 3
    ends = {datetime.fromisoformat(d["not_before"].replace("Z", "+00:00")).date() for d in deferred}
    assert ends == {(datetime(2026, 11, 5, tzinfo=UTC) + timedelta(days=30)).date()}


def test_w3_accepted_attempts_that_failed_spend_the_budget_even_an_hour_apart(
    emulator: Any, plan: PlanRunner
) -> None:
    """Azure accepted two links of wks3 an hour apart and both failed: both count (2 of 2)."""
    failed = [
        {"time": "2026-11-25T10:00:00Z", "kind": "link", "status": "Failed"},
        {"time": "2026-11-25T11:00:00Z", "kind": "link", "status": "Failed"},
    ]
    _seed(emulator, [_ws("wks3", failed)])
    run = plan(_spec(["wks3"]))
    assert run.items("changes", "link") == []
    assert list(_deferred_w3(run)) and "wks3" in str(run.items("deferred", "link"))


def test_w3_refused_attempts_do_not_spend_the_budget(emulator: Any, plan: PlanRunner) -> None:
    """Requests Azure refused (Started, Failed, never Accepted) are not operations."""
    refused = [
        {"time": "2026-11-25T10:00:00Z", "kind": "link", "status": "Refused"},
        {"time": "2026-11-26T10:00:00Z", "kind": "link", "status": "Refused"},
        {"time": "2026-11-27T10:00:00Z", "kind": "link", "status": "Refused"},
    ]
    _seed(emulator, [_ws("wks3", refused)])
    run = plan(_spec(["wks3"]))
    assert "wks3" in str(run.items("changes", "link"))


def test_w3_the_activity_log_query_is_narrow_and_every_page_is_read(emulator: Any, plan: PlanRunner) -> None:
    """Realistic noise spreads wks3's two links over several pages; both still count."""
    emulator.configure(activity_page_size=10)
    ops = [
        {"time": "2026-11-02T00:00:00Z", "kind": "link"},
        {"time": "2026-11-03T00:00:00Z", "kind": "unlink"},
    ]
    _seed(emulator, [_ws("wks3", ops, activity_noise=30), _ws("wks6", [], activity_noise=30)])
    run = plan(_spec(["wks3"]))
    assert run.items("changes", "link") == [] and list(_deferred_w3(run))
    pages = [r for r in emulator.requests() if r["path"].lower().endswith("/eventtypes/management/values")]
    assert len(pages) > 3  # ~60 operations x 2-3 events, 10 per page
    query = pages[0]["query"]
    # the time range both ways, one provider, and only the fields the W3/C11 reading uses
    assert "eventTimestamp ge '" in query["$filter"] and "eventTimestamp le '" in query["$filter"]
    assert "resourceProvider eq 'Microsoft.OperationalInsights'" in query["$filter"]
    assert set(query["$select"].split(",")) == {
        "operationName", "resourceId", "eventTimestamp", "status", "operationId", "httpRequest"
    }
    assert all(p["query"].get("$select") == query["$select"] for p in pages)  # nextLink keeps it


def test_c11_a_cluster_deleted_by_hand_keeps_its_name_reserved_without_our_journal(
    emulator: Any, plan: PlanRunner
) -> None:
    """Someone deleted clu01 in the portal on 2026-11-25: only the Activity Log knows. Its name stays
    reserved until 2026-12-09, so the plan must not send a create that Azure refuses with 409."""
    emulator.seed(
        {
            "vaults": estate()["vaults"],
            "clusters": [
                {
                    "subscription": SUB,
                    "resource_group": RG,
                    "name": CLUSTER,
                    "location": LOCATION,
                    "deleted": "2026-11-25T00:00:00Z",
                }
            ],
        }
    )
    run = plan([cluster_doc()])
    assert run.items("changes", "create") == []
    refused = run.items("blocked", "create") + run.items("deferred", "create")
    assert [r["rule"] for r in refused] == ["C11"]
    assert "2026-12-09" in str(refused[0])
