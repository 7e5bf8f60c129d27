"""What every Resource Manager resource of the emulator shares: the api-versions, resource types,
the seed's error texts, and the api-version and resource-group checks ARM applies before a provider
answers."""

from __future__ import annotations

from typing import Any

from emulator.http import Request, Response, arm_error
from emulator.state import Emulator

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
MSG_BODY = "The body of the request is null or in bad format."
MSG_WS_404 = "Workspace not found. The workspace you specified doesn't exist or was deleted."


def no_route(req: Request) -> Response:
    return arm_error(
        404, "InvalidResourceType", f"The resource type could not be found for path '{req.path}'."
    )


def versioned(req: Request, allowed: tuple[str, ...]) -> Response | None:
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


def _rg_key(sub: str, rg: str) -> str:
    return f"{sub}/{rg}".lower()


def rg_exists(em: Emulator, sub: str, rg: str) -> bool:
    return _rg_key(sub, rg) in em.resource_groups


def rg_404(rg: str) -> Response:
    return arm_error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")


def _json(req: Request) -> Any:
    try:
        return req.json()
    except (ValueError, UnicodeDecodeError):
        return None


def _rg_name(em: Emulator, sub: str, rg: str) -> str:
    g = em.resource_groups.get(_rg_key(sub, rg))
    return g["name"] if g else rg
