"""Azure Resource Manager for management.azure.com: resource groups, Log Analytics clusters,
workspaces, linked services, linked storage accounts, operation statuses, the Activity Log, and
Microsoft.KeyVault/vaults (delegated to the vault registry). Shapes and texts follow
docs/azure-wire.md; every docs/rules.md rule is enforced here with the seed's message."""

from __future__ import annotations

import json
import re
import urllib.parse
import uuid
from datetime import datetime, timedelta
from typing import Any

from emulator.clock import iso7, parse_time, rfc1123
from emulator.http import Request, Response, arm_error
from emulator.regions import has_zones
from emulator.state import Cluster, Emulator, Operation, Workspace, norm_loc

# The 2025 `api-supported-versions` header, today's 2025-07-01, and the previews the recordings use.
API_VERSIONS = (
    "2020-03-01-preview",
    "2020-08-01",
    "2020-10-01",
    "2021-06-01",
    "2021-12-01-preview",
    "2022-10-01",
    "2023-09-01",
    "2025-02-01",
    "2025-04-01",
    "2025-07-01",
)
# api-version 2020-03-01-preview answers an older resource shape (docs/azure-wire.md, recorded 2020):
# clusters with `lastSkuUpdate` under `sku`, `clusterType`, the vault as `https://host:443`, a PATCH
# wrapped in {"message", "status", "cluster"}; workspaces without dates or `sku.lastSkuUpdate`.
PREVIEW_2020 = "2020-03-01-preview"
OPSTATUS_VERSIONS = (*API_VERSIONS, "2015-11-01-preview")
ACTIVITY_VERSIONS = ("2015-04-01",)
OPSTATUS_API = "2015-11-01-preview"  # real AAO URLs use it whatever the request's version (facts §6)

CLUSTER_TYPE = "Microsoft.OperationalInsights/clusters"
WORKSPACE_TYPE = "Microsoft.OperationalInsights/workspaces"
LS_TYPE = "Microsoft.OperationalInsights/workspaces/linkedServices"
LSA_TYPE = "Microsoft.OperationalInsights/workspaces/linkedStorageAccounts"
DATA_SOURCE_TYPES = {
    "customlogs": "CustomLogs",
    "azurewatson": "AzureWatson",
    "query": "Query",
    "alerts": "Alerts",
    "ingestion": "Ingestion",
}
# rule C1: the REST spec's pattern, 4-63 characters, hyphens not at either end (Azure created
# `clitest-cluster-000002` in 2022 and 2025, recorded)
CLUSTER_NAME = re.compile(r"^(?=.{4,63}$)[A-Za-z0-9][A-Za-z0-9-]+[A-Za-z0-9]$")
WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$")

# Seed texts (docs/rules.md error catalogue / seed "Error messages").
MSG_NAME = (
    "Cluster name is not valid. Cluster name can contain characters a-z, A-Z, 0-9 and '-' (not at the "
    "start or end) and length of 4-63."
)
MSG_BODY = "The body of the request is null or in bad format."
MSG_SKU_NAME = "SKU name is invalid. Set SKU name to capacityReservation."
MSG_SKU_CAP_NOT_CR = (
    "Capacity was provided but SKU is not capacityReservation. Set SKU name to capacityReservation."
)
MSG_SKU_NO_CAP = "Missing Capacity in SKU. Set Capacity value to 1000 or higher in steps of 100 (GB)."
MSG_SKU_RANGE = (
    "Capacity in SKU is not in range. Should be minimum 1000 and up to the max allowed capacity which is "
    "available under 'Usage and estimated cost' in your workspace."
)
MSG_SKU_LOCKED = "Capacity is locked for 30 days. Decreasing capacity is permitted 30 days after update."
MSG_NO_SKU = (
    "No SKU was set. Set the SKU name to capacityReservation and Capacity value to 1000 or higher in steps "
    "of 100 (GB)."
)
MSG_NO_IDENTITY = "Identity is null or empty. Set Identity with systemAssigned type."
MSG_KVP_ON_CREATE = (
    "KeyVaultProperties are set on creation. Update KeyVaultProperties after cluster creation."
)
MSG_ASYNC_CREATE = (
    "Operation cannot be executed now. Async operation is in a state other than succeeded. Cluster must "
    "complete its operation before any update operation is performed."
)
MSG_ASYNC = "Operation cannot be executed now. Wait for the Async operation to complete and try again."
MSG_DELETING = (
    "Cluster is in deleting state. Async operation is in progress . Cluster must complete its operation "
    "before any update operation is performed."
)
MSG_KVP_FORMAT = "KeyVaultProperties is not empty but has a bad format."
MSG_CLUSTER_404 = (
    "Cluster not found, the cluster might have been deleted. If you try to create a cluster with that name "
    "and get a conflict, the cluster is in deletion process."
)
MSG_DELETE_PROVISIONING = (
    "Can't delete a cluster while in provisioning state. "
    "Wait for the Async operation to complete and try again."
)
MSG_WS_404 = "Workspace not found. The workspace you specified doesn't exist or was deleted."
MSG_LINK_IN_PROCESS = "Workspace link or unlink operation in process."
MSG_LINK_CLUSTER_404 = "Cluster not found, the cluster you specified doesn't exist or was deleted."
MSG_READ_ONLY_ASSOCIATED = (
    "'properties.associatedWorkspaces' is a read only property and cannot be set. Please refer to "
    "https://docs.microsoft.com/en-us/azure/azure-monitor/log-query/logs-dedicated-clusters"
    "#link-a-workspace-to-the-cluster for more information on how to associate a workspace to the cluster."
)


class _Route:
    """Path segments with their lower-case twins (ARM routes case-insensitively, facts §1.1)."""

    def __init__(self, path: str) -> None:
        self.raw = [s for s in path.split("/") if s]
        self.low = [s.lower() for s in self.raw]


def handle(em: Emulator, req: Request) -> Response:
    auth = req.headers.get("authorization", "")
    if not auth.lower().startswith("bearer ") or len(auth) <= 7:
        return arm_error(
            401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
        )
    r = _Route(req.path)
    low = r.low
    if len(low) < 2 or low[0] != "subscriptions":
        return _no_route(req)
    sub = r.raw[1]
    try:
        uuid.UUID(sub)
    except ValueError:
        return arm_error(
            400,
            "InvalidSubscriptionId",
            f"The provided subscription identifier '{sub}' is malformed or invalid.",
        )
    with em.lock:
        em.tick()
        # /subscriptions/{s}/providers/...
        if len(low) >= 4 and low[2] == "providers":
            ns = low[3]
            rest = low[4:]
            if ns == "microsoft.operationalinsights":
                if rest == ["clusters"] and req.method == "GET":
                    return _versioned(req, API_VERSIONS) or _list_clusters(em, req, sub, None)
                if rest == ["workspaces"] and req.method == "GET":
                    return _versioned(req, API_VERSIONS) or _list_workspaces(em, sub, None)
                if (
                    len(rest) == 4
                    and rest[0] == "locations"
                    and rest[2] == "operationstatuses"
                    and req.method == "GET"
                ):
                    return _versioned(req, OPSTATUS_VERSIONS) or _op_status(em, r.raw[7])
            if (
                ns == "microsoft.insights"
                and rest == ["eventtypes", "management", "values"]
                and req.method == "GET"
            ):
                return _versioned(req, ACTIVITY_VERSIONS) or _activity(em, req, sub)
            if ns == "microsoft.keyvault" and rest == ["vaults"]:
                return em.vaults.handle_arm(req, sub, "", None)  # vaults.list_by_subscription
            return _no_route(req)
        if len(low) == 4 and low[2] == "operationresults" and req.method == "GET":
            return Response(200)  # a resource group deletion (the only such operation) is done at once
        if low[2:] == ["resources"] and req.method == "GET":
            return _generic_resources(em, req, sub)
        if len(low) >= 4 and low[2] == "resourcegroups":
            rg = r.raw[3]
            if len(low) == 4:
                return _resource_group(em, req, sub, rg)
            if (
                len(low) == 5
                and low[4] in ("moveresources", "validatemoveresources")
                and req.method == "POST"
            ):
                return _move(em, req, sub, rg)
            if len(low) >= 6 and low[4] == "providers":
                ns = low[5]
                rest_raw = r.raw[6:]
                rest = low[6:]
                if ns == "microsoft.keyvault" and rest and rest[0] == "vaults":
                    if not _rg_exists(em, sub, rg) and req.method == "PUT":
                        return _rg_404(rg)
                    return em.vaults.handle_arm(req, sub, rg, rest_raw[1] if len(rest_raw) > 1 else None)
                if ns == "microsoft.operationalinsights":
                    return _operational_insights(em, req, sub, rg, rest_raw, rest)
        return _no_route(req)


