"""Linked storage accounts (BYOS, `workspaces/{w}/linkedStorageAccounts`), rules B1 and B2."""

from __future__ import annotations

from typing import Any

from emulator.http import Request, Response, arm_error
from emulator.resources.common import DATA_SOURCE_TYPES, LSA_TYPE, _json, no_route
from emulator.resources.workspaces import _ws_404
from emulator.state import Emulator, Workspace, norm_loc


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


def list_linked_storage(em: Emulator, ws_key: str, rg: str, name: str) -> Response:
    w = em.workspaces.get(ws_key)
    if w is None:
        return _ws_404(rg, name)
    return Response(200, {"value": [_lsa_body(w, d, list_item=True) for d in sorted(w.storage)]})


def handle_linked_storage(
    em: Emulator, req: Request, sub: str, rg: str, ws_name: str, dst_raw: str
) -> Response:
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
    return no_route(req)
