"""Key access for a cluster identity, granted the way a platform team does it with the Azure CLI.

`cmkctl emulator grant` uses this to play the step a user otherwise takes out of band: a cluster with
a SystemAssigned identity only gets its principal when it is created, and its key is refused until
that principal has get/wrapKey/unwrapKey on the vault (rule C7). For an access-policy vault this is
`az keyvault set-policy`: find the vault's resource in the subscriptions, then
`PUT .../vaults/{name}/accessPolicies/add` through azure-mgmt-keyvault. A Managed HSM (and an RBAC
vault) takes a data-plane role assignment instead, which the caller makes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from controller.azure.clients import AzureClients
from controller.azure.errors import map_error
from controller.azure.observe import cluster_from_arm, list_raw, vault_from_arm
from controller.model import ids
from controller.model.observed import ObservedCluster

# Rule C7: what a cluster identity needs on its key.
KEY_PERMISSIONS = ("get", "wrapKey", "unwrapKey")


@dataclass(frozen=True)
class VaultResource:
    """A Microsoft.KeyVault/vaults resource as ARM lists it."""

    id: str
    subscription: str
    resource_group: str
    name: str
    tenant_id: str
    rbac: bool


def find_clusters(clients: AzureClients, subscriptions: Iterable[str], name: str) -> list[ObservedCluster]:
    """Every cluster called `name` in the subscriptions (a list call per subscription)."""
    found: list[ObservedCluster] = []
    for sub in sorted(set(subscriptions)):
        la = clients.loganalytics(sub)
        path = f"/subscriptions/{sub}/providers/Microsoft.OperationalInsights/clusters"
        try:
            items = list_raw(la, path, la.clusters.list)
        except Exception as exc:  # mapped: a CmkError naming the operation
            raise map_error(exc, operation=f"list clusters of subscription {sub}") from None
        for data in items:
            cluster = cluster_from_arm(data)
            if cluster.name.lower() == name.lower():
                found.append(cluster)
    return found


def find_vault(clients: AzureClients, subscriptions: Iterable[str], vault_uri: str) -> VaultResource | None:
    """The vault resource whose URI's host is `vault_uri`'s, from the subscriptions' vault lists."""
    host = ids.KeyRef(vault_uri, "x").vault_host.lower()
    for sub in sorted(set(subscriptions)):
        kv = clients.keyvault_mgmt(sub)
        path = f"/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults"
        try:
            items = list_raw(kv, path, kv.vaults.list_by_subscription)
        except Exception as exc:  # mapped: a CmkError naming the operation
            raise map_error(exc, operation=f"list key vaults of subscription {sub}") from None
        for data in items:
            vault = vault_from_arm(data)
            if not vault.uri or ids.KeyRef(vault.uri, "x").vault_host.lower() != host:
                continue
            rid = ids.ResourceId.parse(str(data.get("id") or ""))
            return VaultResource(
                id=str(data["id"]),
                subscription=rid.subscription,
                resource_group=rid.resource_group,
                name=rid.name,
                tenant_id=vault.tenant_id or "",
                rbac=bool(vault.rbac),
            )
    return None


def add_key_access_policy(clients: AzureClients, vault: VaultResource, principal_id: str) -> None:
    """`az keyvault set-policy --object-id P --key-permissions get wrapKey unwrapKey` (rule C7)."""
    kv = clients.keyvault_mgmt(vault.subscription)
    body = {
        "properties": {
            "accessPolicies": [
                {
                    "tenantId": vault.tenant_id,
                    "objectId": principal_id,
                    "permissions": {"keys": list(KEY_PERMISSIONS)},
                }
            ]
        }
    }
    try:
        kv.vaults.update_access_policy(vault.resource_group, vault.name, "add", body)
    except Exception as exc:  # mapped: a CmkError naming the operation
        raise map_error(exc, operation=f"add an access policy to vault {vault.name}") from None