def _generic_resources(em: Emulator, req: Request, sub: str) -> Response:
    """`GET /subscriptions/{s}/resources?$filter=resourceType eq '...'` (azure-mgmt-keyvault's
    vaults.list() uses it with api-version 2015-11-01): the generic resource shape."""
    flt = req.q("$filter") or ""
    m = re.fullmatch(r"\s*resourceType\s+eq\s+'([^']+)'\s*", flt, flags=re.IGNORECASE)
    if not m:
        return arm_error(
            400, "InvalidFilterInQueryString", f"Invalid $filter '{flt}' specified in the query string."
        )
    rtype = m.group(1).lower()
    items: list[dict[str, Any]] = []
    if rtype == "microsoft.keyvault/vaults":
        vreq = Request(req.method, req.host, req.path, {"api-version": "2026-05-15"}, req.headers, req.body)
        listed = em.vaults.handle_arm(vreq, sub, "", None)
        for v in (listed.body or {}).get("value", []) if isinstance(listed.body, dict) else []:
            items.append({k: v[k] for k in ("id", "name", "type", "location", "tags") if k in v})
    elif rtype == CLUSTER_TYPE.lower():
        for c in em.clusters.values():
            if c.subscription.lower() == sub.lower():
                items.append(
                    {
                        "id": c.arm_id,
                        "name": c.name,
                        "type": CLUSTER_TYPE,
                        "location": c.location,
                        "tags": dict(c.tags),
                    }
                )
    elif rtype == WORKSPACE_TYPE.lower():
        for w in em.workspaces.values():
            if w.subscription.lower() == sub.lower():
                items.append(
                    {
                        "id": w.arm_id,
                        "name": w.name,
                        "type": WORKSPACE_TYPE,
                        "location": w.location,
                        "tags": dict(w.tags),
                    }
                )
    return Response(200, {"value": items})


def _move(em: Emulator, req: Request, sub: str, rg: str) -> Response:
    """Rule C10: a cluster cannot move to another resource group or subscription. Moves of other
    resources are not emulated (refused with a message that says so, never silently accepted)."""
    body = _json(req)
    resources = body.get("resources") if isinstance(body, dict) else None
    if not isinstance(resources, list) or not resources:
        return arm_error(400, "InvalidRequestContent", "The request content must list 'resources' to move.")
    for rid in resources:
        if "/providers/microsoft.operationalinsights/clusters/" in str(rid).lower():
            return arm_error(
                400,
                "ResourceMoveNotSupported",
                f"Resource '{rid}' of type '{CLUSTER_TYPE}' cannot be moved: cluster move to another "
                "resource group or subscription isn't supported.",
            )
    return arm_error(400, "ResourceMoveNotSupported", "The emulator does not implement resource moves.")


def _no_route(req: Request) -> Response:
    return arm_error(
        404, "InvalidResourceType", f"The resource type could not be found for path '{req.path}'."
    )


def _versioned(req: Request, allowed: tuple[str, ...]) -> Response | None:
    """None when the api-version is acceptable, else ARM's 400 (facts §1.1)."""
    v = req.q("api-version")
    if not v:
        return arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if v not in allowed:
        return arm_error(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{v}' is invalid. The supported versions are '{','.join(allowed)}'.",
        )
    return None


# ---- resource groups -------------------------------------------------------------------------------
def _rg_key(sub: str, rg: str) -> str:
    return f"{sub}/{rg}".lower()


def _rg_exists(em: Emulator, sub: str, rg: str) -> bool:
    return _rg_key(sub, rg) in em.resource_groups


def _rg_404(rg: str) -> Response:
    return arm_error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")


def _rg_body(sub: str, g: dict[str, Any], api: str | None) -> dict[str, Any]:
    """Recorded: `type` is absent in api-versions 2016-09-01 and 2019-07-01, present from 2021-04-01;
    `tags` only when the group has tags."""
    body: dict[str, Any] = {
        "id": f"/subscriptions/{sub}/resourceGroups/{g['name']}",
        "name": g["name"],
        "type": "Microsoft.Resources/resourceGroups",
        "location": g["location"],
    }
    if (api or "") < "2021-04-01":
        del body["type"]
    if g.get("tags"):
        body["tags"] = dict(g["tags"])
    body["properties"] = {"provisioningState": "Succeeded"}
    return body


def _resource_group(em: Emulator, req: Request, sub: str, rg: str) -> Response:
    if not req.q("api-version"):
        return _versioned(req, API_VERSIONS) or Response(400)
    key = _rg_key(sub, rg)
    if req.method == "PUT":
        body = _json(req)
        if not isinstance(body, dict) or not body.get("location"):
            return arm_error(
                400, "LocationRequired", "The location property is required for this definition."
            )
        existed = key in em.resource_groups
        g = em.resource_groups.setdefault(key, {"name": rg, "location": norm_loc(str(body["location"]))})
        if isinstance(body.get("tags"), dict):
            g["tags"] = {str(k): str(v) for k, v in body["tags"].items()}
        return Response(200 if existed else 201, _rg_body(sub, g, req.q("api-version")))
    g2 = em.resource_groups.get(key)
    if req.method in ("GET", "HEAD"):
        if g2 is None:
            return _rg_404(rg)
        return Response(
            200 if req.method == "GET" else 204,
            _rg_body(sub, g2, req.q("api-version")) if req.method == "GET" else None,
        )
    if req.method == "DELETE":
        if g2 is None:
            return _rg_404(rg)
        for c in [c for c in em.clusters.values() if _rg_key(c.subscription, c.resource_group) == key]:
            del em.clusters[c.key_id]
        for w in [w for w in em.workspaces.values() if _rg_key(w.subscription, w.resource_group) == key]:
            del em.workspaces[w.key_id]
        em.list_cache.clear()
        del em.resource_groups[key]
        # Recorded: 202 + Location to the subscription's operationresults (done at once here).
        token = uuid.uuid4().hex
        api = req.q("api-version")
        location = f"https://{em.cloud.arm_host}/subscriptions/{sub}/operationresults/{token}?api-version={api}"
        return Response(202, None, {"Location": location})
    return _no_route(req)


def _json(req: Request) -> Any:
    try:
        return req.json()
    except (ValueError, UnicodeDecodeError):
        return None


def _op_headers(em: Emulator, req: Request, op: Operation, result_path: str | None = None) -> dict[str, str]:
    base = f"https://{em.cloud.arm_host}"
    h = {
        "Azure-AsyncOperation": (
            f"{base}/subscriptions/{op.subscription}/providers/Microsoft.OperationalInsights/locations/"
            f"{op.location}/operationStatuses/{op.id}?api-version={OPSTATUS_API}"
        )
    }
    if result_path is not None:
        h["Location"] = f"{base}{result_path}/operationresults/{op.id}?api-version={req.q('api-version')}"
    return h


def _op_status(em: Emulator, op_id: str) -> Response:
    op = em.operations.get(op_id) or next(
        (o for o in em.operations.values() if o.id.lower() == op_id.lower()), None
    )
    if op is None:
        return arm_error(404, "NotFound", f"Operation '{op_id}' was not found.")
    body: dict[str, Any] = {
        "id": f"/subscriptions/{op.subscription}/providers/Microsoft.OperationalInsights/locations/"
        f"{op.location}/operationStatuses/{op.id}",
        "name": op.id,
        "status": "InProgress",
        "startTime": iso7(op.start),
    }
    if op.done:
        body["status"] = "Failed" if op.failed else "Succeeded"
        body["endTime"] = iso7(op.end)
        if op.failed and op.error:
            body["error"] = dict(op.error)
        if op.kind == "cluster_delete":
            body["properties"] = {}
    return Response(200, body)


