"""Clusters through the real LogAnalyticsManagementClient: every cluster rule (C1-C6, C9, C11, C12)
answers with the seed's status code and message, and the LRO path works end to end."""

from __future__ import annotations

from typing import Any

import pytest
from emu_helpers import (
    SUB,
    cluster_model,
    create_cluster,
    make_rg,
    refused,
    sku_patch,
)

pytestmark = pytest.mark.sdk_floor


@pytest.fixture
def la(emulator: Any, sdk: Any) -> Any:
    make_rg(emulator)
    return sdk.loganalytics()


def test_create_runs_the_full_lro_path_and_get_shows_azure_shapes(emulator: Any, la: Any) -> None:
    emulator.configure(durations={"cluster_create": 600})
    poller = la.clusters.begin_create_or_update("rg1", "clu1", cluster_model())
    # While provisioning the cluster is already visible, in state Creating.
    assert la.clusters.get("rg1", "clu1").provisioning_state == "Creating"
    emulator.advance(601)
    result = poller.result()
    assert result.provisioning_state == "Succeeded"
    paths = [(r["method"], r["path"].split("/")[-2].lower()) for r in emulator.requests()]
    assert ("PUT", "clusters") in paths
    assert ("GET", "operationstatuses") in paths  # polled the Azure-AsyncOperation URL
    raw = emulator.arm(
        "GET",
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.OperationalInsights/clusters/clu1",
    ).json()
    assert raw["properties"]["createdDate"].endswith(" GMT")  # RFC-1123
    assert raw["identity"]["principalId"] and raw["identity"]["tenantId"]
    assert raw["properties"]["associatedWorkspaces"] == []
    assert "keyVaultProperties" not in raw["properties"]


def test_create_answers_202_with_async_operation_header(emulator: Any) -> None:
    make_rg(emulator)
    body = {
        "location": "eastus",
        "identity": {"type": "SystemAssigned"},
        "sku": {"name": "CapacityReservation", "capacity": 1000},
    }
    r = emulator.arm(
        "PUT",
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.OperationalInsights/clusters/clu9",
        body,
    )
    assert r.status_code == 202
    aao = r.headers["Azure-AsyncOperation"]
    assert "/operationStatuses/" in aao and "api-version=2015-11-01-preview" in aao
    status = emulator.arm("GET", aao.split("management.azure.com")[1], api_version="").json()
    assert status["status"] == "Succeeded" and status["endTime"]


@pytest.mark.parametrize("name", ["ab", "abc", "a" * 64, "-badname", "badname-", "bad_name"])
def test_c1_invalid_names_are_refused(la: Any, name: str) -> None:
    status, _, message = refused(lambda: la.clusters.begin_create_or_update("rg1", name, cluster_model()))
    assert status == 400
    assert message.startswith("Cluster name is not valid.")


@pytest.mark.parametrize("name", ["clitest-cluster-000002", "abcd", "a" * 63, "A-1-b"])
def test_c1_names_with_inner_hyphens_and_4_to_63_characters_are_created(la: Any, name: str) -> None:
    """Rule C1 as the REST spec has it; a recorded 2025 create used `clitest-cluster-000002`."""
    assert create_cluster(la, name=name).name == name


def test_c2_third_cluster_in_a_region_is_refused_under_seed_limits(emulator: Any, la: Any) -> None:
    emulator.configure(limits="seed")
    create_cluster(la, name="clu1")
    create_cluster(la, name="clu2")
    status, _, message = refused(lambda: la.clusters.begin_create_or_update("rg1", "clu3", cluster_model()))
    assert status == 400 and "A maximum of 2 active clusters can be created in each region" in message
    create_cluster(la, name="clu4", location="westeurope")  # another region is fine


