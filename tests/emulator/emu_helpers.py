"""Helpers for emulator tests that work with every supported azure-mgmt-loganalytics alike (models, not
dicts; no version-specific keyword arguments): the fidelity job runs them on the floor version too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.mgmt.loganalytics.models import (
    Cluster,
    ClusterPatch,
    ClusterSku,
    Identity,
    KeyVaultProperties,
    LinkedService,
    LinkedStorageAccountsResource,
    Workspace,
)

SUB = "00000000-0000-0000-0000-000000000001"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def make_rg(emulator: Any, name: str = "rg1", location: str = "eastus") -> None:
    r = emulator.arm(
        "PUT", f"/subscriptions/{SUB}/resourcegroups/{name}", {"location": location}, api_version="2021-04-01"
    )
    assert r.status_code in (200, 201), r.text


def cluster_model(
    location: str = "eastus",
    capacity: int | None = 1000,
    identity: str | None = "SystemAssigned",
    sku_name: str | None = "CapacityReservation",
    key: dict[str, str] | None = None,
    double: bool | None = None,
    user_identity: str | None = None,
    zones: bool | None = None,
) -> Cluster:
    ident = None
    if identity is not None:
        uai = {user_identity: {}} if user_identity else None
        ident = Identity(type=identity, user_assigned_identities=uai)
    sku = (
        ClusterSku(name=sku_name, capacity=capacity) if sku_name is not None or capacity is not None else None
    )
    kvp = (
        KeyVaultProperties(key_vault_uri=key["uri"], key_name=key["name"], key_version=key.get("version", ""))
        if key
        else None
    )
    return Cluster(
        location=location,
        identity=ident,
        sku=sku,
        key_vault_properties=kvp,
        is_double_encryption_enabled=double,
        is_availability_zones_enabled=zones,
    )


def create_cluster(la: Any, rg: str = "rg1", name: str = "clu1", **kw: Any) -> Any:
    return la.clusters.begin_create_or_update(rg, name, cluster_model(**kw)).result()


def key_patch(uri: str, name: str, version: str) -> ClusterPatch:
    return ClusterPatch(
        key_vault_properties=KeyVaultProperties(key_vault_uri=uri, key_name=name, key_version=version)
    )


def sku_patch(capacity: int) -> ClusterPatch:
    return ClusterPatch(sku=ClusterSku(name="CapacityReservation", capacity=capacity))


def workspace(la: Any, rg: str = "rg1", name: str = "wsp1", location: str = "eastus") -> Any:
    return la.workspaces.begin_create_or_update(rg, name, Workspace(location=location)).result()


def cluster_id(rg: str, name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/clusters/{name}"


def link(la: Any, rg: str, ws: str, cluster: str) -> Any:
    return la.linked_services.begin_create_or_update(
        rg, ws, "cluster", LinkedService(write_access_resource_id=cluster_id(rg, cluster))
    ).result()


def unlink(la: Any, rg: str, ws: str) -> Any:
    return la.linked_services.begin_delete(rg, ws, "cluster").result()


def storage(ids: list[str]) -> LinkedStorageAccountsResource:
    return LinkedStorageAccountsResource(storage_account_ids=ids)


# The codes today's Azure sends for the refusals the emulator plays: generic ARM / Log Analytics codes
# (the rule is in the message) and ARM's own framework codes. A code outside this set is invented.
GENERIC_CODES = frozenset({
    "BadRequest", "InvalidInput", "InvalidParameter", "Conflict", "NotFound", "ResourceNotFound",
    "ResourceGroupNotFound", "InvalidResourceLocation", "ResourceMoveNotSupported",
    "InvalidApiVersionParameter", "MissingApiVersionParameter", "InvalidResourceType",
    "AuthenticationFailed", "LocationRequired", "InvalidSubscriptionId",
})  # fmt: skip


def refused(call: Callable[[], Any]) -> tuple[int, str, str]:
    """Run an SDK call that must fail; return (status, error code, message). The code must be one
    Azure really sends (GENERIC_CODES): nothing may depend on an invented one."""
    try:
        call()
    except HttpResponseError as exc:
        err = exc.error
        code = getattr(err, "code", None) or ""
        message = getattr(err, "message", None) or ""
        if not code and exc.response is not None:  # the Activity Log's own {"Code", "Message"} shape
            body = exc.response.json()
            code, message = body.get("Code", ""), body.get("Message", "")
        assert code in GENERIC_CODES, f"invented error code {code!r} ({message})"
        return int(exc.status_code or 0), str(code), str(message)
    raise AssertionError("the call was accepted but the service must refuse it")
