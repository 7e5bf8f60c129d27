"""`cmkctl plan` through the emulator finds what apply would hit (a missing resource group, a
user-assigned identity without key access, rule C7) and says how to fix it; `--detailed-exitcode`
exits 3 on anything blocked so CI fails."""

from __future__ import annotations

from typing import Any

from plan_runner import PlanRunner
from tests_azure_support import (
    CLUSTER,
    LOCATION,
    RG,
    SUB,
    TENANT,
    cluster_doc,
    vault,
    workspace_set_doc,
)

UAI = f"/subscriptions/{SUB}/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity"
UAI += "/userAssignedIdentities/id1"
UAI_PRINCIPAL = "99999999-2222-4333-8444-555555555555"
CLUSTER_RG = {"subscription": SUB, "name": RG, "location": LOCATION}
WS1 = {"subscription": SUB, "resource_group": "rg-apps", "name": "wks1", "location": LOCATION}


def _uai_cluster(granted: bool) -> dict[str, Any]:
    return cluster_doc(
        identity={"type": "UserAssigned", "userAssignedIdentity": UAI, "keyAccessGranted": granted}
    )


def test_missing_resource_group_blocks_the_create_and_exits_3(emulator: Any, plan: PlanRunner) -> None:
    emulator.seed({"vaults": [vault()], "workspaces": [WS1]})
    run = plan([cluster_doc(), workspace_set_doc(["wks1"])])
    assert run.exit_code == 3  # blocked: CI must fail, distinct from 2 (changes)
    blocked = run.one("blocked", "create", CLUSTER)
    assert RG in blocked["reason"] and "does not exist" in blocked["reason"]
    assert f"az group create --name {RG}" in blocked["remedy"]
    assert run.items("changes", "create") == []
    assert run.items("changes", "link") == []  # the link waits for a cluster that cannot be created


def test_the_resource_group_list_is_read_once_per_subscription_and_only_for_creates(
    emulator: Any, plan: PlanRunner
) -> None:
    emulator.seed({"resource_groups": [CLUSTER_RG], "vaults": [vault()]})
    emulator.clear_requests()
    run = plan([cluster_doc()])
    assert run.exit_code == 2 and run.items("blocked") == []
    lists = [r for r in emulator.requests() if r["path"].lower().rstrip("/").endswith("/resourcegroups")]
    assert len(lists) == 1


def test_user_assigned_identity_without_key_access_is_blocked_with_the_az_command(
    emulator: Any, plan: PlanRunner
) -> None:
    """Rule C7: the vault's access policies do not name the identity's principal, whatever
    keyAccessGranted claims: the key step is blocked and the remedy is the command to run."""
    emulator.seed(
        {
            "resource_groups": [CLUSTER_RG],
            "vaults": [vault()],  # policies grant another principal only
            "identities": [{"id": UAI, "principal_id": UAI_PRINCIPAL}],
        }
    )
    run = plan([_uai_cluster(granted=True)])
    assert run.exit_code == 3
    blocked = run.one("blocked", "set_key", CLUSTER)
    assert blocked["rule"] == "C7"
    assert UAI_PRINCIPAL in blocked["reason"] and "kvtest01" in blocked["reason"]
    assert (
        f"az keyvault set-policy --name kvtest01 --object-id {UAI_PRINCIPAL} "
        "--key-permissions get wrapKey unwrapKey"
    ) in blocked["remedy"]
    create = run.one("changes", "create", CLUSTER)
    assert create["parameters"]["key"] is None  # the key is not sent where Azure would refuse it


def test_user_assigned_identity_with_access_is_not_blocked(emulator: Any, plan: PlanRunner) -> None:
    granted = {"objectId": UAI_PRINCIPAL, "tenantId": TENANT, "keys": ["get", "wrapKey", "unwrapKey"]}
    emulator.seed(
        {
            "resource_groups": [CLUSTER_RG],
            "vaults": [vault(accessPolicies=[granted])],
            "identities": [{"id": UAI, "principal_id": UAI_PRINCIPAL}],
        }
    )
    run = plan([_uai_cluster(granted=False)])
    assert run.exit_code == 2 and run.items("blocked") == []
    key_step = run.one("changes", "set_key", CLUSTER)
    assert any("keyAccessGranted" in w for w in key_step["warnings"])


def test_text_plan_shows_the_blocked_remedy(emulator: Any, plan: PlanRunner) -> None:
    emulator.seed(
        {
            "resource_groups": [CLUSTER_RG],
            "vaults": [vault()],
            "identities": [{"id": UAI, "principal_id": UAI_PRINCIPAL}],
        }
    )
    run = plan([_uai_cluster(granted=True)], fmt="text")
    assert run.exit_code == 3
    assert "Blocked" in run.stdout
    assert f"--object-id {UAI_PRINCIPAL}" in run.stdout