# ---- OperationalInsights dispatch ------------------------------------------------------------------
def _operational_insights(
    em: Emulator, req: Request, sub: str, rg: str, raw: list[str], low: list[str]
) -> Response:
    if not low:
        return _no_route(req)
    bad = _versioned(req, API_VERSIONS)
    if bad is not None:
        return bad
    kind = low[0]
    if kind == "clusters":
        if len(low) == 1 and req.method == "GET":
            return _rg_404(rg) if not _rg_exists(em, sub, rg) else _list_clusters(em, req, sub, rg)
        if len(low) == 2:
            return _cluster(em, req, sub, rg, raw[1])
        if len(low) == 4 and low[2] == "operationresults" and req.method == "GET":
            return _op_result(em, raw[3])
    if kind == "workspaces":
        if len(low) == 1 and req.method == "GET":
            return _rg_404(rg) if not _rg_exists(em, sub, rg) else _list_workspaces(em, sub, rg)
        if len(low) == 2:
            return _workspace(em, req, sub, rg, raw[1])
        ws_key = f"{sub}/{rg}/{raw[1]}".lower()
        if len(low) >= 3 and low[2] == "linkedservices":
            if len(low) == 3 and req.method == "GET":
                return _list_linked_services(em, ws_key, rg, raw[1])
            if len(low) == 4:
                return _linked_service(em, req, sub, rg, raw[1], raw[3])
            if len(low) == 6 and low[4] == "operationresults" and req.method == "GET":
                return _op_result(em, raw[5])
        if len(low) >= 3 and low[2] == "linkedstorageaccounts":
            if len(low) == 3 and req.method == "GET":
                return _list_linked_storage(em, ws_key, rg, raw[1])
            if len(low) == 4:
                return _linked_storage(em, req, sub, rg, raw[1], raw[3])
    return _no_route(req)


def _op_result(em: Emulator, op_id: str) -> Response:
    op = em.operations.get(op_id)
    if op is None:
        return arm_error(404, "NotFound", f"Operation '{op_id}' was not found.")
    if not op.done:
        return Response(202, None, {"Retry-After": "0"})
    if op.failed:
        return arm_error(400, (op.error or {}).get("code", "Failed"), (op.error or {}).get("message"))
    return Response(204)


# ---- clusters --------------------------------------------------------------------------------------
def _linked_index(em: Emulator) -> dict[str, list[Workspace]]:
    """Workspaces by lower-case cluster id, in one pass (a cluster page must not scan the estate
    once per cluster)."""
    index: dict[str, list[Workspace]] = {}
    for w in em.workspaces.values():
        if w.cluster is not None:
            index.setdefault(w.cluster.lower(), []).append(w)
    return index


def _cluster_body(
    em: Emulator, c: Cluster, index: dict[str, list[Workspace]] | None = None
) -> dict[str, Any]:
    if index is None:
        index = _linked_index(em)
    props: dict[str, Any] = {
        "provisioningState": c.provisioning_state(),
        "clusterId": c.cluster_id,
        "billingType": c.billing_type,
        "lastModifiedDate": rfc1123(c.last_modified),
        "createdDate": rfc1123(c.created),
        "isDoubleEncryptionEnabled": c.double_encryption,
        "isAvailabilityZonesEnabled": c.availability_zones,
        "capacityReservationProperties": {
            "lastSkuUpdate": rfc1123(c.last_sku_update),
            "minCapacity": em.limits.capacity_min,
        },
        "associatedWorkspaces": [
            {
                "workspaceId": w.customer_id,
                "workspaceName": w.name,
                "resourceId": w.arm_id.lower(),
                "associateDate": rfc1123(w.linked_at or c.created),
            }
            for w in index.get(c.arm_id.lower(), [])
        ],
    }
    if c.key is not None:
        props["keyVaultProperties"] = dict(c.key)
    elif c.key_removed:
        props["keyVaultProperties"] = {}  # after a key removal (docs/azure-wire.md, 2021 real)
    identity: dict[str, Any] = {"type": c.identity_type}
    if c.identity_type.lower() != "none":
        if "systemassigned" in c.identity_type.lower():
            identity["principalId"] = c.principal_id
            identity["tenantId"] = c.tenant_id
        if c.user_identities:
            identity["userAssignedIdentities"] = {k: dict(v) for k, v in c.user_identities.items()}
    return {
        "identity": identity,
        "sku": {"name": c.sku_name, "capacity": c.capacity},
        "properties": props,
        "id": c.arm_id,
        "name": c.name,
        "type": CLUSTER_TYPE,
        "location": c.location,
        "tags": dict(c.tags),
    }


def _vault_with_port(uri: Any) -> Any:
    """`https://x.vault.azure.net/` as api-version 2020-03-01-preview echoes it: port 443, no slash."""
    if not isinstance(uri, str) or not uri:
        return uri
    parts = urllib.parse.urlsplit(uri)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port or 443}" if host else uri


def _cluster_shape(
    em: Emulator, c: Cluster, api: str | None, index: dict[str, list[Workspace]] | None = None
) -> dict[str, Any]:
    """The cluster as the request's api-version shows it (today's shape unless 2020-03-01-preview)."""
    body = _cluster_body(em, c, index)
    if api != PREVIEW_2020:
        return body
    props = body["properties"]
    old: dict[str, Any] = {}
    if "keyVaultProperties" in props:
        kvp = props["keyVaultProperties"]
        old["keyVaultProperties"] = {
            "keyVaultUri": _vault_with_port(kvp.get("keyVaultUri")),
            "keyName": kvp.get("keyName"),
            "keyVersion": kvp.get("keyVersion"),
        }
    old["provisioningState"] = props["provisioningState"]
    old["clusterId"] = props["clusterId"]
    old["clusterType"] = "LogAnalytics"
    body["properties"] = old
    body["sku"] = {
        "name": c.sku_name.lower(),
        "capacity": c.capacity,
        "lastSkuUpdate": rfc1123(c.last_sku_update),
    }
    return body


def _list_clusters(em: Emulator, req: Request, sub: str, rg: str | None) -> Response:
    items = [
        c
        for c in em.clusters.values()
        if c.subscription.lower() == sub.lower() and (rg is None or c.resource_group.lower() == rg.lower())
    ]
    items.sort(key=lambda c: c.key_id)
    skip = 0
    token = req.q("$skiptoken")
    if token and token.isdigit():
        skip = int(token)
    page = items[skip : skip + em.cluster_page_size]
    index = _linked_index(em)
    api = req.q("api-version")
    body: dict[str, Any] = {"value": [_cluster_shape(em, c, api, index) for c in page]}
    if skip + em.cluster_page_size < len(items):
        scope = f"/subscriptions/{sub}" + (f"/resourceGroups/{rg}" if rg else "")
        body["nextLink"] = (
            f"https://{em.cloud.arm_host}{scope}/providers/Microsoft.OperationalInsights/clusters"
            f"?api-version={req.q('api-version')}&$skiptoken={skip + em.cluster_page_size}"
        )
    return Response(200, body)


def _cluster(em: Emulator, req: Request, sub: str, rg: str, name: str) -> Response:
    key = f"{sub}/{rg}/{name}".lower()
    c = em.clusters.get(key)
    if req.method == "GET":
        if c is None:
            return _cluster_404(em, sub, rg, name)  # rule C11: soft-deleted = 404
        return Response(200, _cluster_shape(em, c, req.q("api-version")))
    if req.method == "PUT":
        if not _rg_exists(em, sub, rg):
            return _rg_404(rg)
        if c is None:
            return _create_cluster(em, req, sub, rg, name)
        if c.failed and c.running_op() is None:
            return _reprovision_cluster(em, req, c)
        return _update_cluster(em, req, c, put=True)
    if req.method == "PATCH":
        if c is None:
            return _cluster_404(em, sub, rg, name)
        return _update_cluster(em, req, c, put=False)
    if req.method == "DELETE":
        if c is None:
            return Response(204)
        return _delete_cluster(em, req, c)
    return _no_route(req)