def test_c2_default_limits_count_soft_deleted_clusters(la: Any) -> None:
    """Rule C2 today (the emulator's default profile): 5 active, 7 counting the soft-deleted."""
    for i in range(5):
        create_cluster(la, name=f"clu{i}", capacity=100)
    status, _, message = refused(
        lambda: la.clusters.begin_create_or_update("rg1", "clu5", cluster_model(capacity=100))
    )
    assert status == 400 and "A maximum of 5 active clusters" in message
    la.clusters.begin_delete("rg1", "clu0").result()
    la.clusters.begin_delete("rg1", "clu1").result()
    create_cluster(la, name="clu6", capacity=100)
    create_cluster(la, name="clu7", capacity=100)  # 5 active + 2 soft-deleted = 7
    la.clusters.begin_delete("rg1", "clu7").result()
    status, _, message = refused(
        lambda: la.clusters.begin_create_or_update("rg1", "clu8", cluster_model(capacity=100))
    )
    assert status == 400 and "A maximum of 7 clusters is allowed per subscription and region" in message


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"capacity": 900}, "Capacity in SKU is not in range."),
        ({"capacity": 1050}, "Capacity in SKU is not in range."),
        ({"capacity": None}, "Missing Capacity in SKU."),
        (
            {"sku_name": "PerGB2018", "capacity": 1000},
            "Capacity was provided but SKU is not capacityReservation.",
        ),
        ({"sku_name": "PerGB2018", "capacity": None}, "SKU name is invalid."),
        ({"sku_name": None, "capacity": None}, "No SKU was set."),
    ],
)
def test_c3_sku_and_capacity_rules(emulator: Any, la: Any, kw: dict[str, Any], expected: str) -> None:
    """The 2021 texts of the seed profile (today's tiers are below)."""
    emulator.configure(limits="seed")
    status, _, message = refused(
        lambda: la.clusters.begin_create_or_update("rg1", "clu1", cluster_model(**kw))
    )
    assert status == 400 and message.startswith(expected)


def test_c4_decrease_is_locked_for_31_days_after_the_last_sku_update(emulator: Any, la: Any) -> None:
    """Rule C4 today: a 31-day commitment period (the refusal text still says 30)."""
    create_cluster(la, capacity=1000)
    assert (
        la.clusters.begin_update("rg1", "clu1", sku_patch(2000)).result().sku.capacity == 2000
    )  # increase: ok
    status, _, message = refused(lambda: la.clusters.begin_update("rg1", "clu1", sku_patch(1000)).result())
    assert status == 400 and message.startswith("Capacity is locked for 30 days.")
    emulator.advance(30 * 86400 + 3600)
    assert refused(lambda: la.clusters.begin_update("rg1", "clu1", sku_patch(1000)).result())[0] == 400
    emulator.advance(86400 - 3600)
    assert la.clusters.begin_update("rg1", "clu1", sku_patch(1000)).result().sku.capacity == 1000


def test_c4_seeded_cluster_with_old_sku_update_may_decrease(emulator: Any, la: Any) -> None:
    emulator.seed(
        {
            "clusters": [
                {
                    "subscription": SUB,
                    "resource_group": "rg1",
                    "name": "old",
                    "capacity": 2000,
                    "created": "2026-01-01T00:00:00Z",
                    "last_sku_update": "2026-10-01T00:00:00Z",
                }
            ]
        }
    )
    assert la.clusters.begin_update("rg1", "old", sku_patch(1000)).result().sku.capacity == 1000
    emulator.seed(
        {
            "clusters": [
                {
                    "subscription": SUB,
                    "resource_group": "rg1",
                    "name": "recent",
                    "capacity": 2000,
                    "last_sku_update": "2026-11-20T00:00:00Z",
                }
            ]
        }
    )
    assert refused(lambda: la.clusters.begin_update("rg1", "recent", sku_patch(1000)).result())[0] == 400


def test_c5_identity_is_required_at_creation(la: Any) -> None:
    status, _, message = refused(
        lambda: la.clusters.begin_create_or_update("rg1", "clu1", cluster_model(identity=None))
    )
    assert status == 400 and message.startswith("Identity is null or empty.")


