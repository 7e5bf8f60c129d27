"""Azure Resource Manager for management.azure.com: resource groups, Log Analytics clusters,
workspaces, linked services, linked storage accounts, operation statuses, the Activity Log, and
Microsoft.KeyVault/vaults (delegated to the vault registry). Shapes and texts follow
docs/azure-wire.md; every docs/rules.md rule is enforced here with the seed's message."""

from __future__ import annotations

import uuid

from emulator.http import Request, Response, arm_error
from emulator.resources.activity_log import _activity
from emulator.resources.clusters import _cluster, _list_clusters
from emulator.resources.common import (
    ACTIVITY_VERSIONS,
    API_VERSIONS,
    OPSTATUS_VERSIONS,
    _no_route,
    _rg_404,
    _rg_exists,
    _versioned,
)
from emulator.resources.linked_storage import _linked_storage, _list_linked_storage
from emulator.resources.links import _linked_service, _list_linked_services
from emulator.resources.operations import _op_result, _op_status
from emulator.resources.resource_groups import _generic_resources, _move, _resource_group
from emulator.resources.workspaces import _list_workspaces, _workspace
from emulator.state import Emulator


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
