"""Log Analytics dedicated clusters (`Microsoft.OperationalInsights/clusters`): create, update, key
changes and delete, with rules C1-C13 as the service enforces them (docs/rules.md)."""

from __future__ import annotations

import re
import urllib.parse
import uuid
from datetime import timedelta
from typing import Any

from emulator.clock import rfc1123
from emulator.http import Request, Response, arm_error
from emulator.regions import has_zones
from emulator.resources import activity_log
from emulator.resources.common import (
    CLUSTER_TYPE,
    MSG_BODY,
    PREVIEW_2020,
    _json,
    _rg_name,
    no_route,
    rg_404,
    rg_exists,
)
from emulator.resources.operations import (
    _apply_faults_to_op,
    _client_request_id,
    _op_headers,
    _op_id,
    _start_logged,
)
from emulator.state import Cluster, Emulator, Workspace, norm_loc

# rule C1: the REST spec's pattern, 4-63 characters, hyphens not at either end (Azure created
# `clitest-cluster-000002` in 2022 and 2025, recorded)
CLUSTER_NAME = re.compile(r"^(?=.{4,63}$)[A-Za-z0-9][A-Za-z0-9-]+[A-Za-z0-9]$")

# Seed texts (docs/rules.md error catalogue / seed "Error messages").
MSG_NAME = (
    "Cluster name is not valid. Cluster name can contain characters a-z, A-Z, 0-9 and '-' (not at the "
    "start or end) and length of 4-63."
)
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
MSG_READ_ONLY_ASSOCIATED = (
    "'properties.associatedWorkspaces' is a read only property and cannot be set. Please refer to "
    "https://docs.microsoft.com/en-us/azure/azure-monitor/log-query/logs-dedicated-clusters"
    "#link-a-workspace-to-the-cluster for more information on how to associate a workspace to the cluster."
)


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


def list_clusters(em: Emulator, req: Request, sub: str, rg: str | None) -> Response:
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


def handle_cluster(em: Emulator, req: Request, sub: str, rg: str, name: str) -> Response:
    key = f"{sub}/{rg}/{name}".lower()
    c = em.clusters.get(key)
    if req.method == "GET":
        if c is None:
            return _cluster_404(em, sub, rg, name)  # rule C11: soft-deleted = 404
        return Response(200, _cluster_shape(em, c, req.q("api-version")))
    if req.method == "PUT":
        if not rg_exists(em, sub, rg):
            return rg_404(rg)
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
    return no_route(req)


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
        return arm_error(400, "BadRequest", f"{location} doesn't support Double Encryption for clusters.")
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
    key_change = removal or (not _kvp_empty(kvp) and (c.key is None or _clean_kvp(kvp) != _clean_kvp(c.key)))
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
    activity_log.record_cluster_delete(em, c, op, client_request_id=_client_request_id(req))
    c.op = op
    em.list_cache.clear()
    return Response(202, None, _op_headers(em, req, op, c.arm_id))