def _cluster_404(em: Emulator, sub: str, rg: str, name: str) -> Response:
    """A cluster in its 14-day deletion period (rule C11) gets the service's own text; a name never
    used gets ARM's generic 404 (the same gateway answer as for a missing workspace)."""
    key = f"{sub}/{rg}/{name}".lower()
    if any(d.key_id == key for d in em.soft_deleted):
        return arm_error(404, "ResourceNotFound", MSG_CLUSTER_404)
    return arm_error(
        404,
        "ResourceNotFound",
        f"The Resource '{CLUSTER_TYPE}/{name}' under resource group '{rg}' was not found. For more "
        "details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def _check_sku(em: Emulator, sku: Any) -> Response | None:
    """Rule C3 with the seed's four distinct messages."""
    if not isinstance(sku, dict) or not sku:
        return arm_error(400, "BadRequest", MSG_NO_SKU)
    sku_name = str(sku.get("name") or "")
    cap = sku.get("capacity")
    if sku_name.lower() != "capacityreservation":
        if cap is not None:
            return arm_error(400, "BadRequest", MSG_SKU_CAP_NOT_CR)
        return arm_error(400, "BadRequest", MSG_SKU_NAME)
    if cap is None:
        return arm_error(400, "BadRequest", MSG_SKU_NO_CAP)
    if isinstance(cap, bool) or not isinstance(cap, int) or not em.limits.capacity_ok(cap):
        if em.limits.capacity_tiers is not None:
            # today's refusal of a capacity outside the commitment tiers (real text, target sku.capacity)
            tiers = ",".join(str(t) for t in em.limits.capacity_tiers)
            msg = f"CapacityReservationLevel must be an allowed value: [{tiers}]. Operation Id: '{_op_id()}'"
            return arm_error(400, "InvalidInput", msg, target="sku.capacity")
        return arm_error(400, "BadRequest", MSG_SKU_RANGE)
    return None


def _op_id() -> str:
    """The 32-hex "Operation Id" Log Analytics quotes in its refusals."""
    return uuid.uuid4().hex


def _kvp_format_ok(kvp: Any) -> bool:
    if not isinstance(kvp, dict):
        return False
    uri = kvp.get("keyVaultUri")
    name = kvp.get("keyName")
    version = kvp.get("keyVersion", "")
    if not isinstance(uri, str) or not re.match(r"^https://[A-Za-z0-9.-]+(:\d+)?/?$", uri):
        return False
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9-]{1,127}$", name):
        return False
    return version is None or (isinstance(version, str) and re.match(r"^[A-Za-z0-9]*$", version) is not None)


_KVP_FIELDS = ("keyVaultUri", "keyName", "keyVersion")


def _kvp_empty(kvp: Any) -> bool:
    """No key in the request: absent, null, `{}`, or only null/empty fields. An update ignores it."""
    return kvp is None or (isinstance(kvp, dict) and not any(kvp.get(k) for k in _KVP_FIELDS))


def _kvp_removal(kvp: Any) -> bool:
    """Rule C13: the key is removed only by all three fields sent as empty strings; `{}` is ignored."""
    return isinstance(kvp, dict) and all(kvp.get(k, None) == "" for k in _KVP_FIELDS)


def _resolve_identity(em: Emulator, ident: dict[str, Any]) -> tuple[str, dict[str, dict[str, str]]]:
    itype = str(ident.get("type") or "")
    uais: dict[str, dict[str, str]] = {}
    raw = ident.get("userAssignedIdentities") or {}
    if isinstance(raw, dict):
        for rid, value in raw.items():
            if value is None:
                continue  # `{"<id>": null}` removes that identity (ARM PATCH semantics)
            known = em.identities.get(rid.lower())
            if known is None:
                derived = uuid.uuid5(uuid.NAMESPACE_URL, rid.lower())
                known = {
                    "principalId": str(derived),
                    "clientId": str(uuid.uuid5(uuid.NAMESPACE_DNS, rid.lower())),
                }
            uais[rid] = {"principalId": known["principalId"], "clientId": known["clientId"]}
    canonical = {
        "systemassigned": "SystemAssigned",
        "userassigned": "UserAssigned",
        "none": "None",
        "systemassigned,userassigned": "SystemAssigned,UserAssigned",
    }.get(itype.replace(" ", "").lower(), itype)
    return canonical, uais


def _key_check(em: Emulator, c: Cluster, kvp: Any, principal: str | None) -> Response | None:
    """Rules C7/C8 via the vault registry."""
    res = em.vaults.check_cluster_key(
        key_vault_uri=str(kvp.get("keyVaultUri")),
        key_name=str(kvp.get("keyName")),
        key_version=str(kvp.get("keyVersion") or ""),
        principal_id=principal or "",
        tenant_id=c.tenant_id,
        cluster_location=norm_loc(c.location),
    )
    return res if isinstance(res, Response) else None


def _clean_kvp(kvp: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "keyVaultUri": kvp.get("keyVaultUri"),
        "keyName": kvp.get("keyName"),
        "keyVersion": kvp.get("keyVersion") or "",
    }
    if "keyRsaSize" in kvp:
        out["keyRsaSize"] = kvp["keyRsaSize"]
    return out


def _create_cluster(em: Emulator, req: Request, sub: str, rg: str, name: str) -> Response:
    if not CLUSTER_NAME.match(name):
        return arm_error(400, "BadRequest", MSG_NAME)  # rule C1
    body = _json(req)
    if not isinstance(body, dict) or not body.get("location"):
        return arm_error(400, "BadRequest", MSG_BODY)
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        return arm_error(400, "BadRequest", MSG_BODY)
    if props.get("associatedWorkspaces"):
        return arm_error(
            400,
            "InvalidParameter",
            MSG_READ_ONLY_ASSOCIATED,
        )
    location = str(body["location"])
    region = norm_loc(location)
    now = em.now()
    bad_billing = _bad_billing(props)
    if bad_billing:
        return bad_billing
    # rule C11: a soft-deleted name stays reserved for 14 days
    for d in em.soft_deleted:
        if d.key_id == f"{sub}/{rg}/{name}".lower():
            return arm_error(
                409,
                "Conflict",
                f"Cluster '{name}' was deleted on {rfc1123(d.deleted_at or now)} and is still in deletion "
                "process. A cluster's name remains reserved two weeks after deletion, and can't be used "
                "for creating a new cluster.",
            )
    bad = _check_sku(em, body.get("sku"))
    if bad:
        return bad
    ident = body.get("identity")
    if not isinstance(ident, dict) or str(ident.get("type") or "").lower() in ("", "none"):
        return arm_error(400, "BadRequest", MSG_NO_IDENTITY)  # rule C5
    itype, uais = _resolve_identity(em, ident)
    if "userassigned" in itype.lower() and not uais:
        return arm_error(400, "BadRequest", MSG_NO_IDENTITY)
    double = props.get("isDoubleEncryptionEnabled", True)
    if double is not False and region in em.no_double_encryption_regions:  # rule C9
        return arm_error(
            400, "BadRequest", f"{location} doesn't support Double Encryption for clusters."
        )
    zones = props.get("isAvailabilityZonesEnabled")
    if zones is True and not has_zones(region):  # rule C9: zones only where the region has them
        return arm_error(
            400,
            "InvalidParameter",
            f"{location} doesn't support Availability Zones for clusters. Remove "
            "'isAvailabilityZonesEnabled' or set it to false.",
            target="properties.isAvailabilityZonesEnabled",
        )
    # rule C2 (per limits profile)
    active = [
        c
        for c in em.clusters.values()
        if c.subscription.lower() == sub.lower() and norm_loc(c.location) == region
    ]
    if len(active) >= em.limits.clusters_per_region:
        return arm_error(
            400,
            "BadRequest",
            f"A maximum of {em.limits.clusters_per_region} active clusters can be created in each region "
            f"and subscription. Subscription '{sub}' has {len(active)} active clusters in '{region}'.",
        )
    if em.limits.reserved_per_region is not None:
        reserved = len(active) + sum(
            1
            for d in em.soft_deleted
            if d.subscription.lower() == sub.lower() and norm_loc(d.location) == region
        )
        if reserved >= em.limits.reserved_per_region:
            return arm_error(
                400,
                "BadRequest",
                f"A maximum of {em.limits.reserved_per_region} clusters is allowed per subscription and "
                f"region, active plus deleted in the past two weeks. Subscription '{sub}' has {reserved} "
                f"in '{region}'.",
            )
    c = Cluster(
        subscription=sub,
        resource_group=_rg_name(em, sub, rg),
        name=name,
        location=location,
        tags=dict(body.get("tags") or {}),
        identity_type=itype,
        principal_id=str(uuid.uuid4()) if "systemassigned" in itype.lower() else None,
        tenant_id=em.tenant_id,
        user_identities=uais,
        capacity=int(body["sku"]["capacity"]),
        sku_name="CapacityReservation",
        billing_type=str(props.get("billingType") or "Cluster"),  # validated above
        double_encryption=double is not False,
        # rule C9: left out, the region decides
        availability_zones=has_zones(region) if zones is None else zones is not False,
        key=None,
        cluster_id=str(uuid.uuid4()),
        created=now,
        last_modified=now,
        last_sku_update=now,
    )
    kvp = props.get("keyVaultProperties")
    if not _kvp_empty(kvp):
        if itype == "SystemAssigned":
            return arm_error(400, "BadRequest", MSG_KVP_ON_CREATE)  # rule C5
        if not _kvp_format_ok(kvp):
            return arm_error(400, "BadRequest", MSG_KVP_FORMAT)
        bad = _key_check(em, c, kvp, c.effective_principal())  # rules C5/C7/C8 (UserAssigned may set key)
        if bad:
            return bad
        c.key = _clean_kvp(kvp)
    em.clusters[c.key_id] = c
    op = em.new_operation("cluster_create", sub, location, c.key_id)
    _apply_faults_to_op(em, req, op)
    c.op = op
    em.list_cache.clear()
    # Real 2025 create: 202, empty body, Azure-AsyncOperation + Location (facts §2.5).
    return Response(202, None, _op_headers(em, req, op, c.arm_id))


