"""Real git repositories on disk as the controller's source, and the small estate the tests converge.

The estate mirrors tests/execution/estate.py (one vault and key granted to a user-assigned identity,
workspaces law1..law3) so the controller is tested through the same emulator paths as `cmkctl apply`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

SUB = "00000000-0000-0000-0000-000000000001"
RG = "rg-mon"
ARM_RG = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers"
UAI = f"{ARM_RG}/Microsoft.ManagedIdentity/userAssignedIdentities/id-cmk"
UAI_PRINCIPAL = "11111111-2222-4333-8444-555555555555"
CLUSTER = "cmkgitops01"
CLUSTER_PATH = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/clusters/{CLUSTER}"
)


def workspace_id(name: str) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/workspaces/{name}"
    )


def seed(emulator: Any, workspaces: tuple[str, ...] = ("law1", "law2", "law3")) -> None:
    emulator.seed(
        {
            "resource_groups": [{"subscription": SUB, "name": RG, "location": "westeurope"}],
            "identities": [{"id": UAI, "principal_id": UAI_PRINCIPAL}],
            "vaults": [
                {
                    "name": "kvgitops",
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


def spec_docs(
    *,
    workspaces: tuple[str, ...] = ("law1",),
    capacity: int = 1000,
    tags: dict[str, str] | None = None,
    drift: str | None = None,
    suspend: bool = False,
) -> list[dict[str, Any]]:
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
                **({"tags": tags} if tags else {}),
            },
        },
        {
            "apiVersion": "cmk.azure.io/v1",
            "kind": "WorkspaceSet",
            "metadata": {"name": "apps"},
            "spec": {"cluster": CLUSTER, "workspaces": [workspace_id(w) for w in workspaces]},
        },
    ]
    if drift or suspend:
        settings: dict[str, Any] = {}
        if drift:
            settings["drift"] = drift
        if suspend:
            settings["suspend"] = True
        docs.append(
            {
                "apiVersion": "cmk.azure.io/v1",
                "kind": "Settings",
                "metadata": {"name": "settings"},
                "spec": settings,
            }
        )
    return docs


class GitRepo:
    """A real repository (`git init`) whose commits the controller fetches over file://."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "--initial-branch=main")
        self.git("config", "user.email", "tests@example.invalid")
        self.git("config", "user.name", "tests")
        self.git("config", "commit.gpgsign", "false")

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    def commit_spec(self, docs: list[dict[str, Any]] | str, message: str, path: str = "specs") -> str:
        target = self.root / path / "estate.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        text = docs if isinstance(docs, str) else yaml.safe_dump_all(docs, sort_keys=False)
        target.write_text(text, encoding="utf-8")
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD")


MakeReconciler = Callable[..., Any]  # the make_reconciler fixture: (source, **config) -> Reconciler
