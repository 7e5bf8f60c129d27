"""Which handler answers a request: a table of (method, host kind, path pattern) → handler.

One listener serves every Azure host (server.py), so a request is first sorted by host kind: the
admin API (`/_emulator/...` on any host), Azure Resource Manager (the played cloud's
`management.azure.com`) or Key Vault (`{vault}.vault.azure.net`, `{hsm}.managedhsm.azure.net`).
ARM then applies its front-door checks (bearer token, subscription id) and the first row of
`ROUTES` whose method, host kind and path match answers. Paths match case-insensitively and
ignore empty segments, as ARM does (docs/azure-wire.md §1.1); a row with `versions` answers ARM's
api-version 400 before its handler runs. A vault host goes to the vault registry, whose front door
(vault lookup, token challenge, api-version, outage) runs first and whose own table
(`resources.keyvault_data.ROUTES`) names the permission each key operation needs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from emulator import admin
from emulator.http import Request, Response, arm_error
from emulator.resources import (
    activity_log,
    clusters,
    identities,
    linked_storage,
    links,
    operations,
    resource_groups,
    workspaces,
)
from emulator.resources.common import (
    ACTIVITY_VERSIONS,
    API_VERSIONS,
    OPSTATUS_VERSIONS,
    no_route,
    rg_404,
    rg_exists,
    versioned,
)
from emulator.state import Emulator

HostKind = Literal["admin", "arm", "vault"]
Params = dict[str, str]
Handler = Callable[[Emulator, Request, Params], Response]

_SEGMENT = re.compile(r"\{(\w+)(\.\.\.)?\}")


def _compile(pattern: str) -> re.Pattern[str]:
    """`/a/{name}/b` → a regex with one named group per `{name}` segment; `{rest...}` takes the
    remaining segments."""
    out, pos = [], 0
    for m in _SEGMENT.finditer(pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out), re.IGNORECASE)


@dataclass(frozen=True)
class Route:
    """One row of the table. `method` None: the handler answers every method itself."""

    method: str | None
    host: HostKind
    pattern: str
    handler: Handler
    versions: tuple[str, ...] | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", _compile(self.pattern))

    def match(self, method: str, host: HostKind, path: str) -> Params | None:
        if host != self.host or (self.method is not None and method != self.method):
            return None
        m = self.regex.fullmatch(path)
        return m.groupdict() if m else None


def _vaults(em: Emulator, req: Request, p: Params) -> Response:
    """`Microsoft.KeyVault/vaults`; creating a vault needs its resource group, as every ARM PUT does."""
    rg = p.get("rg", "")
    if rg and req.method == "PUT" and not rg_exists(em, p["sub"], rg):
        return rg_404(rg)
    return em.vaults.handle_arm(req, p["sub"], rg, p.get("name"))


def _rg_listed(
    lister: Callable[[Emulator, Request, str, str], Response],
) -> Handler:
    """A list in a resource group: 404 `ResourceGroupNotFound` when the group does not exist."""

    def handler(em: Emulator, req: Request, p: Params) -> Response:
        if not rg_exists(em, p["sub"], p["rg"]):
            return rg_404(p["rg"])
        return lister(em, req, p["sub"], p["rg"])

    return handler


def _ws_key(p: Params) -> str:
    return f"{p['sub']}/{p['rg']}/{p['ws']}".lower()


_S = "/subscriptions/{sub}"
_RG = _S + "/resourceGroups/{rg}"
_OI = "/providers/Microsoft.OperationalInsights"
_WS = _RG + _OI + "/workspaces/{ws}"

ROUTES: tuple[Route, ...] = (
    # subscription-wide
    Route(
        "GET",
        "arm",
        _S + _OI + "/clusters",
        lambda em, req, p: clusters.list_clusters(em, req, p["sub"], None),
        API_VERSIONS,
    ),
    Route(
        "GET",
        "arm",
        _S + _OI + "/workspaces",
        lambda em, req, p: workspaces.list_workspaces(em, p["sub"], None),
        API_VERSIONS,
    ),
    Route(
        "GET",
        "arm",
        _S + _OI + "/locations/{location}/operationStatuses/{op}",
        lambda em, req, p: operations.operation_status(em, p["op"]),
        OPSTATUS_VERSIONS,
    ),
    Route(
        "GET",
        "arm",
        _S + "/providers/Microsoft.Insights/eventtypes/management/values",
        lambda em, req, p: activity_log.activity_log_values(em, req, p["sub"]),
        ACTIVITY_VERSIONS,
    ),
    Route(None, "arm", _S + "/providers/Microsoft.KeyVault/vaults", _vaults),  # list_by_subscription
    Route(None, "arm", _S + "/providers/{rest...}", lambda em, req, p: no_route(req)),
    # a resource group deletion (the only such operation) is done at once
    Route("GET", "arm", _S + "/operationresults/{op}", lambda em, req, p: Response(200)),
    Route(
        "GET", "arm", _S + "/resources", lambda em, req, p: resource_groups.list_resources(em, req, p["sub"])
    ),
    # resource groups
    Route(
        "GET",
        "arm",
        _S + "/resourcegroups",
        lambda em, req, p: resource_groups.list_resource_groups(em, req, p["sub"]),
    ),
    Route(
        None,
        "arm",
        _RG,
        lambda em, req, p: resource_groups.handle_resource_group(em, req, p["sub"], p["rg"]),
    ),
    Route(
        "POST",
        "arm",
        _RG + "/moveResources",
        lambda em, req, p: resource_groups.move_resources(em, req, p["sub"], p["rg"]),
    ),
    Route(
        "POST",
        "arm",
        _RG + "/validateMoveResources",
        lambda em, req, p: resource_groups.move_resources(em, req, p["sub"], p["rg"]),
    ),
    # user-assigned identities (read only: a plan checks their principal's key access, rule C7)
    Route(
        "GET",
        "arm",
        _RG + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
        lambda em, req, p: identities.get_identity(em, req, p["sub"], p["rg"], p["name"]),
    ),
    # Key Vault management (Microsoft.KeyVault/vaults; the handler reads sub-resources from the path)
    Route(None, "arm", _RG + "/providers/Microsoft.KeyVault/vaults", _vaults),
    Route(None, "arm", _RG + "/providers/Microsoft.KeyVault/vaults/{name}", _vaults),
    Route(None, "arm", _RG + "/providers/Microsoft.KeyVault/vaults/{name}/{rest...}", _vaults),
    # Log Analytics clusters
    Route(
        "GET",
        "arm",
        _RG + _OI + "/clusters",
        _rg_listed(lambda em, req, sub, rg: clusters.list_clusters(em, req, sub, rg)),
        API_VERSIONS,
    ),
    Route(
        None,
        "arm",
        _RG + _OI + "/clusters/{name}",
        lambda em, req, p: clusters.handle_cluster(em, req, p["sub"], p["rg"], p["name"]),
        API_VERSIONS,
    ),
    Route(
        "GET",
        "arm",
        _RG + _OI + "/clusters/{name}/operationresults/{op}",
        lambda em, req, p: operations.operation_result(em, p["op"]),
        API_VERSIONS,
    ),
    # workspaces
    Route(
        "GET",
        "arm",
        _RG + _OI + "/workspaces",
        _rg_listed(lambda em, req, sub, rg: workspaces.list_workspaces(em, sub, rg)),
        API_VERSIONS,
    ),
    Route(
        None,
        "arm",
        _WS,
        lambda em, req, p: workspaces.handle_workspace(em, req, p["sub"], p["rg"], p["ws"]),
        API_VERSIONS,
    ),
    # linked services (workspace ↔ cluster links)
    Route(
        "GET",
        "arm",
        _WS + "/linkedServices",
        lambda em, req, p: links.list_linked_services(em, _ws_key(p), p["rg"], p["ws"]),
        API_VERSIONS,
    ),
    Route(
        None,
        "arm",
        _WS + "/linkedServices/{name}",
        lambda em, req, p: links.handle_linked_service(em, req, p["sub"], p["rg"], p["ws"], p["name"]),
        API_VERSIONS,
    ),
    Route(
        "GET",
        "arm",
        _WS + "/linkedServices/{name}/operationresults/{op}",
        lambda em, req, p: operations.operation_result(em, p["op"]),
        API_VERSIONS,
    ),
    # linked storage accounts (BYOS)
    Route(
        "GET",
        "arm",
        _WS + "/linkedStorageAccounts",
        lambda em, req, p: linked_storage.list_linked_storage(em, _ws_key(p), p["rg"], p["ws"]),
        API_VERSIONS,
    ),
    Route(
        None,
        "arm",
        _WS + "/linkedStorageAccounts/{name}",
        lambda em, req, p: linked_storage.handle_linked_storage(
            em, req, p["sub"], p["rg"], p["ws"], p["name"]
        ),
        API_VERSIONS,
    ),
    # anything else of Microsoft.OperationalInsights: the api-version is checked before the 404
    Route(None, "arm", _RG + _OI + "/{rest...}", lambda em, req, p: no_route(req), API_VERSIONS),
)


def host_kind(em: Emulator, req: Request) -> HostKind | None:
    """Which Azure service the request is for, by the played cloud's host names."""
    if req.path.lower().startswith("/_emulator/"):
        return "admin"
    if req.host == em.cloud.arm_host:
        return "arm"
    if req.host.endswith((f".{em.cloud.vault_suffix}", f".{em.cloud.hsm_suffix}")):
        return "vault"
    return None


