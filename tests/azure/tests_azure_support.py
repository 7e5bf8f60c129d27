"""Builders shared by the Azure adapter tests: one estate (as the emulator seeds it) and the spec
documents that describe it. Kept small and explicit so each test states what differs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from controller.loading import load
from controller.model.spec import DesiredState

SUB = "00000000-0000-0000-0000-000000000001"  # the emulator fixture's default subscription
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
RG = "rg-mon"
LOCATION = "westeurope"
CLUSTER = "clu01"
CLUSTER_ID = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/clusters/{CLUSTER}"
)
PRINCIPAL = "11111111-2222-4333-8444-555555555555"
VAULT = "kvtest01"
VAULT_URI = f"https://{VAULT}.vault.azure.net/"
KEY_V1 = "a" * 32
KEY_V2 = "b" * 32
STORAGE_ID = f"/subscriptions/{SUB}/resourceGroups/rg-st/providers/Microsoft.Storage/storageAccounts/stq01"


def workspace_id(name: str, rg: str = "rg-apps") -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{name}"
    )


def vault(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": VAULT,
        "subscription": SUB,
        "resourceGroup": "rg-keys",
        "location": LOCATION,
        "tenantId": TENANT,
        "softDelete": True,
        "purgeProtection": True,
        "accessPolicies": [
            {"objectId": PRINCIPAL, "tenantId": TENANT, "keys": ["get", "wrapKey", "unwrapKey"]}
        ],
        "keys": [
            {
                "name": "cmk",
                "versions": [
                    {"version": KEY_V1, "enabled": True, "created": "2026-01-01T00:00:00Z"},
                    {"version": KEY_V2, "enabled": True, "created": "2026-06-01T00:00:00Z"},
                ],
            }
        ],
    }
    doc.update(overrides)
    return doc


def estate(
    *, extra_workspaces: list[str] | None = None, vault_overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """clu01 (SystemAssigned, versionless key, 1000 GB/day) with wks1 linked; wks2 unlinked."""
    workspaces: list[dict[str, Any]] = [
        {
            "subscription": SUB,
            "resource_group": "rg-apps",
            "name": "wks1",
            "location": LOCATION,
            "cluster": CLUSTER_ID,
            "linked_at": "2026-11-20T00:00:00Z",
            "storage": {"query": STORAGE_ID},
            "link_ops": [
                {"time": "2026-11-10T00:00:00Z", "kind": "unlink"},
                {"time": "2026-11-20T00:00:00Z", "kind": "link"},
            ],
        },
        {"subscription": SUB, "resource_group": "rg-apps", "name": "wks2", "location": LOCATION},
    ]
    for name in extra_workspaces or []:
        if name not in ("wks1", "wks2"):
            workspaces.append(
                {"subscription": SUB, "resource_group": "rg-apps", "name": name, "location": LOCATION}
            )
    return {
        "storage_accounts": [
            {"subscription": SUB, "resource_group": "rg-st", "name": "stq01", "location": LOCATION}
        ],
        "vaults": [vault(**(vault_overrides or {}))],
        "clusters": [
            {
                "subscription": SUB,
                "resource_group": RG,
                "name": CLUSTER,
                "location": LOCATION,
                "identity": "SystemAssigned",
                "principal_id": PRINCIPAL,
                "capacity": 1000,
                "created": "2026-01-01T00:00:00Z",
                "last_sku_update": "2026-11-15T00:00:00Z",
                "key": {"keyVaultUri": VAULT_URI, "keyName": "cmk", "keyVersion": ""},
            }
        ],
        "workspaces": workspaces,
    }


def cluster_doc(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subscription": SUB,
        "resourceGroup": RG,
        "location": LOCATION,
        "identity": {"type": "SystemAssigned"},
        "capacity": 1000,
        "key": {"vaultUri": VAULT_URI, "name": "cmk"},
    }
    body.update(spec)
    return {"apiVersion": "cmk.azure.io/v1", "kind": "Cluster", "metadata": {"name": CLUSTER}, "spec": body}


def workspace_set_doc(
    names: list[str], *, cluster: str | None = CLUSTER, byos: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    items: list[Any] = []
    for name in names:
        if byos and name in byos:
            items.append({"id": workspace_id(name), "byos": byos[name]})
        else:
            items.append(workspace_id(name))
    return {
        "apiVersion": "cmk.azure.io/v1",
        "kind": "WorkspaceSet",
        "metadata": {"name": "apps"},
        "spec": {"cluster": cluster, "workspaces": items},
    }


def write_spec(directory: Path, documents: list[dict[str, Any]]) -> DesiredState:
    """Write YAML documents to a spec file and load them like `cmkctl plan -f` does."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return load([path])
