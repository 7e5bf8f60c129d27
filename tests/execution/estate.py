"""A small estate for apply tests: one vault with a key granted to a user-assigned identity, two
workspaces, and a spec that wants a CMK cluster (key set at creation, rule C5) with both linked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

SUB = "00000000-0000-0000-0000-000000000001"
RG = "rg-mon"
UAI = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity"
    "/userAssignedIdentities/id-cmk"
)
UAI_PRINCIPAL = "11111111-2222-4333-8444-555555555555"
VAULT = "https://kvcmktest.vault.azure.net/"
CLUSTER = "cmktest01"


def workspace_id(name: str) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/workspaces/{name}"
    )


def cluster_id(name: str = CLUSTER) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/clusters/{name}"


def seed_estate(emulator: Any, workspaces: tuple[str, ...] = ("law1", "law2")) -> None:
    emulator.seed(
        {
            "resource_groups": [{"subscription": SUB, "name": RG, "location": "westeurope"}],
            "identities": [{"id": UAI, "principal_id": UAI_PRINCIPAL}],
            "vaults": [
                {
                    "name": "kvcmktest",
                    "subscription": SUB,
                    "resourceGroup": RG,
                    "location": "westeurope",
                    "softDelete": True,
                    "purgeProtection": True,
                    "accessPolicies": [{"objectId": UAI_PRINCIPAL, "keys": ["get", "wrapKey", "unwrapKey"]}],
                    "keys": [{"name": "cmk", "versions": [{"version": "0" * 31 + "1"}]}],
                }
            ],
            "workspaces": [
                {"subscription": SUB, "resource_group": RG, "name": w, "location": "westeurope"}
                for w in workspaces
            ],
        }
    )


def write_spec(
    directory: Path,
    workspaces: tuple[str, ...] = ("law1", "law2"),
    capacity: int = 1000,
    with_key: bool = False,
) -> Path:
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "cmk.azure.io/v1",
            "kind": "Cluster",
            "metadata": {"name": CLUSTER},
            "spec": {
                "subscription": SUB,
                "resourceGroup": RG,
                "location": "westeurope",
                "identity": {"type": "UserAssigned", "userAssignedIdentity": UAI, "keyAccessGranted": True},
                "capacity": capacity,
                **({"key": {"vaultUri": VAULT, "name": "cmk"}} if with_key else {}),
            },
        },
        {
            "apiVersion": "cmk.azure.io/v1",
            "kind": "WorkspaceSet",
            "metadata": {"name": "apps"},
            "spec": {"cluster": CLUSTER, "workspaces": [workspace_id(w) for w in workspaces]},
        },
    ]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


def cmkctl_with_state(env: dict[str, str], state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`cmkctl ARGS --state STATE` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args, "--state", str(state)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
