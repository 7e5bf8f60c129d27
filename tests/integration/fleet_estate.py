"""Build the emulator estate that matches a spec exactly (the world after a successful apply), and the
one an empty start needs (vaults, identities, workspaces, storage — but no clusters or links)."""

from __future__ import annotations

import uuid
from typing import Any

from controller.model import ids
from controller.model.spec import DesiredState

CREATED = "2026-01-01T00:00:00Z"


def principal_for(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cmk-test/{name}"))


def estate_for(desired: DesiredState, *, applied: bool) -> dict[str, Any]:
    """`applied`: clusters exist with their keys and links; otherwise only what the user brings."""
    vaults: dict[str, dict[str, Any]] = {}
    identities: list[dict[str, Any]] = []
    clusters: list[dict[str, Any]] = []
    cluster_location: dict[str, str] = {}
    for c in desired.clusters:
        spec = c.spec
        cluster_location[c.metadata.name] = spec.location
        principal = principal_for(c.azure_name)
        ident: dict[str, Any] = {"type": spec.identity.type.value}
        if spec.identity.user_assigned_identity:
            identities.append({"id": spec.identity.user_assigned_identity, "principal_id": principal})
            ident["userAssignedIdentities"] = {spec.identity.user_assigned_identity: {}}
        key = spec.key
        if key is not None:
            ref = key.ref()
            doc = vaults.setdefault(
                ref.vault_name,
                {
                    "name": ref.vault_name,
                    "subscription": spec.subscription,
                    "resourceGroup": "rg-keys",
                    "location": spec.location,
                    "managedHsm": ref.is_managed_hsm,
                    "softDelete": True,
                    "purgeProtection": True,
                    "accessPolicies": [],
                    "roleAssignments": [],
                    "keys": [],
                },
            )
            doc["accessPolicies"].append({"objectId": principal, "keys": ["get", "wrapKey", "unwrapKey"]})
            doc["roleAssignments"].append(
                {"principalId": principal, "role": "Key Vault Crypto Service Encryption User"}
            )
            if not any(k["name"] == ref.name for k in doc["keys"]):
                doc["keys"].append(
                    {
                        "name": ref.name,
                        "versions": [{"version": ref.version or uuid.uuid4().hex, "created": CREATED}],
                    }
                )
        if applied:
            clusters.append(
                {
                    "subscription": spec.subscription,
                    "resource_group": spec.resource_group,
                    "name": c.azure_name,
                    "location": spec.location,
                    "identity": ident,
                    "principal_id": principal,
                    "capacity": spec.capacity,
                    "billing_type": spec.billing_type.value,
                    "double_encryption": spec.double_encryption,
                    "availability_zones": spec.availability_zones,
                    "tags": dict(spec.tags),
                    "created": CREATED,
                    "last_sku_update": CREATED,
                    "key": (
                        {"keyVaultUri": key.vault_uri, "keyName": key.name, "keyVersion": key.version or ""}
                        if key
                        else None
                    ),
                }
            )
    workspaces: list[dict[str, Any]] = []
    storage: dict[str, dict[str, Any]] = {}
    for ws_set in desired.workspace_sets:
        target = desired.cluster_by_name(ws_set.spec.cluster) if ws_set.spec.cluster else None
        location = target.spec.location if target else "westeurope"
        for entry in ws_set.spec.entries():
            rid = ids.ResourceId.parse(entry.id)
            doc: dict[str, Any] = {
                "subscription": rid.subscription,
                "resource_group": rid.resource_group,
                "name": rid.name,
                "location": location,
                "created": CREATED,
            }
            if applied and target is not None:
                doc["cluster"] = target.arm_id
                doc["linked_at"] = CREATED
            if entry.byos is not None:
                linked: dict[str, str] = {}
                for kind, account in (("query", entry.byos.query), ("alerts", entry.byos.alerts)):
                    if account:
                        srid = ids.ResourceId.parse(account)
                        storage[account.lower()] = {
                            "subscription": srid.subscription,
                            "resource_group": srid.resource_group,
                            "name": srid.name,
                            "location": location,
                        }
                        linked[kind] = account
                if applied:
                    doc["storage"] = linked
            workspaces.append(doc)
    groups = {(c.spec.subscription, c.spec.resource_group): c.spec.location for c in desired.clusters}
    return {
        "resource_groups": [
            {"subscription": s, "name": g, "location": loc} for (s, g), loc in groups.items()
        ],
        "identities": identities,
        "vaults": list(vaults.values()),
        "storage_accounts": list(storage.values()),
        "clusters": clusters,
        "workspaces": workspaces,
    }
