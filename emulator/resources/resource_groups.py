"""Resource groups, the generic `/resources` list and resource moves (rule C10) of Azure Resource
Manager."""

from __future__ import annotations

import re
import uuid
from typing import Any

from emulator.http import Request, Response, arm_error
from emulator.resources.common import (
    API_VERSIONS,
    CLUSTER_TYPE,
    WORKSPACE_TYPE,
    _json,
    _rg_key,
    no_route,
    rg_404,
    versioned,
)
from emulator.state import Emulator, norm_loc


def list_resources(em: Emulator, req: Request, sub: str) -> Response:
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


def list_resource_groups(em: Emulator, req: Request, sub: str) -> Response:
    """`GET /subscriptions/{s}/resourcegroups`: every group of the subscription, one page."""
    if not req.q("api-version"):
        return versioned(req, API_VERSIONS) or Response(400)
    prefix = f"{sub}/".lower()
    groups = [g for key, g in sorted(em.resource_groups.items()) if key.startswith(prefix)]
    return Response(200, {"value": [_rg_body(sub, g, req.q("api-version")) for g in groups]})


def move_resources(em: Emulator, req: Request, sub: str, rg: str) -> Response:
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


def handle_resource_group(em: Emulator, req: Request, sub: str, rg: str) -> Response:
    if not req.q("api-version"):
        return versioned(req, API_VERSIONS) or Response(400)
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
            return rg_404(rg)
        return Response(
            200 if req.method == "GET" else 204,
            _rg_body(sub, g2, req.q("api-version")) if req.method == "GET" else None,
        )
    if req.method == "DELETE":
        if g2 is None:
            return rg_404(rg)
        for c in [c for c in em.clusters.values() if _rg_key(c.subscription, c.resource_group) == key]:
            del em.clusters[c.key_id]
        for w in [w for w in em.workspaces.values() if _rg_key(w.subscription, w.resource_group) == key]:
            del em.workspaces[w.key_id]
            em.w1_refresh(w.key_id)  # rule W1
        em.list_cache.clear()
        del em.resource_groups[key]
        # Recorded: 202 + Location to the subscription's operationresults (done at once here).
        token = uuid.uuid4().hex
        api = req.q("api-version")
        location = (
            f"https://{em.cloud.arm_host}/subscriptions/{sub}/operationresults/{token}?api-version={api}"
        )
        return Response(202, None, {"Location": location})
    return no_route(req)
