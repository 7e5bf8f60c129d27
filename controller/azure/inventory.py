"""What exists, not what a spec names: every cluster, workspace link and BYOS account in subscriptions.

`observe` reads what a spec touches; `cmkctl export` starts from no spec at all, to adopt an estate that
was built by hand (portal, az, Terraform). Same list calls and the same wire parsing as `observe`
(one subscription-wide list of clusters and of workspaces each), plus one linkedStorageAccounts read
per workspace in scope, since ARM has no subscription-wide list of those.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from controller.azure.clients import AzureClients
from controller.azure.errors import NotFound, map_error
from controller.azure.observe import byos_from_arm, cluster_from_arm, list_raw, workspace_from_arm
from controller.model import ids
from controller.model.observed import ObservedCluster, ObservedWorkspace


@dataclass(frozen=True)
class Inventory:
    """Clusters and workspaces in scope; each workspace's BYOS read (`byos_read`)."""

    clusters: tuple[ObservedCluster, ...]
    workspaces: tuple[ObservedWorkspace, ...]


def _in_group(resource_group: str | None, rg: str) -> bool:
    return resource_group is None or rg.lower() == resource_group.lower()


def read_inventory(
    clients: AzureClients,
    subscriptions: Iterable[str],
    *,
    resource_group: str | None = None,
    max_workers: int = 16,
) -> Inventory:
    """Clusters in scope (the subscriptions, the resource group if given), every workspace linked to one
    of them (wherever it lives in the subscriptions), and in-scope workspaces with BYOS accounts.

    Raises an `AzureError` when a list or a BYOS read fails: an export from a partial view would write
    a spec that plans to unlink or re-link what it did not see.
    """
    subs = sorted({s.lower() for s in subscriptions})
    clusters: dict[str, ObservedCluster] = {}
    workspaces: list[ObservedWorkspace] = []
    for sub in subs:
        la = clients.loganalytics(sub)
        base = f"/subscriptions/{sub}/providers/Microsoft.OperationalInsights"
        try:
            raw_clusters = list_raw(la, f"{base}/clusters", la.clusters.list)
            raw_workspaces = list_raw(la, f"{base}/workspaces", la.workspaces.list)
        except Exception as exc:  # mapped: a CmkError naming the subscription
            raise map_error(exc, operation=f"list clusters and workspaces of subscription {sub}") from None
        for data in raw_clusters:
            cluster = cluster_from_arm(data)
            if _in_group(resource_group, cluster.resource_group):
                clusters[ids.id_key(cluster.id)] = cluster
        workspaces.extend(workspace_from_arm(data) for data in raw_workspaces)
    in_scope = [
        w
        for w in workspaces
        if (w.cluster_id and ids.id_key(w.cluster_id) in clusters)
        or _in_group(resource_group, w.resource_group)
    ]
    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="inventory") as pool:
        read = list(pool.map(lambda w: _with_byos(clients, w), in_scope))
    return Inventory(
        clusters=tuple(sorted(clusters.values(), key=lambda c: ids.id_key(c.id))),
        workspaces=tuple(sorted(read, key=lambda w: ids.id_key(w.id))),
    )


def _with_byos(clients: AzureClients, ws: ObservedWorkspace) -> ObservedWorkspace:
    la = clients.loganalytics(ws.subscription)
    path = f"{ws.id}/linkedStorageAccounts"
    try:
        items = list_raw(
            la, path, lambda: la.linked_storage_accounts.list_by_workspace(ws.resource_group, ws.name)
        )
    except Exception as exc:  # mapped below
        err = map_error(exc, operation=f"BYOS of workspace {ws.name}")
        if isinstance(err, NotFound):  # deleted since the list
            return dataclasses.replace(ws, byos={}, byos_read=True)
        raise err from None
    return dataclasses.replace(ws, byos=byos_from_arm(items), byos_read=True)