def _rg_name(em: Emulator, sub: str, rg: str) -> str:
    g = em.resource_groups.get(_rg_key(sub, rg))
    return g["name"] if g else rg


def _bad_billing(props: dict[str, Any]) -> Response | None:
    value = props.get("billingType")
    if value is None or str(value) in ("Cluster", "Workspaces"):
        return None
    return arm_error(
        400, "InvalidParameter", f"'{value}' is not a valid billingType. Allowed values: Cluster, Workspaces."
    )


def _busy(c: Cluster) -> Response | None:
    """Rule C6: no update or delete while an async operation runs."""
    op = c.running_op()
    if op is None:
        return None
    if op.kind == "cluster_delete":
        return arm_error(400, "BadRequest", MSG_DELETING)
    if op.kind == "cluster_create":
        return arm_error(400, "BadRequest", MSG_ASYNC_CREATE)
    return arm_error(400, "BadRequest", MSG_ASYNC)


def _reprovision_cluster(em: Emulator, req: Request, c: Cluster) -> Response:
    """A PUT on a cluster whose provisioning Failed re-drives provisioning, as ARM PUTs do.

    The body must still be a valid cluster (sku rule C3); fields fixed at creation keep their values.
    Like a create it answers 202 + Azure-AsyncOperation and the cluster shows `Creating` until done.
    """
    body = _json(req)
    if not isinstance(body, dict):
        return arm_error(400, "BadRequest", MSG_BODY)
    bad = _check_sku(em, body.get("sku"))
    if bad:
        return bad
    c.capacity = int(body["sku"]["capacity"])
    if isinstance(body.get("tags"), dict):
        c.tags = {str(k): str(v) for k, v in body["tags"].items()}
    c.failed = False
    op = em.new_operation("cluster_create", c.subscription, norm_loc(c.location), c.key_id)
    _apply_faults_to_op(em, req, op)
    c.op = op
    em.list_cache.clear()
    return Response(202, None, _op_headers(em, req, op, c.arm_id))


def _update_cluster(em: Emulator, req: Request, c: Cluster, *, put: bool) -> Response:
    body = _json(req)
    if not isinstance(body, dict):
        return arm_error(400, "BadRequest", MSG_BODY)
    busy = _busy(c)
    if busy:
        return busy
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        return arm_error(400, "BadRequest", MSG_BODY)
    if put and props.get("associatedWorkspaces"):
        return arm_error(
            400,
            "InvalidParameter",
            MSG_READ_ONLY_ASSOCIATED,
        )
    if put and body.get("location") and norm_loc(str(body["location"])) != norm_loc(c.location):
        return arm_error(
            400,
            "InvalidResourceLocation",
            f"The resource '{c.name}' already exists in location '{norm_loc(c.location)}' in resource group "
            f"'{c.resource_group}'. A resource with the same name cannot be created in location "
            f"'{norm_loc(str(body['location']))}'. Please select a new resource name.",
        )
    bad_billing = _bad_billing(props)
    if bad_billing:
        return bad_billing
    if (
        "isAvailabilityZonesEnabled" in props
        and bool(props["isAvailabilityZonesEnabled"]) != c.availability_zones
    ):
        return arm_error(
            400,
            "InvalidParameter",
            "'isAvailabilityZonesEnabled' can only be set when the cluster is created.",
        )
    if (
        "isDoubleEncryptionEnabled" in props
        and bool(props["isDoubleEncryptionEnabled"]) != c.double_encryption
    ):
        return arm_error(
            400,
            "InvalidParameter",  # rule C9
            "'isDoubleEncryptionEnabled' can only be set when the cluster is created.",
        )
    now = em.now()
    new_cap: int | None = None
    if "sku" in body and body["sku"] is not None:
        bad = _check_sku(em, body["sku"])
        if bad:
            return bad
        new_cap = int(body["sku"]["capacity"])
        lock = timedelta(days=em.limits.capacity_lock_days)
        if new_cap < c.capacity and now < c.last_sku_update + lock:  # rule C4
            return arm_error(400, "BadRequest", MSG_SKU_LOCKED)
    elif put:
        return arm_error(400, "BadRequest", MSG_NO_SKU)
    ident = body.get("identity")
    kvp = props.get("keyVaultProperties")
    removal = _kvp_removal(kvp) and c.key is not None  # rule C13
    key_change = removal or (
        not _kvp_empty(kvp) and (c.key is None or _clean_kvp(kvp) != _clean_kvp(c.key))
    )
    ident_change = False
    new_itype, new_uais = c.identity_type, c.user_identities
    if isinstance(ident, dict):
        new_itype, added = _resolve_identity(em, ident)
        raw_uai = ident.get("userAssignedIdentities")
        removed = {k.lower() for k, v in raw_uai.items() if v is None} if isinstance(raw_uai, dict) else set()
        new_uais = {k: v for k, v in c.user_identities.items() if k.lower() not in removed}
        new_uais.update(added)
        if "userassigned" not in new_itype.lower():
            new_uais = {}  # ARM: the type decides; SystemAssigned (or None) drops user-assigned identities
        elif new_itype == "UserAssigned" and not new_uais:
            new_itype = "None"  # rule C12: user-assigned identities set to None = access revoked
        ident_change = new_itype.lower() != c.identity_type.lower() or {k.lower() for k in new_uais} != {
            k.lower() for k in c.user_identities
        }
    if ident_change and key_change:
        return arm_error(
            400,
            "InvalidParameter",
            "Identity and key can't be updated in the same operation. "
            "Update the identity first, then the key.",
        )
    if kvp is not None and not _kvp_empty(kvp) and not _kvp_format_ok(kvp):
        return arm_error(400, "BadRequest", MSG_KVP_FORMAT)
    if key_change and not removal:
        bad = _key_check(em, c, kvp, c.effective_principal())  # rules C7/C8
        if bad:
            return bad
    # ---- accepted: apply synchronous parts
    if ident_change:
        if new_itype.lower() == "none":
            # rule C12: accepted, irreversible; the service loses access to the key
            c.identity_type = "None"
            c.principal_id = None
            c.user_identities = {}
            if not c.access_removed:
                c.access_removed = True
                c.revoked = True
                em.harm(
                    "access_revoked",
                    "C12",
                    c.arm_id,
                    "Identity set to None: the cluster lost access to its key irreversibly; storage is "
                    "unavailable and ingestion is dropped until a support request restores it.",
                )
        else:
            if "systemassigned" in new_itype.lower() and c.principal_id is None:
                c.principal_id = str(uuid.uuid4())
            c.identity_type = new_itype
            c.user_identities = new_uais
    if new_cap is not None and new_cap != c.capacity:
        c.capacity = new_cap
        c.last_sku_update = now
    if "tags" in body and isinstance(body["tags"], dict):
        c.tags = {str(k): str(v) for k, v in body["tags"].items()}
    if props.get("billingType"):
        c.billing_type = str(props["billingType"])
    c.last_modified = now
    em.list_cache.clear()
    if key_change:
        # rule C6: a key update (or removal, C13) is asynchronous: 202, empty body, Azure-AsyncOperation
        # + Location, like a create (docs/azure-wire.md); while Updating a GET shows the old key.
        new_key = None if removal else _clean_kvp(kvp)
        op = em.new_operation("cluster_update", c.subscription, c.location, c.key_id, key=new_key)
        _apply_faults_to_op(em, req, op)
        c.op = op
        if req.q("api-version") == PREVIEW_2020:
            return _updated(em, req, c, _op_headers(em, req, op))  # recorded 2020: 200 + the wrapper + AAO
        return Response(202, None, _op_headers(em, req, op, c.arm_id))
    return _updated(em, req, c, {})