def test_c5_system_assigned_cannot_set_key_at_creation(la: Any) -> None:
    key = {"uri": "https://kv1.vault.azure.net", "name": "k1", "version": "0" * 32}
    status, _, message = refused(
        lambda: la.clusters.begin_create_or_update("rg1", "clu1", cluster_model(key=key))
    )
    assert status == 400
    assert (
        message == "KeyVaultProperties are set on creation. Update KeyVaultProperties after cluster creation."
    )


def test_c6_update_and_delete_while_an_operation_runs_are_refused(emulator: Any, la: Any) -> None:
    emulator.configure(durations={"cluster_create": 3600, "cluster_delete": 60})
    la.clusters.begin_create_or_update("rg1", "clu1", cluster_model())
    status, _, message = refused(lambda: la.clusters.begin_update("rg1", "clu1", sku_patch(2000)).result())
    assert status == 400 and message.startswith("Operation cannot be executed now.")
    status, _, message = refused(lambda: la.clusters.begin_delete("rg1", "clu1").result())
    assert status == 409 and message.startswith("Can't delete a cluster while in provisioning state.")
    emulator.advance(3600)
    la.clusters.begin_delete("rg1", "clu1")
    assert la.clusters.get("rg1", "clu1").provisioning_state == "Deleting"
    status, _, message = refused(lambda: la.clusters.begin_update("rg1", "clu1", sku_patch(2000)).result())
    assert status == 400 and message.startswith("Cluster is in deleting state.")


def test_c3_default_limits_take_commitment_tiers_only(la: Any) -> None:
    """Rule C3 today: 100 is a tier, 1100 (fine in 2021's steps of 100) is not; the answer lists the tiers."""
    assert create_cluster(la, name="clu100", capacity=100).sku.capacity == 100
    status, code, message = refused(
        lambda: la.clusters.begin_create_or_update("rg1", "clu1100", cluster_model(capacity=1100))
    )
    assert (status, code) == (400, "InvalidInput")
    assert "[100,200,300,400,500,1000,2000,5000,10000,25000,50000]" in message


def test_c3_seed_limits_take_steps_of_100_from_1000(emulator: Any, la: Any) -> None:
    emulator.configure(limits="seed")
    assert create_cluster(la, name="clu1100", capacity=1100).sku.capacity == 1100
    status, _, _ = refused(
        lambda: la.clusters.begin_create_or_update("rg1", "clu1", cluster_model(capacity=100))
    )
    assert status == 400


def test_c9_availability_zones_true_in_a_region_without_zones_is_refused(la: Any) -> None:
    status, code, message = refused(
        lambda: la.clusters.begin_create_or_update(
            "rg1", "clu1", cluster_model(location="westus", zones=True)
        )
    )
    assert (status, code) == (400, "InvalidParameter")
    assert message.startswith("westus doesn't support Availability Zones for clusters.")


@pytest.mark.parametrize(
    ("location", "zones", "expected"),
    [
        ("westus", None, False),  # left out: the region decides (no zones there)
        ("eastus", None, True),  # left out: the region has zones
        ("eastus", False, False),  # asked off where zones exist
        ("westeurope", True, True),
    ],
)
def test_c9_availability_zones_follow_the_region_unless_set(
    la: Any, location: str, zones: bool | None, expected: bool
) -> None:
    created = create_cluster(la, location=location, zones=zones)
    assert created.is_availability_zones_enabled is expected
    assert la.clusters.get("rg1", "clu1").is_availability_zones_enabled is expected


def test_c9_double_encryption_region_and_immutability(emulator: Any, la: Any) -> None:
    emulator.configure(no_double_encryption_regions=["westus"])
    status, _, message = refused(
        lambda: la.clusters.begin_create_or_update("rg1", "clu1", cluster_model(location="westus"))
    )
    assert status == 400 and message == "westus doesn't support Double Encryption for clusters."
    created = create_cluster(la, location="westus", double=False)
    assert created.is_double_encryption_enabled is False
    body = cluster_model(location="westus", double=True)
    status, _, _ = refused(lambda: la.clusters.begin_create_or_update("rg1", "clu1", body).result())
    assert status == 400