def route(em: Emulator, req: Request) -> Response:
    """Answer one request."""
    kind = host_kind(em, req)
    if kind == "admin":
        return admin.handle(em, req)
    if kind == "vault":
        return em.vaults.handle_dataplane(req)  # emulator/resources/keyvault_data.py
    if kind == "arm":
        return _arm(em, req)
    return arm_error(404, "HostNotFound", f"No emulated service for host '{req.host}'.")


def _arm(em: Emulator, req: Request) -> Response:
    """ARM's front door (token, subscription id), then the first matching row of `ROUTES`."""
    auth = req.headers.get("authorization", "")
    if not auth.lower().startswith("bearer ") or len(auth) <= 7:
        return arm_error(
            401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
        )
    segments = [s for s in req.path.split("/") if s]
    if len(segments) < 2 or segments[0].lower() != "subscriptions":
        return no_route(req)
    sub = segments[1]
    try:
        uuid.UUID(sub)
    except ValueError:
        return arm_error(
            400,
            "InvalidSubscriptionId",
            f"The provided subscription identifier '{sub}' is malformed or invalid.",
        )
    path = "/" + "/".join(segments)
    with em.lock:
        if req.method != "GET" and "/workspaces/" not in path.lower():
            # a write to a cluster, an identity or a resource group may change what a key allows;
            # a workspace's writes (links, BYOS, the workspace itself) never do
            em.something_changed()
        em.tick()  # operations due by now complete before anything is read
        for r in ROUTES:
            params = r.match(req.method, "arm", path)
            if params is None:
                continue
            if r.versions is not None:
                bad = versioned(req, r.versions)
                if bad is not None:
                    return bad
            return r.handler(em, req, params)
        return no_route(req)
