"""Log Analytics workspaces (`Microsoft.OperationalInsights/workspaces`): list, get, create, update,
delete, in the shape each api-version answers."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from emulator.clock import rfc1123
from emulator.http import Request, Response, arm_error
from emulator.resources.common import (
    MSG_BODY,
    PREVIEW_2020,
    WORKSPACE_TYPE,
    _json,
    _rg_name,
    no_route,
    rg_404,
    rg_exists,
)
from emulator.state import Emulator, Workspace, norm_loc

WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$")


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


def list_workspaces(em: Emulator, sub: str, rg: str | None) -> Response:
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


def handle_workspace(em: Emulator, req: Request, sub: str, rg: str, name: str) -> Response:
    key = f"{sub}/{rg}/{name}".lower()
    w = em.workspaces.get(key)
    if req.method == "GET":
        if w is None:
            return _ws_404(rg, name)
        return Response(200, _ws_body(em, w, req.q("api-version")))
    if req.method == "PUT":
        if not rg_exists(em, sub, rg):
            return rg_404(rg)
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
            em.w1_refresh(key)  # rule W1
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
        em.w1_refresh(key)  # rule W1: a deleted workspace counts no more
        em.list_cache.clear()
        return Response(200)  # real: 200 empty (facts §3.1)
    return no_route(req)


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
