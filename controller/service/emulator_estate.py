"""What a spec assumes already exists, as the emulator's seed document (`POST /_emulator/seed`).

A spec names clusters, keys and workspaces; it does not create the resource groups, workspaces,
storage accounts, user-assigned identities or vaults around them. To try a spec against the emulator
(`cmkctl emulator --seed-from-spec`, `make demo`, the tests that apply a fleet from empty) those must
exist first: this builds them, and nothing `cmkctl apply` is there to build (no clusters, no links).

Built from the loaded spec only (controller.loading), written in the emulator's documented estate
format (emulator/README.md): the product shares the wire with the emulator, never its code.
"""

from __future__ import annotations

import uuid
from typing import Any

from controller.model import ids
from controller.model.spec import DesiredState, IdentityType

# Rule C7: the roles whose data actions include keys read, wrap and unwrap, as a cluster needs them.
VAULT_CRYPTO_ROLE = "Key Vault Crypto Service Encryption User"
HSM_CRYPTO_ROLE = "Managed HSM Crypto Service Encryption User"
# Rule C7: the key permissions of an access policy for a cluster identity.
KEY_PERMISSIONS = ("get", "wrapKey", "unwrapKey")
# The vaults' own resource group (a spec names a vault by URI only).
KEY_RESOURCE_GROUP = "rg-keys"


def principal_for(resource_id: str) -> str:
    """A stable object id for a user-assigned identity (the same across runs, so output is stable)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, resource_id.lower()))


def _version(vault_host: str, key: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{vault_host}/{key}").hex


def vault_docs(desired: DesiredState, grants: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """One vault (or HSM) per key host, with soft delete and purge protection (rule C7) and the keys
    the spec names; user-assigned identities get key access, as a platform team grants it up front.
    `grants` adds principals (vault host -> object ids)."""
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
                "resourceGroup": KEY_RESOURCE_GROUP,
                "location": spec.location,
                "managedHsm": ref.is_managed_hsm,
                "softDelete": True,
                "purgeProtection": True,  # rule C7: a CMK vault must be recoverable
                "rbac": ref.is_managed_hsm,
                "accessPolicies": [],
                "roleAssignments": [],
                "keys": [],
            },
        )
        if not any(k["name"] == ref.name for k in doc["keys"]):
            versions = [{"version": _version(ref.vault_host, ref.name)}]
            if ref.version:
                versions.append({"version": ref.version})
            doc["keys"].append({"name": ref.name, "versions": versions})
        principals = (
            [principal_for(spec.identity.user_assigned_identity)]
            if spec.identity.user_assigned_identity
            else []
        )
        principals += (grants or {}).get(ref.vault_host, [])
        for oid in principals:
            if ref.is_managed_hsm:
                doc["roleAssignments"].append({"principalId": oid, "role": HSM_CRYPTO_ROLE})
            else:
                doc["accessPolicies"].append({"objectId": oid, "keys": list(KEY_PERMISSIONS)})
    return list(vaults.values())


def estate_for(desired: DesiredState) -> dict[str, Any]:
    """The seed document for an empty start: everything the spec assumes but clusters and links."""
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
            estate["identities"].append({"id": uai, "principal_id": principal_for(uai)})
    for key, entry in desired.workspace_entries().items():
        rid = ids.ResourceId.parse(entry.id)
        target = links.get(key)
        location = target.spec.location if target else "westeurope"
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
    for vault in estate["vaults"]:  # the vaults' own group, so their ARM resources can be read and updated
        estate["resource_groups"].append(
            {"subscription": vault["subscription"], "name": KEY_RESOURCE_GROUP, "location": vault["location"]}
        )
    unique = {(g["subscription"].lower(), g["name"].lower()): g for g in estate["resource_groups"]}
    estate["resource_groups"] = list(unique.values())
    storage = {a["id"].lower(): a for a in estate["storage_accounts"]}
    estate["storage_accounts"] = list(storage.values())
    return estate
