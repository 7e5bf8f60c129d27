"""Workspace links, BYOS and the Activity Log through the real SDKs: rules W1-W5, B1, B2, and the
harm Azure records silently (W4 data dropped, B2 saved searches dropped) exactly when it happens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from emu_helpers import (
    SUB,
    cluster_id,
    create_cluster,
    link,
    make_rg,
    refused,
    storage,
    unlink,
    workspace,
)


@pytest.fixture
def la(emulator: Any, sdk: Any) -> Any:
    make_rg(emulator)
    return sdk.loganalytics()


def _storage_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/{name}"


@pytest.mark.sdk_floor
def test_link_shows_on_workspace_and_cluster_and_unlink_removes_it(emulator: Any, la: Any) -> None:
    create_cluster(la)
    workspace(la)
    ls = link(la, "rg1", "wsp1", "clu1")
    assert ls.provisioning_state == "Succeeded"
    assert ls.write_access_resource_id.lower() == cluster_id("rg1", "clu1").lower()
    raw = emulator.arm(
        "GET",
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.OperationalInsights/workspaces/wsp1",
    ).json()
    assert raw["properties"]["features"]["clusterResourceId"] == cluster_id("rg1", "clu1")
    assert raw["properties"]["sku"]["name"] == "LACluster"
    assoc = la.clusters.get("rg1", "clu1").associated_workspaces
    assert [a.workspace_name for a in assoc] == ["wsp1"]
    unlink(la, "rg1", "wsp1")
    raw = emulator.arm(
        "GET",
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.OperationalInsights/workspaces/wsp1",
    ).json()
    assert "clusterResourceId" not in raw["properties"]["features"]
    assert la.clusters.get("rg1", "clu1").associated_workspaces == []
    assert emulator.events() == []  # a correct link after provisioning harms nothing


@pytest.mark.sdk_floor
def test_link_is_async_and_w5_refuses_a_second_operation_meanwhile(emulator: Any, la: Any) -> None:
    create_cluster(la)
    workspace(la)
    emulator.configure(durations={"link": 1800, "unlink": 1800})
    from azure.mgmt.loganalytics.models import LinkedService

    la.linked_services.begin_create_or_update(
        "rg1", "wsp1", "cluster", LinkedService(write_access_resource_id=cluster_id("rg1", "clu1"))
    )
    assert la.linked_services.get("rg1", "wsp1", "cluster").provisioning_state == "ProvisioningAccount"
    status, _, message = refused(lambda: unlink(la, "rg1", "wsp1"))
    assert (status, message) == (409, "Workspace link or unlink operation in process.")
    status, _, message = refused(lambda: link(la, "rg1", "wsp1", "clu1"))
    assert (status, message) == (409, "Workspace link or unlink operation in process.")
    emulator.advance(1800)
    assert la.linked_services.get("rg1", "wsp1", "cluster").provisioning_state == "Succeeded"


@pytest.mark.sdk_floor
def test_w2_workspace_linked_elsewhere_must_be_unlinked_first(emulator: Any, la: Any) -> None:
    create_cluster(la, name="clu1")
    create_cluster(la, name="clu2")
    workspace(la)
    link(la, "rg1", "wsp1", "clu1")
    status, _, message = refused(lambda: link(la, "rg1", "wsp1", "clu2"))
    assert status == 400 and "already linked" in message


@pytest.mark.sdk_floor
def test_w3_third_link_operation_in_30_days_is_refused(emulator: Any, la: Any) -> None:
    create_cluster(la)
    workspace(la)
    link(la, "rg1", "wsp1", "clu1")
    unlink(la, "rg1", "wsp1")
    status, code, message = refused(lambda: link(la, "rg1", "wsp1", "clu1"))
    assert (status, code) == (400, "BadRequest")  # a quota refusal: not 409 (W5 busy), final for weeks
    assert "A maximum of 2 workspace link operations" in message and "30 day period" in message
    emulator.advance(30 * 86400)
    assert link(la, "rg1", "wsp1", "clu1").provisioning_state == "Succeeded"


def test_w3_counts_seeded_past_link_operations(emulator: Any, la: Any) -> None:
    create_cluster(la)
    now = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    emulator.seed(
        {
            "workspaces": [
                {
                    "subscription": SUB,
                    "resource_group": "rg1",
                    "name": "wsold",
                    "location": "eastus",
                    "link_ops": [
                        (now - timedelta(days=40)).isoformat(),
                        (now - timedelta(days=35)).isoformat(),
                    ],
                },
                {
                    "subscription": SUB,
                    "resource_group": "rg1",
                    "name": "wsbusy",
                    "location": "eastus",
                    "link_ops": [
                        (now - timedelta(days=10)).isoformat(),
                        {"time": (now - timedelta(days=5)).isoformat(), "kind": "unlink"},
                    ],
                },
            ]
        }
    )
    assert link(la, "rg1", "wsold", "clu1").provisioning_state == "Succeeded"
    assert refused(lambda: link(la, "rg1", "wsbusy", "clu1"))[0] == 400


def test_w1_at_most_1000_workspaces_per_cluster(emulator: Any, la: Any) -> None:
    create_cluster(la)
    emulator.seed(
        {
            "workspaces": [
                {
                    "subscription": SUB,
                    "resource_group": "rg1",
                    "name": f"w{i:04d}",
                    "location": "eastus",
                    "cluster": "clu1",
                }
                for i in range(1000)
            ]
        }
    )
    workspace(la, name="wsp1")
    status, _, message = refused(lambda: link(la, "rg1", "wsp1", "clu1"))
    assert status == 400 and "A maximum of 1000 Log Analytics workspaces can be linked" in message


@pytest.mark.sdk_floor
def test_w4_link_before_provisioning_succeeded_is_accepted_but_drops_data(emulator: Any, la: Any) -> None:
    emulator.configure(durations={"cluster_create": 7200})
    from emu_helpers import cluster_model

    la.clusters.begin_create_or_update("rg1", "clu1", cluster_model())
    workspace(la)
    ls = link(la, "rg1", "wsp1", "clu1")  # accepted, like Azure
    assert ls.provisioning_state == "Succeeded"
    events = emulator.events()
    assert [(e["kind"], e["rule"]) for e in events] == [("data_dropped", "W4")]
    assert events[0]["resource_id"].lower().endswith("/workspaces/wsp1")


@pytest.mark.sdk_floor
def test_link_errors_for_missing_workspace_cluster_or_region_mismatch(emulator: Any, la: Any) -> None:
    create_cluster(la)
    status, _, message = refused(lambda: link(la, "rg1", "nows", "clu1"))
    assert status == 404 and message.startswith("Workspace not found.")
    workspace(la)
    status, _, message = refused(lambda: link(la, "rg1", "wsp1", "nocluster"))
    assert status == 400 and message.startswith("Cluster not found")
    workspace(la, name="wswest", location="westeurope")
    status, _, message = refused(lambda: link(la, "rg1", "wswest", "clu1"))
    assert status == 400 and "same region" in message
    assert emulator.events() == []


@pytest.mark.sdk_floor
def test_linked_service_get_before_link_is_404_without_message(la: Any) -> None:
    workspace(la)
    status, code, _ = refused(lambda: la.linked_services.get("rg1", "wsp1", "cluster"))
    assert (status, code) == (404, "NotFound")


@pytest.mark.sdk_floor
def test_b1_one_storage_account_in_the_workspace_region(emulator: Any, la: Any) -> None:
    emulator.seed(
        {
            "storage_accounts": [
                {"id": _storage_id("sa1"), "location": "eastus"},
                {"id": _storage_id("sa2"), "location": "eastus"},
                {"id": _storage_id("saw"), "location": "westeurope"},
            ]
        }
    )
    workspace(la)
    lsa = la.linked_storage_accounts
    status, _, message = refused(
        lambda: lsa.create_or_update(
            "rg1", "wsp1", "Alerts", storage([_storage_id("sa1"), _storage_id("sa2")])
        )
    )
    assert status == 400 and "Only one storage account" in message
    status, _, message = refused(
        lambda: lsa.create_or_update("rg1", "wsp1", "Alerts", storage([_storage_id("saw")]))
    )
    assert status == 400 and "same region" in message
    got = lsa.create_or_update("rg1", "wsp1", "Alerts", storage([_storage_id("sa1")]))
    assert got.storage_account_ids == [_storage_id("sa1")]
    assert [x.name for x in lsa.list_by_workspace("rg1", "wsp1")] == ["alerts"]
    lsa.delete("rg1", "wsp1", "Alerts")
    assert list(lsa.list_by_workspace("rg1", "wsp1")) == []


@pytest.mark.sdk_floor
def test_b2_query_storage_drops_saved_searches_only_when_there_are_some(emulator: Any, la: Any) -> None:
    emulator.seed(
        {
            "storage_accounts": [{"id": _storage_id("sa1"), "location": "eastus"}],
            "workspaces": [
                {
                    "subscription": SUB,
                    "resource_group": "rg1",
                    "name": "wsqq",
                    "location": "eastus",
                    "saved_searches": 12,
                },
                {"subscription": SUB, "resource_group": "rg1", "name": "wsempty", "location": "eastus"},
            ],
        }
    )
    lsa = la.linked_storage_accounts
    lsa.create_or_update("rg1", "wsempty", "Query", storage([_storage_id("sa1")]))
    lsa.create_or_update("rg1", "wsqq", "Alerts", storage([_storage_id("sa1")]))
    assert emulator.events() == []
    lsa.create_or_update("rg1", "wsqq", "Query", storage([_storage_id("sa1")]))  # accepted
    events = emulator.events()
    assert [(e["kind"], e["rule"]) for e in events] == [("saved_searches_dropped", "B2")]
    assert "12 saved searches" in events[0]["detail"]


def test_activity_log_records_link_writes_filterable_by_resource_uri(
    emulator: Any, la: Any, sdk: Any
) -> None:
    create_cluster(la)
    workspace(la)
    workspace(la, name="wsp2")
    link(la, "rg1", "wsp1", "clu1")
    unlink(la, "rg1", "wsp1")
    link(la, "rg1", "wsp2", "clu1")
    monitor = sdk.monitor()
    rid = (
        f"/subscriptions/{SUB}/resourcegroups/rg1/providers/microsoft.operationalinsights/"
        "workspaces/wsp1/linkedservices/cluster"
    )
    flt = f"eventTimestamp ge '2026-11-01T00:00:00Z' and resourceUri eq '{rid}'"
    events = list(monitor.activity_logs.list(filter=flt))
    ops = {(e.operation_name.value, e.status.value) for e in events}
    assert ops == {
        ("Microsoft.OperationalInsights/workspaces/linkedServices/write", "Started"),
        ("Microsoft.OperationalInsights/workspaces/linkedServices/write", "Accepted"),
        ("Microsoft.OperationalInsights/workspaces/linkedServices/write", "Succeeded"),
        ("Microsoft.OperationalInsights/workspaces/linkedServices/delete", "Started"),
        ("Microsoft.OperationalInsights/workspaces/linkedServices/delete", "Accepted"),
        ("Microsoft.OperationalInsights/workspaces/linkedServices/delete", "Succeeded"),
    }
    assert len({e.correlation_id for e in events}) == 2
    everything = list(monitor.activity_logs.list(filter="eventTimestamp ge '2026-11-01T00:00:00Z'"))
    assert len(everything) == 9


def test_activity_log_rejects_old_start_and_bad_filter(emulator: Any, sdk: Any) -> None:
    monitor = sdk.monitor()
    status, _, _ = refused(
        lambda: list(monitor.activity_logs.list(filter="eventTimestamp ge '2026-01-01T00:00:00Z'"))
    )
    assert status == 400
    r = emulator.arm(
        "GET",
        f"/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values"
        "?$filter=eventTimestamp ge '2026-01-01T00:00:00Z'",
        api_version="2015-04-01",
    )
    assert r.json() == {
        "Code": "BadRequest",
        "Message": "The start time cannot be more than 90 days in the past.",
    }
    r = emulator.arm(
        "GET",
        f"/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values"
        "?$filter=status eq 'x'",
        api_version="2015-04-01",
    )
    assert r.status_code == 400


def test_seeded_past_link_ops_are_in_the_activity_log(emulator: Any, sdk: Any) -> None:
    emulator.seed(
        {
            "workspaces": [
                {
                    "subscription": SUB,
                    "resource_group": "rg1",
                    "name": "wsp1",
                    "link_ops": ["2026-11-10T10:00:00Z"],
                }
            ]
        }
    )
    events = list(sdk.monitor().activity_logs.list(filter="eventTimestamp ge '2026-11-01T00:00:00Z'"))
    assert {e.status.value for e in events} == {"Started", "Accepted", "Succeeded"}
    assert all(e.event_timestamp.date().isoformat() == "2026-11-10" for e in events)


def test_deleting_a_cluster_unlinks_its_workspaces(emulator: Any, la: Any) -> None:
    create_cluster(la)
    workspace(la)
    link(la, "rg1", "wsp1", "clu1")
    la.clusters.begin_delete("rg1", "clu1").result()
    ws = la.workspaces.get("rg1", "wsp1")
    assert ws.features is None or not ws.features.cluster_resource_id


@pytest.mark.sdk_floor
def test_workspace_list_is_one_page(emulator: Any, la: Any) -> None:
    emulator.seed(
        {
            "workspaces": [
                {"subscription": SUB, "resource_group": "rg1", "name": f"w{i:03d}"} for i in range(300)
            ]
        }
    )
    names = [w.name for w in la.workspaces.list()]
    assert len(names) == 300
    assert len([w.name for w in la.workspaces.list_by_resource_group("rg1")]) == 300
    r = emulator.arm("GET", f"/subscriptions/{SUB}/providers/Microsoft.OperationalInsights/workspaces")
    assert "nextLink" not in r.json()


def test_w4_not_triggered_by_linking_during_a_key_update(emulator: Any, la: Any) -> None:
    """Provisioning already succeeded; an update in progress does not drop data."""
    emulator.configure(durations={"cluster_update": 600})
    emulator.seed(
        {
            "vaults": [
                {
                    "name": "kvlink",
                    "subscription": SUB,
                    "resourceGroup": "rg1",
                    "location": "eastus",
                    "purgeProtection": True,
                    "keys": [{"name": "k1", "versions": [{"version": "3" * 32}]}],
                }
            ]
        }
    )
    cluster = create_cluster(la)
    emulator.state.vaults.principal_grant(
        "https://kvlink.vault.azure.net", cluster.identity.principal_id, ["get", "wrapKey", "unwrapKey"]
    )
    from emu_helpers import key_patch

    la.clusters.begin_update("rg1", "clu1", key_patch("https://kvlink.vault.azure.net", "k1", "3" * 32))
    assert la.clusters.get("rg1", "clu1").provisioning_state == "Updating"
    workspace(la)
    link(la, "rg1", "wsp1", "clu1")
    assert emulator.events() == []


def test_activity_log_pages_with_next_link(emulator: Any, sdk: Any) -> None:
    emulator.configure(activity_page_size=4)
    emulator.seed(
        {
            "workspaces": [
                {
                    "subscription": SUB,
                    "resource_group": "rg1",
                    "name": f"wsp{i}",
                    "link_ops": ["2026-11-10T10:00:00Z"],
                }
                for i in range(3)
            ]
        }
    )
    events = list(sdk.monitor().activity_logs.list(filter="eventTimestamp ge '2026-11-01T00:00:00Z'"))
    assert len(events) == 9
    assert len({e.event_data_id for e in events}) == 9
    pages = [r for r in emulator.requests() if r["path"].endswith("/values")]
    assert len(pages) == 3


@pytest.mark.sdk_floor
def test_workspace_update_delete_and_the_sku_of_a_linked_workspace(emulator: Any, la: Any) -> None:
    from azure.mgmt.loganalytics.models import Workspace, WorkspacePatch, WorkspaceSku

    create_cluster(la)
    workspace(la)
    assert la.workspaces.update("rg1", "wsp1", WorkspacePatch(tags={"env": "ci"})).tags == {"env": "ci"}
    link(la, "rg1", "wsp1", "clu1")
    body = Workspace(location="eastus", sku=WorkspaceSku(name="PerGB2018"))
    status, _, message = refused(lambda: la.workspaces.begin_create_or_update("rg1", "wsp1", body).result())
    assert (status, message) == (400, "sku.name can not be changed while workspace is linked to cluster")
    la.workspaces.begin_delete("rg1", "wsp1").result()
    assert refused(lambda: la.workspaces.get("rg1", "wsp1"))[0] == 404


def test_cluster_resource_id_is_read_only_on_workspaces(emulator: Any, la: Any) -> None:
    create_cluster(la)
    workspace(la)
    path = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.OperationalInsights/workspaces/wsp1"
    body = {
        "location": "eastus",
        "properties": {"features": {"clusterResourceId": cluster_id("rg1", "clu1")}},
    }
    r = emulator.arm("PUT", path, body)
    assert r.status_code == 400 and "read only" in r.json()["error"]["message"]
    assert emulator.arm("GET", path).json()["properties"]["features"].get("clusterResourceId") is None
