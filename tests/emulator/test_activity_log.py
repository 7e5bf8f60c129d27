"""The emulator's Activity Log reads like Azure's (docs/azure-wire.md): per operation a Started /
Accepted / Succeeded triple sharing one operationId, refused writes as Started + Failed, cluster deletions,
other OperationalInsights writes under the same provider, deployments sharing a correlationId, `$select`,
and `nextLink` pages that keep the query."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

import pytest
from emu_helpers import SUB, create_cluster, link, make_rg, refused, workspace

VALUES = f"/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values"
SINCE = "eventTimestamp ge '2026-11-01T00:00:00Z'"


@pytest.fixture
def la(emulator: Any, sdk: Any) -> Any:
    make_rg(emulator)
    return sdk.loganalytics()


def _events(emulator: Any, flt: str = SINCE, **query: str) -> list[dict[str, Any]]:
    """All pages, following nextLink as a client does."""
    out: list[dict[str, Any]] = []
    params = "&".join([f"$filter={flt}", *(f"{k}={v}" for k, v in query.items())])
    r = emulator.arm("GET", f"{VALUES}?{params}", api_version="2015-04-01")
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        out.extend(body["value"])
        if not body.get("nextLink"):
            return out
        link = urlsplit(body["nextLink"])
        r = emulator.arm("GET", f"{link.path}?{link.query}", api_version="")


def _by_operation(events: list[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    ops: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in sorted(events, key=lambda e: e["eventTimestamp"]):
        ops[(e["operationName"]["value"], e["operationId"])].append(e["status"]["value"])
    return ops


def test_a_link_is_started_accepted_succeeded_under_one_operation_id_with_the_clients_request_id(
    emulator: Any, la: Any
) -> None:
    create_cluster(la)
    workspace(la)
    link(la, "rg1", "wsp1", "clu1")
    events = [e for e in _events(emulator) if "linkedservices" in e["resourceId"].lower()]
    assert list(_by_operation(events).values()) == [["Started", "Accepted", "Succeeded"]]
    started = next(e for e in events if e["status"]["value"] == "Started")
    assert started["httpRequest"]["method"] == "PUT"
    assert started["resourceType"]["value"] == "Microsoft.OperationalInsights/workspaces/linkedServices"


def test_a_refused_link_is_started_and_failed_never_accepted(emulator: Any, la: Any) -> None:
    emulator.configure(durations={"link": 600})
    create_cluster(la)
    workspace(la)
    from azure.mgmt.loganalytics.models import LinkedService
    from emu_helpers import cluster_id

    la.linked_services.begin_create_or_update(
        "rg1", "wsp1", "cluster", LinkedService(write_access_resource_id=cluster_id("rg1", "clu1"))
    )
    status, _, _ = refused(lambda: la.linked_services.begin_delete("rg1", "wsp1", "cluster").result())
    assert status == 409  # rule W5: in process
    ops = _by_operation([e for e in _events(emulator) if "linkedservices" in e["resourceId"].lower()])
    assert sorted(ops.values()) == [["Started", "Accepted"], ["Started", "Failed"]]


def test_a_cluster_delete_is_in_the_activity_log(emulator: Any, la: Any) -> None:
    create_cluster(la)
    la.clusters.begin_delete("rg1", "clu1").result()
    ops = _by_operation([e for e in _events(emulator) if e["resourceId"].lower().endswith("/clusters/clu1")])
    delete = next(k for k in ops if k[0].endswith("clusters/delete"))
    assert ops[delete] == ["Started", "Accepted", "Succeeded"]


def test_seeded_noise_deployments_and_deleted_clusters_read_like_a_real_log(emulator: Any) -> None:
    ws = [
        {
            "subscription": SUB,
            "resource_group": "rg1",
            "name": f"wsp{i}",
            "activity_noise": 6,
            "link_ops": [{"time": "2026-11-10T10:00:00Z", "correlation": "deployment-1"}],
        }
        for i in range(3)
    ]
    emulator.seed(
        {
            "workspaces": ws,
            "clusters": [
                {
                    "subscription": SUB,
                    "resource_group": "rg1",
                    "name": "gone",
                    "deleted": "2026-11-20T00:00:00Z",
                }
            ],
        }
    )
    events = _events(emulator)
    names = {e["operationName"]["value"] for e in events}
    assert {
        "Microsoft.OperationalInsights/workspaces/tables/write",
        "Microsoft.OperationalInsights/workspaces/savedSearches/write",
        "Microsoft.OperationalInsights/clusters/delete",
    } <= names
    automation = {e["resourceId"] for e in events if e["resourceId"].endswith("/linkedServices/Automation")}
    assert len(automation) == 3  # the same operation name as the cluster link, another linked service
    links = [e for e in events if e["resourceId"].endswith("/linkedServices/cluster")]
    assert {e["correlationId"] for e in links} == {"deployment-1"}  # one deployment, three workspaces
    assert len({e["operationId"] for e in links}) == 3


def test_select_narrows_events_and_next_link_keeps_the_query(emulator: Any) -> None:
    emulator.configure(activity_page_size=5)
    emulator.seed(
        {"workspaces": [{"subscription": SUB, "resource_group": "rg1", "name": "w", "activity_noise": 9}]}
    )
    events = _events(emulator, **{"$select": "operationName,resourceId,status"})
    assert len(events) > 5
    assert all(set(e) == {"operationName", "resourceId", "status"} for e in events)
    pages = [r for r in emulator.requests() if r["path"].endswith("/values")]
    assert len(pages) > 1 and all(p["query"]["$select"] == "operationName,resourceId,status" for p in pages)


def test_an_unknown_select_field_and_an_old_start_are_activity_log_errors(emulator: Any) -> None:
    r = emulator.arm("GET", f"{VALUES}?$filter={SINCE}&$select=nope", api_version="2015-04-01")
    assert r.status_code == 400 and set(r.json()) == {"Code", "Message"}
    r = emulator.arm(
        "GET", f"{VALUES}?$filter=eventTimestamp ge '2026-08-01T00:00:00Z'", api_version="2015-04-01"
    )
    assert r.json() == {
        "Code": "BadRequest",
        "Message": "The start time cannot be more than 90 days in the past.",
    }