def _updated(em: Emulator, req: Request, c: Cluster, headers: dict[str, str]) -> Response:
    """The answer to an accepted cluster update; api-version 2020-03-01-preview wraps a PATCH's cluster
    in `{"message": "The cluster upsert was successful", "status": 0, "cluster": {...}}` (recorded)."""
    api = req.q("api-version")
    body = _cluster_shape(em, c, api)
    if api == PREVIEW_2020 and req.method == "PATCH":
        wrapped = {"message": "The cluster upsert was successful", "status": 0, "cluster": body}
        return Response(200, wrapped, headers)
    return Response(200, body, headers)


def _delete_cluster(em: Emulator, req: Request, c: Cluster) -> Response:
    op = c.running_op()
    if op is not None and op.kind == "cluster_create":
        return arm_error(409, "Conflict", MSG_DELETE_PROVISIONING)  # rule C6
    if op is not None and op.kind == "cluster_delete":
        return Response(202, None, _op_headers(em, req, op, c.arm_id))
    busy = _busy(c)
    if busy:
        return busy
    op = em.new_operation("cluster_delete", c.subscription, c.location, c.key_id)
    _apply_faults_to_op(em, req, op)
    _start_logged(req, op)
    em.record_cluster_delete(c, op, client_request_id=_client_request_id(req))
    c.op = op
    em.list_cache.clear()
    return Response(202, None, _op_headers(em, req, op, c.arm_id))


def _apply_faults_to_op(em: Emulator, req: Request, op: Operation) -> None:
    """`fail_operation` / `stick_operation` faults shape the async operation a request starts."""
    for f in list(em.faults):
        if not f.shapes_operation or not f.fires(req.method, req.path, em.rng):
            continue
        if f.fail_operation:
            op.fail = True
            if f.message_given:  # the test chose Azure's words for the failure (e.g. a C7 text)
                op.error = {"code": f.code, "message": f.message}
        if f.stick_operation:
            op.end = op.end + timedelta(seconds=f.stick_operation)


# ---- workspaces ------------------------------------------------------------------------------------
def _ws_body(em: Emulator, w: Workspace, api: str | None = None) -> dict[str, Any]:
    """A workspace as Azure answers it: the id all lower-case while `name` keeps its casing, `tags`
    only when they were set, and the api-version's own fields (recorded 2020-2023)."""
    now = em.now()
    state = "Creating" if now < w.ready_at else "Succeeded"
    features: dict[str, Any] = {
        "legacy": 0,
        "searchVersion": 1,
        "enableLogAccessUsingOnlyResourcePermissions": True,
    }
    sku: dict[str, Any] = {
        "name": w.sku.lower() if w.cluster is None else "LACluster",
        "lastSkuUpdate": rfc1123(w.created),
    }
    if w.cluster is not None:
        features["clusterResourceId"] = w.cluster
    if api == "2020-08-01":
        sku["maxCapacityReservationLevel"] = 3000
    reset = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)  # the daily cap's next reset
    props: dict[str, Any] = {
        "source": "Azure",
        "customerId": w.customer_id,
        "provisioningState": state,
        "sku": sku,
        "retentionInDays": w.retention,
        "features": features,
        "workspaceCapping": {
            "dailyQuotaGb": -1.0,
            "quotaNextResetTime": rfc1123(reset),
            "dataIngestionStatus": "RespectQuota",
        },
        "publicNetworkAccessForIngestion": "Enabled",
        "publicNetworkAccessForQuery": "Enabled",
        "createdDate": rfc1123(w.created),
        "modifiedDate": rfc1123(w.modified),
    }
    if api == PREVIEW_2020:
        del props["createdDate"], props["modifiedDate"], sku["lastSkuUpdate"]
    body: dict[str, Any] = {
        "properties": props,
        "id": w.arm_id.lower(),
        "name": w.name,
        "type": WORKSPACE_TYPE,
        "location": w.location,
    }
    if w.tags_set:
        body["tags"] = dict(w.tags)
    return body


def _ws_bytes(em: Emulator, w: Workspace) -> bytes:
    """Pre-serialised body (40,000-workspace lists must stay fast)."""
    if w.cache is None or em.now() < w.ready_at:
        w.cache = json.dumps(_ws_body(em, w), separators=(",", ":")).encode()
    return w.cache


def _list_workspaces(em: Emulator, sub: str, rg: str | None) -> Response:
    """One page, no nextLink, as Azure answers workspace lists (docs/azure-wire.md)."""
    ck = f"ws|{sub}|{rg}".lower()
    cached = em.list_cache.get(ck)
    if cached is None:
        subl, rgl = sub.lower(), rg.lower() if rg else None
        parts = [
            _ws_bytes(em, w)
            for w in em.workspaces.values()
            if w.subscription.lower() == subl and (rgl is None or w.resource_group.lower() == rgl)
        ]
        cached = b'{"value":[' + b",".join(parts) + b"]}"
        if all(em.now() >= w.ready_at for w in em.workspaces.values()):
            em.list_cache[ck] = cached
    return Response(200, cached, {"Content-Type": "application/json; charset=utf-8"})


def _invalidate(em: Emulator, w: Workspace) -> None:
    w.cache = None
    em.list_cache.clear()


def _workspace(em: Emulator, req: Request, sub: str, rg: str, name: str) -> Response:
    key = f"{sub}/{rg}/{name}".lower()
    w = em.workspaces.get(key)
    if req.method == "GET":
        if w is None:
            return _ws_404(rg, name)
        return Response(200, _ws_body(em, w, req.q("api-version")))
    if req.method == "PUT":
        if not _rg_exists(em, sub, rg):
            return _rg_404(rg)
        body = _json(req)
        if not isinstance(body, dict) or not body.get("location"):
            return arm_error(400, "InvalidParameter", MSG_BODY)
        props = body.get("properties") or {}
        feats = props.get("features") or {}
        sku_name = str((props.get("sku") or {}).get("name") or "PerGB2018")
        now = em.now()
        if w is None:
            if not WORKSPACE_NAME.match(name):
                return arm_error(400, "InvalidParameter", f"Workspace name '{name}' is not valid.")
            if isinstance(feats, dict) and feats.get("clusterResourceId"):
                return arm_error(
                    400,
                    "InvalidParameter",
                    "'features.clusterResourceId' is a read only property and cannot be set.",
                )
            w = Workspace(
                subscription=sub,
                resource_group=_rg_name(em, sub, rg),
                name=name,
                location=norm_loc(str(body["location"])),
                tags=dict(body.get("tags") or {}),
                tags_set="tags" in body,
                sku=sku_name,
                retention=int(props.get("retentionInDays") or 30),
                customer_id=str(uuid.uuid4()),
                created=now,
                modified=now,
                ready_at=now + timedelta(seconds=em.durations.get("workspace_create", 0.0)),
            )
            em.workspaces[key] = w
            em.list_cache.clear()
            # real: 201 Creating, no async header; the python SDK's recording adds a Location to itself
            location = f"https://{em.cloud.arm_host}{req.path}?api-version={req.q('api-version')}"
            return Response(201, _ws_body(em, w, req.q("api-version")), {"Location": location})
        return _update_workspace(em, w, body, now, req.q("api-version"))
    if req.method == "PATCH":  # plain call, not an LRO (facts §1.4)
        if w is None:
            return _ws_404(rg, name)
        body = _json(req)
        if not isinstance(body, dict):
            return arm_error(400, "InvalidParameter", MSG_BODY)
        return _update_workspace(em, w, body, em.now(), req.q("api-version"))
    if req.method == "DELETE":
        if w is None:
            return Response(204)
        del em.workspaces[key]
        em.list_cache.clear()
        return Response(200)  # real: 200 empty (facts §3.1)
    return _no_route(req)


