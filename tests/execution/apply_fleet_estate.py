"""Seed the emulator with what examples/fleet assumes already exists: resource groups, workspaces,
storage accounts, user-assigned identities and the vaults/HSMs with their keys (purge protection on,
rule C7). Clusters and links are what `cmkctl apply` must build."""

from __future__ import annotations

import uuid
from typing import Any

from controller.model import ids
from controller.model.spec import DesiredState, IdentityType

CRYPTO_ROLE = "Key Vault Crypto Service Encryption User"


def _principal(resource_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, resource_id.lower()))


def vault_docs(desired: DesiredState, grants: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """One vault (or HSM) per key host; `grants` adds principals (vault host -> object ids)."""
    vaults: dict[str, dict[str, Any]] = {}
    for cluster in desired.clusters:
        spec = cluster.spec
        if spec.key is None:
            continue
        ref = spec.key.ref()
        doc = vaults.setdefault(
            ref.vault_host,
            {
                "name": ref.vault_name,
                "subscription": spec.subscription,
                "resourceGroup": "rg-keys",
                "location": spec.location,
                "managedHsm": ref.is_managed_hsm,
                "softDelete": True,
                "purgeProtection": True,
                "rbac": ref.is_managed_hsm,
                "accessPolicies": [],
                "roleAssignments": [],
                "keys": [],
            },
        )
        if not any(k["name"] == ref.name for k in doc["keys"]):
            versions = [{"version": uuid.uuid4().hex}]
            if ref.version:
                versions.append({"version": ref.version})
            doc["keys"].append({"name": ref.name, "versions": versions})
        principals = (
            [_principal(spec.identity.user_assigned_identity)] if spec.identity.user_assigned_identity else []
        )
        principals += (grants or {}).get(ref.vault_host, [])
        for oid in principals:
            if ref.is_managed_hsm:
                doc["roleAssignments"].append({"principalId": oid, "role": CRYPTO_ROLE})
            else:
                doc["accessPolicies"].append({"objectId": oid, "keys": ["get", "wrapKey", "unwrapKey"]})
    return list(vaults.values())


def seed_fleet(emulator: Any, desired: DesiredState) -> None:
    links = desired.desired_links()
    estate: dict[str, Any] = {
        "resource_groups": [],
        "identities": [],
        "storage_accounts": [],
        "workspaces": [],
    }
    for cluster in desired.clusters:
        s = cluster.spec
        estate["resource_groups"].append(
            {"subscription": s.subscription, "name": s.resource_group, "location": s.location}
        )
        if s.identity.type is IdentityType.USER_ASSIGNED and s.identity.user_assigned_identity:
            uai = s.identity.user_assigned_identity
            estate["identities"].append({"id": uai, "principal_id": _principal(uai)})
    for key, entry in desired.workspace_entries().items():
        rid = ids.ResourceId.parse(entry.id)
        cluster = links.get(key)
        location = cluster.spec.location if cluster else "westeurope"
        estate["workspaces"].append(
            {
                "subscription": rid.subscription,
                "resource_group": rid.resource_group,
                "name": rid.name,
                "location": location,
            }
        )
        for account in (entry.byos.query, entry.byos.alerts) if entry.byos else ():
            if account:
                estate["storage_accounts"].append({"id": account, "location": location})
    estate["vaults"] = vault_docs(desired)
    emulator.seed(estate)
