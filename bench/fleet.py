"""Fleet generator: a spec tree and the matching emulator estates (empty start / fully applied).

Fleet F is `Shape()`: 10 subscriptions x 2 regions x 2 clusters = 40 clusters, 40,000
workspaces (1000 per cluster, the W1 maximum), 400 BYOS links, one key vault per subscription and
region (rule C8: vault, cluster and workspaces share a region). Clusters use a user-assigned identity
already granted in their vault, so the key is set at creation (rule C5) and an apply from empty
converges in one pass: create -> link (rule W4) is the whole dependency chain.

The same generator makes the small smoke fleet the tests use (`Shape(subscriptions=1, ...)`).
Deterministic: the same shape gives the same names, ids and principals.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGIONS = ("eastus", "westeurope")
CREATED = "2026-01-01T00:00:00Z"
CRYPTO_ROLE = "Key Vault Crypto Service Encryption User"


@dataclass(frozen=True)
class Shape:
    """How big the fleet is. The defaults are fleet F."""

    subscriptions: int = 10
    regions: int = 2
    clusters_per_region: int = 2
    workspaces: int = 40_000
    byos_links: int = 400

    @property
    def clusters(self) -> int:
        return self.subscriptions * self.regions * self.clusters_per_region

    def label(self) -> str:
        return (
            f"{self.subscriptions} subscriptions x {self.regions} regions x {self.clusters_per_region} "
            f"clusters, {self.workspaces} workspaces, {self.byos_links} BYOS links"
        )


@dataclass
class Cluster:
    address: str
    name: str
    subscription: str
    resource_group: str
    location: str
    vault: str
    key_name: str
    key_version: str
    identity_id: str
    principal: str

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.OperationalInsights/clusters/{self.name}"
        )


@dataclass
class Workspace:
    subscription: str
    resource_group: str
    name: str
    location: str
    cluster: Cluster
    byos: dict[str, str]  # "query"/"alerts" -> storage account id

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.OperationalInsights/workspaces/{self.name}"
        )


@dataclass
class Fleet:
    shape: Shape
    subscriptions: list[str]
    clusters: list[Cluster]
    workspaces: list[Workspace]

    @property
    def byos_workspaces(self) -> int:
        return sum(1 for w in self.workspaces if w.byos)

    @property
    def byos_links(self) -> int:
        return sum(len(w.byos) for w in self.workspaces)


def _sub(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cmkctl-bench/subscription/{i}"))


def _principal(resource_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, resource_id.lower()))


def generate(shape: Shape) -> Fleet:
    """The fleet as data. Workspaces are spread evenly over clusters; BYOS links alternate between
    `alerts` and `query` (with the B2 opt-in), one link per BYOS workspace, spread over clusters."""
    subs = [_sub(i) for i in range(shape.subscriptions)]
    clusters: list[Cluster] = []
    for si, sub in enumerate(subs):
        for region in REGIONS[: shape.regions]:
            short = "eus" if region == "eastus" else "weu"
            for k in range(shape.clusters_per_region):
                name = f"cmkbench{si:02d}{short}{k}"
                uai = (
                    f"/subscriptions/{sub}/resourceGroups/rg-identity-{short}/providers/"
                    f"Microsoft.ManagedIdentity/userAssignedIdentities/uai-{name}"
                )
                clusters.append(
                    Cluster(
                        address=f"c{si:02d}-{short}-{k}",
                        name=name,
                        subscription=sub,
                        resource_group=f"rg-monitoring-{short}",
                        location=region,
                        vault=f"kvbench{si:02d}{short}",
                        key_name="cmk-logs",
                        key_version=uuid.uuid5(uuid.NAMESPACE_URL, f"{sub}/{region}/key").hex,
                        identity_id=uai,
                        principal=_principal(uai),
                    )
                )
    workspaces: list[Workspace] = []
    per_cluster, extra = divmod(shape.workspaces, len(clusters))
    byos_every = max(1, shape.workspaces // shape.byos_links) if shape.byos_links else 0
    n = 0
    for ci, c in enumerate(clusters):
        for j in range(per_cluster + (1 if ci < extra else 0)):
            short = "eus" if c.location == "eastus" else "weu"
            rg = f"rg-law-{short}-{j % 10}"
            ws = Workspace(c.subscription, rg, f"law{ci:02d}x{j:04d}", c.location, c, {})
            if byos_every and n % byos_every == 0 and n // byos_every < shape.byos_links:
                kind = "alerts" if (n // byos_every) % 2 == 0 else "query"
                ws.byos[kind] = (
                    f"/subscriptions/{c.subscription}/resourceGroups/rg-storage-{short}/providers/"
                    f"Microsoft.Storage/storageAccounts/stbench{kind[0]}{ci:02d}"
                )
            workspaces.append(ws)
            n += 1
    return Fleet(shape, subs, clusters, workspaces)


# -- the spec tree -------------------------------------------------------------------------------


def write_spec(fleet: Fleet, root: Path) -> Path:
    """One file per cluster (its Cluster and its WorkspaceSet, as teams split them) + settings."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.yaml").write_text(
        "apiVersion: cmk.azure.io/v1\nkind: Settings\nmetadata:\n  name: bench\n"
        "spec:\n  limitsProfile: current\n  drift: report\n",
        encoding="utf-8",
    )
    by_cluster: dict[str, list[Workspace]] = {}
    for w in fleet.workspaces:
        by_cluster.setdefault(w.cluster.address, []).append(w)
    for c in fleet.clusters:
        lines = [
            "apiVersion: cmk.azure.io/v1",
            "kind: Cluster",
            "metadata:",
            f"  name: {c.address}",
            "spec:",
            f"  name: {c.name}",
            f"  subscription: {c.subscription}",
            f"  resourceGroup: {c.resource_group}",
            f"  location: {c.location}",
            "  identity:",
            "    type: UserAssigned",
            f"    userAssignedIdentity: {c.identity_id}",
            "    keyAccessGranted: true",
            "  capacity: 1000",
            "  key:",
            f"    vaultUri: https://{c.vault}.vault.azure.net/",
            f"    name: {c.key_name}",
            f"    version: {c.key_version}",
            "---",
            "apiVersion: cmk.azure.io/v1",
            "kind: WorkspaceSet",
            "metadata:",
            f"  name: ws-{c.address}",
            "spec:",
            f"  cluster: {c.address}",
            "  workspaces:",
        ]
        for w in by_cluster.get(c.address, []):
            if not w.byos:
                lines.append(f"    - {w.arm_id}")
                continue
            lines.append(f"    - id: {w.arm_id}")
            lines.append("      byos:")
            for kind, account in sorted(w.byos.items()):
                lines.append(f"        {kind}: {account}")
            if "query" in w.byos:
                lines.append("        allowSavedSearchLoss: true")  # rule B2 opt-in
        (root / f"{c.address}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


# -- the emulator estates ------------------------------------------------------------------------


def estate(fleet: Fleet, *, applied: bool) -> dict[str, Any]:
    """What exists before the product runs. `applied=False`: vaults with keys and grants, identities,
    storage accounts and unlinked workspaces (apply must build clusters and links). `applied=True`:
    also the clusters with their keys, every link and every BYOS link (a no-op plan)."""
    vaults: dict[str, dict[str, Any]] = {}
    groups: dict[tuple[str, str], str] = {}
    for c in fleet.clusters:
        groups[(c.subscription, c.resource_group)] = c.location
        v = vaults.setdefault(
            c.vault,
            {
                "name": c.vault,
                "subscription": c.subscription,
                "resourceGroup": "rg-keys",
                "location": c.location,
                "softDelete": True,
                "purgeProtection": True,  # rule C7
                "accessPolicies": [],
                "keys": [
                    {"name": c.key_name, "versions": [{"version": c.key_version, "created": CREATED}]}
                ],
            },
        )
        v["accessPolicies"].append({"objectId": c.principal, "keys": ["get", "wrapKey", "unwrapKey"]})
    storage: dict[str, dict[str, Any]] = {}
    workspaces: list[dict[str, Any]] = []
    for w in fleet.workspaces:
        doc: dict[str, Any] = {
            "subscription": w.subscription,
            "resource_group": w.resource_group,
            "name": w.name,
            "location": w.location,
            "created": CREATED,
        }
        for account in w.byos.values():
            parts = account.split("/")
            storage[account.lower()] = {
                "subscription": parts[2],
                "resource_group": parts[4],
                "name": parts[-1],
                "location": w.location,
            }
        if applied:
            doc["cluster"] = w.cluster.arm_id
            doc["linked_at"] = CREATED
            if w.byos:
                doc["storage"] = dict(w.byos)
        workspaces.append(doc)
    clusters: list[dict[str, Any]] = []
    if applied:
        for c in fleet.clusters:
            clusters.append(
                {
                    "subscription": c.subscription,
                    "resource_group": c.resource_group,
                    "name": c.name,
                    "location": c.location,
                    "identity": {"type": "UserAssigned", "userAssignedIdentities": {c.identity_id: {}}},
                    "capacity": 1000,
                    "created": CREATED,
                    "last_sku_update": CREATED,
                    "key": {"keyVaultUri": f"https://{c.vault}.vault.azure.net/", "keyName": c.key_name,
                            "keyVersion": c.key_version},
                }
            )
    return {
        "resource_groups": [
            {"subscription": s, "name": g, "location": loc} for (s, g), loc in groups.items()
        ],
        "identities": [{"id": c.identity_id, "principal_id": c.principal} for c in fleet.clusters],
        "vaults": list(vaults.values()),
        "storage_accounts": list(storage.values()),
        "clusters": clusters,
        "workspaces": workspaces,
    }