def test_c11_deleted_cluster_is_404_and_its_name_is_reserved_for_14_days(emulator: Any, la: Any) -> None:
    create_cluster(la)
    la.clusters.begin_delete("rg1", "clu1").result()
    status, _, message = refused(lambda: la.clusters.get("rg1", "clu1"))
    assert status == 404 and message.startswith("Cluster not found")
    status, code, _ = refused(lambda: la.clusters.begin_create_or_update("rg1", "clu1", cluster_model()))
    assert (status, code) == (409, "Conflict")
    emulator.advance(14 * 86400 + 1)
    assert create_cluster(la).provisioning_state == "Succeeded"


def test_c12_identity_none_is_accepted_and_recorded_as_harm(emulator: Any, la: Any) -> None:
    from azure.mgmt.loganalytics.models import ClusterPatch, Identity

    create_cluster(la)
    assert emulator.events() == []
    la.clusters.begin_update("rg1", "clu1", ClusterPatch(identity=Identity(type="None"))).result()
    events = emulator.events()
    assert [(e["kind"], e["rule"]) for e in events] == [("access_revoked", "C12")]
    assert events[0]["resource_id"].endswith("/clusters/clu1")


def test_update_of_unrelated_fields_is_synchronous_and_harmless(emulator: Any, la: Any) -> None:
    from azure.mgmt.loganalytics.models import ClusterPatch

    create_cluster(la)
    updated = la.clusters.begin_update(
        "rg1", "clu1", ClusterPatch(billing_type="Workspaces", tags={"team": "x"})
    ).result()
    assert updated.billing_type == "Workspaces" and updated.tags == {"team": "x"}
    assert emulator.events() == []


def test_list_by_subscription_follows_next_link(emulator: Any, la: Any) -> None:
    emulator.configure(cluster_page_size=2)
    emulator.seed(
        {
            "clusters": [
                {"subscription": SUB, "resource_group": "rg1", "name": f"c{i}", "location": f"region{i}"}
                for i in range(5)
            ]
        }
    )
    assert sorted(c.name for c in la.clusters.list()) == [f"c{i}" for i in range(5)]
    assert sorted(c.name for c in la.clusters.list_by_resource_group("rg1")) == [f"c{i}" for i in range(5)]
    gets = [
        r for r in emulator.requests() if r["method"] == "GET" and r["path"].lower().endswith("/clusters")
    ]
    assert len(gets) == 6  # 3 pages each


def test_missing_resource_group_is_404(emulator: Any, sdk: Any) -> None:
    la = sdk.loganalytics()
    status, code, _ = refused(lambda: la.clusters.begin_create_or_update("nope", "clu1", cluster_model()))
    assert (status, code) == (404, "ResourceGroupNotFound")


def test_billing_type_must_be_cluster_or_workspaces(la: Any) -> None:
    from azure.mgmt.loganalytics.models import ClusterPatch

    create_cluster(la)
    status, _, message = refused(
        lambda: la.clusters.begin_update("rg1", "clu1", ClusterPatch(billing_type="cluster2")).result()
    )
    assert status == 400 and "billingType" in message


def test_c10_a_cluster_cannot_move(emulator: Any, la: Any) -> None:
    cluster = create_cluster(la)
    r = emulator.arm(
        "POST",
        f"/subscriptions/{SUB}/resourceGroups/rg1/moveResources",
        {"resources": [cluster.id], "targetResourceGroup": f"/subscriptions/{SUB}/resourceGroups/rg2"},
        api_version="2021-04-01",
    )
    assert r.status_code == 400 and "cannot be moved" in r.json()["error"]["message"]
    assert la.clusters.get("rg1", "clu1").id == cluster.id