def _update_workspace(
    em: Emulator, w: Workspace, body: dict[str, Any], now: datetime, api: str | None = None
) -> Response:
    """PUT on an existing workspace and PATCH: the link is not the user's to set here (it is a
    linkedServices/cluster mirror), and a linked workspace keeps its LACluster SKU."""
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        return arm_error(400, "InvalidParameter", MSG_BODY)
    feats = props.get("features") or {}
    wanted = feats.get("clusterResourceId") if isinstance(feats, dict) else None
    if wanted and (w.cluster is None or str(wanted).lower() != w.cluster.lower()):
        return arm_error(
            400, "InvalidParameter", "'features.clusterResourceId' is a read only property and cannot be set."
        )
    sku_name = str((props.get("sku") or {}).get("name") or "")
    if sku_name and sku_name.lower() != "lacluster":
        if w.cluster is not None:
            return arm_error(
                400, "BadRequest", "sku.name can not be changed while workspace is linked to cluster"
            )
        w.sku = sku_name
    if "tags" in body and isinstance(body["tags"], dict):
        w.tags = {str(k): str(v) for k, v in body["tags"].items()}
        w.tags_set = True
    if props.get("retentionInDays"):
        w.retention = int(props["retentionInDays"])
    w.modified = now
    _invalidate(em, w)
    return Response(200, _ws_body(em, w, api))


