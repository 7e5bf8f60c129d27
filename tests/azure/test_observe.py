"""observe() through the emulator: a seeded estate comes back as the ObservedState the planner needs,
with the fewest requests (list-based, not per resource)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests_azure_support import (
    CLUSTER_ID,
    KEY_V1,
    KEY_V2,
    LOCATION,
    PRINCIPAL,
    STORAGE_ID,
    SUB,
    VAULT_URI,
    cluster_doc,
    estate,
    workspace_id,
    workspace_set_doc,
    write_spec,
)

from controller.azure.clients import AzureClients
from controller.azure.errors import AzureError
from controller.azure.observe import observe
from controller.model import ids

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def _spec(tmp_path: Path, **cluster: Any) -> Any:
    return write_spec(
        tmp_path,
        [
            cluster_doc(**cluster),
            workspace_set_doc(
                ["wks1", "wks2"], byos={"wks1": {"query": STORAGE_ID, "allowSavedSearchLoss": True}}
            ),
        ],
    )


def test_observe_reads_a_seeded_estate_as_the_planner_needs_it(
    emulator: Any, clients: AzureClients, tmp_path: Path
) -> None:
    emulator.seed(estate())
    observed, history = observe(_spec(tmp_path), clients, now=NOW)

    cluster = observed.clusters[ids.id_key(CLUSTER_ID)]
    assert cluster.location == "westeurope"
    assert cluster.capacity == 1000
    assert cluster.provisioning_state == "Succeeded"
    assert cluster.principal_id == PRINCIPAL
    assert cluster.key is not None and cluster.key.name == "cmk" and cluster.key.version is None
    assert ids.id_key(workspace_id("wks1")) in cluster.associated_workspaces

    wks1 = observed.workspaces[ids.id_key(workspace_id("wks1"))]
    wks2 = observed.workspaces[ids.id_key(workspace_id("wks2"))]
    assert wks1.cluster_id is not None and ids.id_key(wks1.cluster_id) == ids.id_key(CLUSTER_ID)
    assert wks2.cluster_id is None
    # BYOS read only for the workspace whose spec has a BYOS block (rule B2 needs it)
    assert wks1.byos_read and ids.id_key(wks1.byos["query"]) == ids.id_key(STORAGE_ID)
    assert not wks2.byos_read

    key = observed.keys[ids.KeyRef(VAULT_URI, "cmk").key()]
    assert key.exists and key.readable
    assert [v.version for v in key.versions] == [KEY_V1, KEY_V2]
    assert key.current_version == KEY_V2  # the newest enabled version (what versionless resolves to)
    assert key.recovery_level == "Recoverable"  # soft delete + purge protection (rule C7)

    # W3 history: wks1's link from associateDate, its earlier unlink+link from the Activity Log
    ops = history.link_ops_since(ids.id_key(workspace_id("wks1")), NOW - timedelta(days=30))
    assert {o.source for o in ops} >= {"activityLog"}
    assert len(ops) >= 2


def test_vault_settings_come_from_the_vault_resource(
    emulator: Any, clients: AzureClients, tmp_path: Path
) -> None:
    emulator.seed(estate())
    observed, _ = observe(_spec(tmp_path), clients, now=NOW)
    vault = observed.vaults[ids.KeyRef(VAULT_URI, "cmk").vault_host]
    assert vault.readable
    assert vault.purge_protection is True and vault.soft_delete is True
    assert vault.grants_key_access(PRINCIPAL) is True  # rule C7


def test_an_unreadable_vault_falls_back_to_the_keys_recovery_level(
    emulator: Any, clients: AzureClients, tmp_path: Path
) -> None:
    emulator.seed(estate())
    emulator.fault(
        method="GET",
        path=r".*/providers/Microsoft\.KeyVault/vaults$",
        status=403,
        code="AuthorizationFailed",
        message="The client does not have authorization.",
    )
    observed, _ = observe(_spec(tmp_path), clients, now=NOW)
    vault = observed.vaults[ids.KeyRef(VAULT_URI, "cmk").vault_host]
    assert vault.readable is False
    assert vault.grants_key_access(PRINCIPAL) is None  # can't tell, not "no"
    assert vault.location == "westeurope"  # from Key Vault's x-ms-keyvault-region header (rule C8)
    assert any("recoveryLevel" in w for w in observed.warnings)
    assert observed.keys[ids.KeyRef(VAULT_URI, "cmk").key()].recovery_level == "Recoverable"


def test_observe_of_an_empty_estate_is_empty_not_an_error(
    emulator: Any, clients: AzureClients, tmp_path: Path
) -> None:
    observed, history = observe(_spec(tmp_path), clients, now=NOW)
    assert observed.clusters == {} and observed.workspaces == {}
    key = observed.keys[ids.KeyRef(VAULT_URI, "cmk").key()]
    assert not key.exists  # rule C7: the plan must block on a missing key
    assert history.link_operations == ()


def test_request_count_is_list_based_not_per_resource(
    emulator: Any, clients: AzureClients, tmp_path: Path
) -> None:
    """Many workspaces, one cluster: ARM reads stay constant (clusters, workspaces, Activity Log,
    one BYOS read for the one BYOS workspace, one vault list)."""
    many = [f"wks{i}" for i in range(1, 41)]
    emulator.seed(estate(extra_workspaces=many))
    spec = write_spec(
        tmp_path,
        [
            cluster_doc(),
            workspace_set_doc(many, byos={"wks1": {"query": STORAGE_ID, "allowSavedSearchLoss": True}}),
        ],
    )
    emulator.clear_requests()
    clients.counter.reset()
    observe(spec, clients, now=NOW)

    arm = [r for r in emulator.requests() if r["host"] == "management.azure.com"]
    kinds = Counter(_kind(r["path"]) for r in arm)
    assert kinds == Counter({"clusters": 1, "workspaces": 1, "activity": 1, "byos": 1, "vaults": 1}), arm
    assert clients.counter.arm() == len(arm) == 5
    vault = [r for r in emulator.requests() if r["host"].endswith(".vault.azure.net")]
    # one list of the key's versions (+ the 401 challenge unless the SDK's process-wide cache has it)
    assert [r["path"] for r in vault if r["status"] != 401] == ["/keys/cmk/versions"]
    assert len(vault) <= 2


def _kind(path: str) -> str:
    low = path.lower()
    if low.endswith("/linkedstorageaccounts"):
        return "byos"
    if "eventtypes/management" in low:
        return "activity"
    if low.endswith("microsoft.keyvault/vaults"):
        return "vaults"
    return low.rsplit("/", 1)[-1]


def test_an_unreadable_cluster_list_stops_the_plan_instead_of_planning_from_nothing(
    emulator: Any, clients: AzureClients, tmp_path: Path
) -> None:
    emulator.seed(estate())
    emulator.fault(
        method="GET",
        path=r".*/providers/Microsoft\.OperationalInsights/clusters$",
        status=403,
        code="AuthorizationFailed",
        message="The client does not have authorization.",
    )
    with pytest.raises(AzureError) as caught:
        observe(_spec(tmp_path), clients, now=NOW)
    assert "clusters of subscription" in str(caught.value)
    assert "AuthorizationFailed" in str(caught.value)
    assert SUB in str(caught.value)


def test_an_unreadable_key_is_a_warning_and_marked_unknown_not_missing(
    emulator: Any, clients: AzureClients, tmp_path: Path
) -> None:
    emulator.seed(estate(vault_overrides={"callerDenied": True}))
    observed, _ = observe(_spec(tmp_path), clients, now=NOW)
    key = observed.keys[ids.KeyRef(VAULT_URI, "cmk").key()]
    assert key.readable is False
    assert any("cmk" in w and "403" in w for w in observed.warnings)
    assert observed.clusters  # the rest of the state is still there


def test_cluster_list_pages_are_followed_and_big_workspace_lists_read_once(
    emulator: Any, clients: AzureClients, tmp_path: Path
) -> None:
    """5 clusters over 3 pages (nextLink) and 4000 workspaces in one list: all seen, 3 + 1 requests
    (+ 1 resource group list: the declared cluster does not exist yet, its create needs the group)."""
    emulator.configure(cluster_page_size=2)
    emulator.seed(
        {
            "clusters": [
                {"subscription": SUB, "resource_group": f"rg-{i}", "name": f"cl{i}x", "location": LOCATION}
                for i in range(5)
            ],
            "workspaces": [
                {"subscription": SUB, "resource_group": "rg-many", "name": f"w{i}", "location": LOCATION}
                for i in range(4000)
            ],
        }
    )
    spec = write_spec(tmp_path, [cluster_doc(key=None)])
    emulator.clear_requests()
    observed, _ = observe(spec, clients, now=NOW, activity_log=False)
    assert len(observed.clusters) == 5
    assert len(observed.workspaces) == 4000
    lists = Counter(_kind(r["path"]) for r in emulator.requests())
    assert lists == Counter({"clusters": 3, "workspaces": 1, "resourcegroups": 1})