def _ws_404(rg: str, name: str) -> Response:
    return arm_error(
        404,
        "ResourceNotFound",
        f"The Resource 'Microsoft.OperationalInsights/workspaces/{name}' under resource group "
        f"'{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


# ---- linked services (workspace ↔ cluster links) ---------------------------------------------------
def _ls_body(em: Emulator, w: Workspace) -> dict[str, Any] | None:
    op = w.running_link_op()
    if op is not None:
        target = op.data.get("cluster") if op.kind == "link" else w.cluster
        state = "ProvisioningAccount" if op.kind == "link" else "Deleting"
    elif w.cluster is not None:
        target, state = w.cluster, "Succeeded"
    else:
        return None
    return {
        "properties": {"writeAccessResourceId": target, "provisioningState": state},
        "id": em.link_resource_id(w),
        "name": "Cluster",
        "type": LS_TYPE,
        "tags": {},
    }


def _list_linked_services(em: Emulator, ws_key: str, rg: str, name: str) -> Response:
    w = em.workspaces.get(ws_key)
    if w is None:
        return _ws_404(rg, name)
    b = _ls_body(em, w)
    return Response(200, {"value": [b] if b else []})


def _link_window_count(em: Emulator, w: Workspace, now: datetime) -> list[datetime]:
    window = timedelta(days=em.limits.link_window_days)
    return sorted(t for t, _ in w.link_history if now - t < window)


def _linked_service(em: Emulator, req: Request, sub: str, rg: str, ws_name: str, ls_name: str) -> Response:
    w = em.workspaces.get(f"{sub}/{rg}/{ws_name}".lower())
    if ls_name.lower() != "cluster":
        if w is None:
            return _ws_404(rg, ws_name)
        return arm_error(404, "NotFound", None)
    if req.method == "GET":
        if w is None:
            return _ws_404(rg, ws_name)
        b = _ls_body(em, w)
        if b is None:
            return arm_error(404, "NotFound", None)  # real: no message (facts §1.6)
        return Response(200, b)
    if w is None:
        return arm_error(404, "ResourceNotFound", MSG_WS_404)
    if req.method not in ("PUT", "DELETE"):
        return _no_route(req)
    resp = _link_write(em, req, sub, w)
    if resp.status >= 400 or resp.status == 204:
        # ARM logs a refused write as Started + Failed: in the Activity Log, never in the W3 count
        em.record_refused_link_write(
            w,
            delete=req.method == "DELETE",
            http_status=resp.status,
            client_request_id=_client_request_id(req),
        )
    return resp


def _client_request_id(req: Request) -> str | None:
    """What the client sent as `x-ms-client-request-id` (the Activity Log's httpRequest.clientRequestId)."""
    return req.headers.get("x-ms-client-request-id")


def _start_logged(req: Request, op: Operation) -> None:
    """ARM keeps a client's `x-ms-correlation-request-id`; otherwise it makes one per request."""
    op.correlation_id = req.headers.get("x-ms-correlation-request-id") or op.correlation_id


def _link_write(em: Emulator, req: Request, sub: str, w: Workspace) -> Response:
    """PUT or DELETE of a workspace's linkedServices/cluster (rules W1-W5, C8)."""
    now = em.now()
    if req.method == "PUT":
        body = _json(req)
        props = body.get("properties") if isinstance(body, dict) else None
        target = None
        if isinstance(props, dict):
            target = props.get("writeAccessResourceId") or props.get("WriteAccessResourceId")
        if not isinstance(target, str) or not target:
            return arm_error(
                400, "InvalidParameter", "'properties.writeAccessResourceId' must be a cluster resource id."
            )
        if w.running_link_op() is not None:
            return arm_error(409, "Conflict", MSG_LINK_IN_PROCESS)  # rule W5
        c = _find_cluster(em, target)
        if c is None:
            return arm_error(400, "BadRequest", MSG_LINK_CLUSTER_404)
        if c.running_op() is not None and c.running_op().kind == "cluster_delete":  # type: ignore[union-attr]
            return arm_error(400, "BadRequest", MSG_LINK_CLUSTER_404)
        if w.cluster is not None:
            if w.cluster.lower() == c.arm_id.lower():
                return Response(200, _ls_body(em, w))  # already linked there: nothing to do
            return arm_error(
                400,
                "BadRequest",  # rule W2
                f"Workspace '{w.name}' is already linked to cluster '{w.cluster}'. Unlink it "
                "before linking it to another cluster.",
            )
        if norm_loc(c.location) != w.location:  # rule C8
            return arm_error(
                400,
                "InvalidParameter",
                f"Workspace '{w.name}' is in region '{w.location}' but cluster '{c.name}' is in "
                f"'{norm_loc(c.location)}'; they must be in the same region.",
            )
        linked = sum(1 for x in em.workspaces.values() if x.cluster and x.cluster.lower() == c.arm_id.lower())
        pending = sum(
            1
            for x in em.workspaces.values()
            if x.running_link_op() is not None
            and x.link_op is not None
            and x.link_op.kind == "link"
            and str(x.link_op.data.get("cluster", "")).lower() == c.arm_id.lower()
        )
        if linked + pending >= em.limits.workspaces_per_cluster:  # rule W1
            return arm_error(
                400,
                "BadRequest",
                f"A maximum of {em.limits.workspaces_per_cluster} Log Analytics workspaces can be linked to "
                f"a cluster. Cluster '{c.name}' has {linked + pending}.",
            )
        bad = _w3(em, w, now)
        if bad:
            return bad
        op = em.new_operation("link", sub, w.location, w.key_id, cluster=c.arm_id)
        _apply_faults_to_op(em, req, op)
        w.link_op = op
        w.link_history.append((now, "link"))
        _start_logged(req, op)
        em.record_link_write(w, op, delete=False, http_status=200, client_request_id=_client_request_id(req))
        creating = c.running_op() is not None and c.running_op().kind == "cluster_create"  # type: ignore[union-attr]
        if creating or c.failed:
            # rule W4: Azure accepts the link; data ingested meanwhile is dropped, unrecoverably. (A key
            # update in progress is not this: the cluster's provisioning already succeeded.)
            em.harm(
                "data_dropped",
                "W4",
                w.arm_id,
                f"Workspace linked to cluster '{c.name}' while its provisioning state was "
                f"'{c.provisioning_state()}': ingested data is dropped and unrecoverable.",
            )
        _invalidate(em, w)
        # 2020 real: 200 + body ProvisioningAccount + Azure-AsyncOperation (facts §4.3)
        return Response(200, _ls_body(em, w), _op_headers(em, req, op))
    if req.method == "DELETE":
        if w.running_link_op() is not None:
            return arm_error(409, "Conflict", MSG_LINK_IN_PROCESS)  # rule W5
        if w.cluster is None:
            return Response(204)
        bad = _w3(em, w, now)
        if bad:
            return bad
        op = em.new_operation("unlink", sub, w.location, w.key_id, cluster=w.cluster)
        _apply_faults_to_op(em, req, op)
        w.link_op = op
        w.link_history.append((now, "unlink"))
        _start_logged(req, op)
        em.record_link_write(w, op, delete=True, http_status=200, client_request_id=_client_request_id(req))
        _invalidate(em, w)
        # 200 + body + AAO (never a bare 204, which breaks SDK 14 .result(), facts §12.13)
        return Response(200, _ls_body(em, w), _op_headers(em, req, op))
    return _no_route(req)


def _w3(em: Emulator, w: Workspace, now: datetime) -> Response | None:
    """Rule W3. 400 (not 409): a quota refusal is final for weeks, and 409 is what clients treat as
    'busy, retry soon' (W5). Azure publishes no text for it; the message states the documented limit
    ("A maximum of two workspace link operations on particular workspace is allowed in 30 day period")."""
    recent = _link_window_count(em, w, now)
    if len(recent) >= em.limits.link_ops_per_window:
        return arm_error(
            400,
            "BadRequest",
            f"A maximum of {em.limits.link_ops_per_window} workspace link operations on particular "
            f"workspace is allowed in {em.limits.link_window_days} day period. Workspace '{w.name}' had "
            f"{len(recent)} since {iso7(recent[0])}.",
        )
    return None


def _find_cluster(em: Emulator, arm_id: str) -> Cluster | None:
    parts = [p for p in arm_id.split("/") if p]
    low = [p.lower() for p in parts]
    if len(low) != 8 or low[0] != "subscriptions" or low[2] != "resourcegroups" or low[6] != "clusters":
        return None
    return em.clusters.get(f"{parts[1]}/{parts[3]}/{parts[7]}".lower())


# ---- linked storage accounts (BYOS) ----------------------------------------------------------------
def _lsa_body(
    w: Workspace, dst: str, *, list_item: bool = False, path_name: str | None = None
) -> dict[str, Any]:
    name = path_name if path_name and not list_item else dst
    return {
        "properties": {"dataSourceType": dst, "storageAccountIds": list(w.storage[dst])},
        "id": f"{w.arm_id}/linkedStorageAccounts/{name}",
        "name": dst,
        "type": LSA_TYPE,
    }


def _list_linked_storage(em: Emulator, ws_key: str, rg: str, name: str) -> Response:
    w = em.workspaces.get(ws_key)
    if w is None:
        return _ws_404(rg, name)
    return Response(200, {"value": [_lsa_body(w, d, list_item=True) for d in sorted(w.storage)]})


def _linked_storage(em: Emulator, req: Request, sub: str, rg: str, ws_name: str, dst_raw: str) -> Response:
    w = em.workspaces.get(f"{sub}/{rg}/{ws_name}".lower())
    if w is None:
        return _ws_404(rg, ws_name)
    dst = dst_raw.lower()
    if dst not in DATA_SOURCE_TYPES:
        return arm_error(
            400,
            "InvalidParameter",
            f"The data source type '{dst_raw}' is not valid. Allowed values: "
            + ", ".join(DATA_SOURCE_TYPES.values())
            + ".",
        )
    if req.method == "GET":
        if dst not in w.storage:
            return arm_error(404, "NotFound", None)
        return Response(200, _lsa_body(w, dst, path_name=dst_raw))
    if req.method == "DELETE":
        w.storage.pop(dst, None)
        return Response(200)  # as Azure answers (docs/azure-wire.md)
    if req.method == "PUT":
        body = _json(req)
        props = body.get("properties") if isinstance(body, dict) else None
        ids = props.get("storageAccountIds") if isinstance(props, dict) else None
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return arm_error(
                400, "InvalidParameter", "'properties.storageAccountIds' must list a storage account."
            )
        if dst in ("query", "alerts") and len(ids) != 1:  # rule B1
            return arm_error(
                400,
                "InvalidParameter",
                f"Only one storage account can be linked for data source type '{DATA_SOURCE_TYPES[dst]}'.",
            )
        for sid in ids:
            acct = em.storage_accounts.get(sid.lower())
            if acct is None:
                return arm_error(400, "BadRequest", f"Storage account '{sid}' was not found.")
            if norm_loc(acct["location"]) != w.location:  # rule B1
                return arm_error(
                    400,
                    "InvalidParameter",
                    f"Storage account '{sid}' is in region '{norm_loc(acct['location'])}' but "
                    f"workspace '{w.name}' is in '{w.location}'; they must be in the same region.",
                )
        previous = w.storage.get(dst)
        w.storage[dst] = list(ids)
        if dst == "query" and w.saved_searches > 0 and previous != list(ids):
            # rule B2: accepted, and the workspace's saved searches are gone
            em.harm(
                "saved_searches_dropped",
                "B2",
                w.arm_id,
                f"Linking a Query storage account removed the workspace's {w.saved_searches} saved searches.",
            )
            w.saved_searches = 0
        return Response(200, _lsa_body(w, dst, path_name=dst_raw))
    return _no_route(req)


# ---- Activity Log ----------------------------------------------------------------------------------
# Times quoted or not: azure-cli sends `eventTimestamp ge 2018-01-01T00:00:00+00:00` (recorded 2019).
_FILTER_TIME = re.compile(r"eventTimestamp\s+(ge|le)\s+(?:'([^']+)'|([^'\s]+))", re.IGNORECASE)
_FILTER_EQ = re.compile(
    r"(resourceGroupName|resourceUri|resourceProvider|correlationId)\s+eq\s+'([^']*)'", re.IGNORECASE
)


# EventData fields `$select` may name (azure-mgmt-monitor's EventData, docs/azure-wire.md)
_EVENT_FIELDS = frozenset(
    "authorization claims correlationId description eventDataId eventName category httpRequest id level "
    "resourceGroupName resourceProviderName resourceId resourceType operationId operationName properties "
    "status subStatus eventTimestamp submissionTimestamp subscriptionId tenantId".lower().split()
)


def _selected(ev: dict[str, Any], select: list[str]) -> dict[str, Any]:
    """`$select` narrows each event to the fields named (all of them without it)."""
    wanted = {f.lower() for f in select}
    return {k: v for k, v in ev.items() if not k.startswith("_") and (not wanted or k.lower() in wanted)}


def _activity_error(msg: str) -> Response:
    return Response(400, {"Code": "BadRequest", "Message": msg})  # non-ARM envelope (facts §12.18)


def _activity(em: Emulator, req: Request, sub: str) -> Response:
    """`$filter` grammar of facts §11: eventTimestamp ge '..' [and eventTimestamp le '..'] [and one eq]."""
    flt = req.q("$filter")
    if not flt:
        return _activity_error("The $filter query parameter is required.")
    clauses = [c.strip() for c in re.split(r"\s+and\s+", flt.strip(), flags=re.IGNORECASE) if c.strip()]
    start: datetime | None = None
    end: datetime | None = None
    eq: tuple[str, str] | None = None
    for cl in clauses:
        m = _FILTER_TIME.fullmatch(cl)
        if m:
            when = m.group(2) or m.group(3)
            try:
                t = parse_time(when)
            except ValueError:
                return _activity_error(f"The time '{when}' is not valid.")
            if m.group(1).lower() == "ge":
                start = t
            else:
                end = t
            continue
        m2 = _FILTER_EQ.fullmatch(cl)
        if m2 and eq is None:
            eq = (m2.group(1).lower(), m2.group(2).lower())
            continue
        return _activity_error(f"The filter '{flt}' is not supported.")
    if start is None:
        return _activity_error("The $filter must contain eventTimestamp ge '<start time>'.")
    now = em.now()
    if now - start > timedelta(days=90):
        return _activity_error("The start time cannot be more than 90 days in the past.")
    out = []
    for ev in em.activity:
        t = ev["_time"]
        if ev["subscriptionId"].lower() != sub.lower() or t < start or (end is not None and t > end):
            continue
        if eq is not None:
            field_, value = eq
            actual = {
                "resourcegroupname": ev["resourceGroupName"],
                "resourceuri": ev["resourceId"],
                "resourceprovider": ev["resourceProviderName"]["value"],
                "correlationid": ev["correlationId"],
            }[field_]
            if actual.lower() != value:
                continue
        out.append(ev)
    out.sort(key=lambda e: e["_time"], reverse=True)  # newest first, like the service
    select = [f.strip() for f in (req.q("$select") or "").split(",") if f.strip()]
    unknown = [f for f in select if f.lower() not in _EVENT_FIELDS]
    if unknown:
        return _activity_error(f"The $select field '{unknown[0]}' is not supported.")
    token = req.q("$skiptoken")
    skip = int(token) if token and token.isdigit() else 0
    size = em.activity_page_size
    body: dict[str, Any] = {"value": [_selected(ev, select) for ev in out[skip : skip + size]]}
    if skip + size < len(out):
        params = {"api-version": req.q("api-version") or "", "$filter": flt}
        if select:
            params["$select"] = ",".join(select)
        params["$skiptoken"] = str(skip + size)
        query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        body["nextLink"] = (
            f"https://{em.cloud.arm_host}/subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management"
            f"/values?{query}"
        )
    return Response(200, body)
