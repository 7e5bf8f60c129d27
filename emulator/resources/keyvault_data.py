"""The Key Vault data plane (`{vault}.vault.azure.net`, `{hsm}.managedhsm.azure.net`): keys, versions,
rotation policies and deleted keys, answered as the service does (docs/azure-wire.md §9). The vaults
themselves live in the registry (emulator/keyvault.py)."""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from emulator.http import Request, Response
from emulator.keyvault import (
    _API_RANK,
    _NAME_RE,
    _PAGE_MAX,
    DATAPLANE_API_VERSIONS,
    HSM_ROLE_IDS,
    KEY_NOT_FOUND,
    LATEST_DATAPLANE_API,
    Key,
    KeyVersion,
    Vault,
    VaultRegistry,
    _add_75_attributes,
    _attributes_of,
    _duration,
    _fake_material,
    _from_ts,
    _kv_error,
    _new_version_id,
    _ts,
)


def serve(reg: VaultRegistry, req: Request) -> Response:
    vault = reg.vault_by_host(req.host)
    if vault is None:
        # Real Azure would fail DNS resolution; a clear 404 is more useful to a test reader.
        return _kv_error(
            404,
            "VaultNotFound",
            f"No Key Vault answers at host '{req.host}': no vault of that name was created or seeded "
            "in the emulator.",
        )
    auth = req.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() not in ("bearer", "pop") or not token.strip():
        # §9.1 challenge: the SDK's first request carries no token and no body.
        challenge = (
            f'Bearer authorization="https://{vault.cloud.login_host}/{vault.tenant_id}", '
            f'resource="{vault.resource}"'
        )
        resp = _kv_error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
        resp.headers["WWW-Authenticate"] = challenge
        return resp
    api = req.q("api-version")
    if api is None:
        return _kv_error(400, "BadParameter", "The 'api-version' query parameter is missing.")
    if api not in DATAPLANE_API_VERSIONS:
        return _kv_error(
            400,
            "BadParameter",
            f"The specified version ({api}) is not recognized. Consider using the latest supported "
            f"version ({LATEST_DATAPLANE_API}).",
        )
    if vault.unavailable:  # rule K3 fault: transient outage
        return _kv_error(503, "ServiceUnavailable", "The service is temporarily unavailable.")
    try:
        resp = _route_dataplane(reg, vault, req, api)
    except (ValueError, TypeError) as exc:  # a body field of the wrong type, as the service says
        resp = _kv_error(400, "BadParameter", f"The request is malformed: {exc}")
    if _API_RANK.get(api, 0) >= _API_RANK["7.5-preview.1"]:
        _add_75_attributes(resp.body)
    resp.headers.setdefault("Content-Type", "application/json; charset=utf-8")
    resp.headers["x-ms-keyvault-region"] = vault.location
    resp.headers["x-ms-keyvault-service-version"] = "1.9.2000.1"
    if vault.uses_rbac:
        resp.headers["x-ms-keyvault-rbac-assignment-id"] = secrets.token_hex(16)
    return resp


def _route_dataplane(reg: VaultRegistry, vault: Vault, req: Request, api: str) -> Response:
    if _ROLE_ASSIGNMENTS in req.path.lower():
        return _list_role_assignments(vault, req, api)
    segs = req.path.split("/")[1:]  # "/keys/k/" -> ["keys", "k", ""]
    m = req.method
    if not segs or segs[0].lower() not in ("keys", "deletedkeys"):
        return _kv_error(400, "BadParameter", f"Unknown request path: {req.path}")
    collection = segs[0].lower()
    rest = segs[1:]
    if rest and rest[-1] == "":  # "/keys/k/" (SDK's versionless GET) is "/keys/k"
        rest = rest[:-1]
    if rest and rest[0] and not _NAME_RE.match(rest[0]):
        return _kv_error(400, "BadParameter", f"The request URI contains an invalid name: {rest[0]}")
    for route in ROUTES:
        if route.matches(m, collection, rest):
            return _guard(reg, vault, route.permission) or route.handler(reg, vault, req, api, rest)
    return _kv_error(405, "MethodNotAllowed", f"{m} {req.path} is not supported by the emulated vault.")


_ROLE_ASSIGNMENTS = "/providers/microsoft.authorization/roleassignments"
_ROLE_DEFINITION = "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{}"
_FILTER_PRINCIPAL = re.compile(r"^principalId\s+eq\s+'?([^'\s]+)'?$", re.IGNORECASE)


def _norm_scope(scope: str) -> str:
    return "/" + "/".join(p for p in scope.split("/") if p)


def _list_role_assignments(vault: Vault, req: Request, api: str) -> Response:
    """`GET {hsm}/{scope}/providers/Microsoft.Authorization/roleAssignments` (rbac.json,
    RoleAssignments_ListForScope): the Managed HSM's local RBAC. Without `$filter=atScope()` the list
    holds the assignments at, above and below the scope; `principalId eq '<id>'` keeps one principal's.
    A vault's RBAC assignments live in ARM (Microsoft.Authorization), not on its data plane."""
    at = req.path.lower().index(_ROLE_ASSIGNMENTS)
    if not vault.managed_hsm or req.path[at + len(_ROLE_ASSIGNMENTS):].strip("/"):
        return _kv_error(400, "BadParameter", f"Unknown request path: {req.path}")
    if req.method != "GET":
        return _kv_error(405, "MethodNotAllowed", f"{req.method} {req.path} is not supported here.")
    denied = vault.caller_denied
    if denied is True or (isinstance(denied, list) and "roleassignments" in {d.lower() for d in denied}):
        return _kv_error(
            403,
            "Forbidden",
            "Caller is not authorized to perform action on resource.\r\nAction: "
            "'Microsoft.KeyVault/managedHsm/roleAssignments/read/action'",
            "ForbiddenByRbac",
        )
    scope = _norm_scope(req.path[:at])
    principal: str | None = None
    at_scope = False
    for term in re.split(r"\s+and\s+", (req.q("$filter") or "").strip(), flags=re.IGNORECASE):
        term = term.strip()
        if not term:
            continue
        if term.lower() == "atscope()":
            at_scope = True
            continue
        m = _FILTER_PRINCIPAL.match(term)
        if m is None:
            return _kv_error(400, "BadParameter", f"The filter '{req.q('$filter')}' is not supported.")
        principal = m.group(1).lower()

    def related(assigned: str) -> bool:
        above = scope == assigned or scope.startswith(assigned.rstrip("/") + "/")
        below = assigned.startswith(scope.rstrip("/") + "/")
        return above or (below and not at_scope)

    items = []
    for r in vault.role_assignments:
        assigned = _norm_scope(r.get("scope", "/"))
        if principal is not None and r["principalId"].lower() != principal:
            continue
        if not related(assigned):
            continue
        role = r["role"].lower()
        role_id = HSM_ROLE_IDS.get(role) or str(uuid.uuid5(uuid.NAMESPACE_URL, role))
        name = r.get("name") or str(uuid.uuid5(uuid.NAMESPACE_OID, f"{r['principalId']}|{role}|{assigned}"))
        items.append({
            "id": f"{assigned.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}",
            "name": name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "scope": assigned,
                "roleDefinitionId": _ROLE_DEFINITION.format(role_id),
                "principalId": r["principalId"],
            },
        })
    return _page_at(vault, req, api, items)


def _page_at(vault: Vault, req: Request, api: str, items: list[dict[str, Any]]) -> Response:
    """One page of a role assignment list; the nextLink keeps the scope and the filter."""
    try:
        start = int(req.q("$skiptoken") or 0)
    except ValueError:
        return _kv_error(400, "BadParameter", "$skiptoken is not a valid number.")
    end = start + _PAGE_MAX
    next_link = None
    if end < len(items):
        flt = req.q("$filter")
        extra = f"&$filter={quote(flt)}" if flt else ""
        next_link = f"https://{vault.host}:443{req.path}?api-version={api}&$skiptoken={end}{extra}"
    return Response(200, {"value": items[start:end], "nextLink": next_link})


def _guard(reg: VaultRegistry, vault: Vault, perm: str) -> Response | None:
    """403 when the caller (our tool) may not do `perm` on this vault (seeded fault)."""
    denied = vault.caller_denied
    blocked = denied is True or (isinstance(denied, list) and perm in {d.lower() for d in denied})
    if not blocked and vault.enforce_caller:
        blocked = perm not in vault.principal_key_perms(reg.caller_object_id)
    if not blocked:
        return None
    caller = f"appid=04b07795-8ddb-461a-bbee-02f9e1bf7b46;oid={reg.caller_object_id}"
    where = f"{vault.name};location={vault.location}"
    if vault.uses_rbac:
        return _kv_error(
            403,
            "Forbidden",
            "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny "
            "assignments or role definitions were changed recently, please observe propagation time.\r\n"
            f"Caller: {caller}\r\nAction: 'Microsoft.KeyVault/vaults/keys/{perm}'\r\n"
            f"Resource: '{vault.arm_id.lower()}'\r\nAssignment: (not found)\r\nVault: {where}\r\n",
            "ForbiddenByRbac",
        )
    return _kv_error(
        403,
        "Forbidden",
        f"The user, group or application '{caller};iss=https://sts.windows.net/{vault.tenant_id}/' does "
        f"not have keys {perm} permission on key vault '{where}'. For help resolving this issue, please "
        "see https://go.microsoft.com/fwlink/?linkid=2125287",
        "ForbiddenByPolicy",
    )


def _attributes(reg: VaultRegistry, vault: Vault, ver: KeyVersion) -> dict[str, Any]:
    attrs: dict[str, Any] = {"enabled": ver.enabled}
    if ver.not_before is not None:
        attrs["nbf"] = _ts(ver.not_before)
    if ver.expires is not None:
        attrs["exp"] = _ts(ver.expires)
    attrs["created"] = _ts(ver.created)
    attrs["updated"] = _ts(ver.updated)
    attrs["recoveryLevel"] = vault.recovery_level()
    if vault.soft_delete:  # recorded: absent on a vault without soft delete ("Purgeable")
        attrs["recoverableDays"] = vault.retention_days
    return attrs


def _bundle(reg: VaultRegistry, vault: Vault, key: Key, ver: KeyVersion) -> dict[str, Any]:
    jwk: dict[str, Any] = {"kid": f"https://{vault.host}/keys/{key.name}/{ver.version}", "kty": ver.kty}
    jwk["key_ops"] = list(ver.key_ops)
    jwk.update(ver.material)
    out: dict[str, Any] = {"key": jwk, "attributes": _attributes(reg, vault, ver)}
    if ver.tags:
        out["tags"] = dict(ver.tags)
    return out


def _deleted_bundle(reg: VaultRegistry, vault: Vault, key: Key) -> dict[str, Any]:
    out = _bundle(reg, vault, key, key.current)
    if vault.soft_delete and key.deleted_at is not None:
        out["recoveryId"] = f"https://{vault.host}/deletedkeys/{key.name}"
        out["deletedDate"] = _ts(key.deleted_at)
        out["scheduledPurgeDate"] = _ts(key.deleted_at + timedelta(days=vault.retention_days))
    return out


def _page(reg: VaultRegistry, vault: Vault, req: Request, api: str, items: list[dict[str, Any]]) -> Response:
    """One page of a list; nextLink carries an explicit :443 like the real service (§9.2)."""
    raw_max = req.q("maxresults")
    try:
        size = _PAGE_MAX if raw_max is None else int(raw_max)
        start = int(req.q("$skiptoken") or 0)
    except ValueError:
        return _kv_error(400, "BadParameter", "maxresults or $skiptoken is not a valid number.")
    if not 1 <= size <= _PAGE_MAX:
        return _kv_error(400, "BadParameter", f"The value of maxresults must be between 1 and {_PAGE_MAX}.")
    end = start + size
    next_link = None
    if end < len(items):
        next_link = f"https://{vault.host}:443{req.path}?api-version={api}&$skiptoken={end}&maxresults={size}"
    return Response(200, {"value": items[start:end], "nextLink": next_link})


def _not_found(reg: VaultRegistry, name: str, version: str = "") -> Response:
    return _kv_error(404, "KeyNotFound", KEY_NOT_FOUND.format(name=f"{name}/{version}" if version else name))


def _list_keys(reg: VaultRegistry, vault: Vault, req: Request, api: str) -> Response:
    items = []
    for key in vault.keys.values():
        if key.deleted_at is None:
            item: dict[str, Any] = {
                "kid": f"https://{vault.host}/keys/{key.name}",
                "attributes": _attributes(reg, vault, key.current),
            }
            if key.current.tags:
                item["tags"] = dict(key.current.tags)
            items.append(item)
    return _page(reg, vault, req, api, items)


def _list_versions(reg: VaultRegistry, vault: Vault, req: Request, api: str, name: str) -> Response:
    key = reg.live_key(vault, name)
    if key is None:
        return _not_found(reg, name)
    items = []
    # recorded: versions come sorted by version id, not by creation time
    for ver in sorted(key.versions, key=lambda v: v.version.lower()):
        item: dict[str, Any] = {
            "kid": f"https://{vault.host}/keys/{key.name}/{ver.version}",
            "attributes": _attributes(reg, vault, ver),
        }
        if ver.tags:
            item["tags"] = dict(ver.tags)
        items.append(item)
    return _page(reg, vault, req, api, items)


def _get_key(reg: VaultRegistry, vault: Vault, name: str, version: str) -> Response:
    key = reg.live_key(vault, name)
    if key is None:
        return _not_found(reg, name, version)
    ver = key.current if version == "" else key.find(version)
    if ver is None:
        return _not_found(reg, name, version)
    return Response(200, _bundle(reg, vault, key, ver))


def _create_key(reg: VaultRegistry, vault: Vault, name: str, req: Request) -> Response:
    try:
        body = req.json() or {}
    except ValueError:
        return _kv_error(400, "BadParameter", "The request body is not valid JSON.")
    if not isinstance(body, dict):
        return _kv_error(400, "BadParameter", "The request body must be a JSON object.")
    kty = str(body.get("kty", ""))
    if kty not in ("RSA", "RSA-HSM", "EC", "EC-HSM"):
        return _kv_error(400, "BadParameter", f"Property 'kty' has an invalid value: '{kty}'.")
    if kty.endswith("-HSM") and vault.sku.lower() != "premium" and not vault.managed_hsm:
        return _kv_error(400, "BadParameter", f"Key type '{kty}' is only supported on premium vaults.")
    size = int(body.get("key_size") or 2048)
    if kty.startswith("RSA") and size not in (2048, 3072, 4096):
        return _kv_error(400, "BadParameter", f"Property 'key_size' has an invalid value: {size}.")
    curve = str(body.get("crv") or "P-256")
    if kty.startswith("EC") and curve not in ("P-256", "P-256K", "P-384", "P-521"):
        return _kv_error(400, "BadParameter", f"Property 'crv' has an invalid value: '{curve}'.")
    existing = vault.keys.get(name.lower())
    if existing is not None and existing.deleted_at is not None:
        return _kv_error(
            409,
            "Conflict",
            f"Key {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
            "in this state, the key can only be recovered or purged.",
            "ObjectIsDeletedButRecoverable",
        )
    attrs = _attributes_of(body)
    if attrs is None:
        return _kv_error(400, "BadParameter", "Property 'attributes' must be an object.")
    now = reg.clock()
    default_ops = (
        ["sign", "verify"]
        if kty.startswith("EC")
        else ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
    )
    ver = KeyVersion(
        version=_new_version_id(),
        kty=kty,
        key_ops=list(body.get("key_ops") or default_ops),
        material=_fake_material(kty, size, curve),
        enabled=bool(attrs.get("enabled", True)),
        created=now,
        updated=now,
        expires=_from_ts(attrs.get("exp")),
        not_before=_from_ts(attrs.get("nbf")),
        tags=dict(body.get("tags") or {}),
    )
    key = existing or Key(name=name)
    key.versions.append(ver)
    vault.keys[name.lower()] = key
    reg.changed = True  # a new current version can revive a versionless cluster
    return Response(200, _bundle(reg, vault, key, ver))


def _policy_json(reg: VaultRegistry, vault: Vault, key: Key) -> dict[str, Any]:
    policy = dict(key.rotation_policy or {"lifetimeActions": [], "attributes": {}})
    return {"id": f"https://{vault.host}/keys/{key.name}/rotationpolicy", **policy}


def _get_policy(reg: VaultRegistry, vault: Vault, name: str) -> Response:
    key = reg.live_key(vault, name)
    if key is None:
        return _not_found(reg, name)
    return Response(200, _policy_json(reg, vault, key))


def _set_policy(reg: VaultRegistry, vault: Vault, name: str, req: Request) -> Response:
    """PUT rotationpolicy (recorded 2023): the policy echoed with its id and created/updated times."""
    key = reg.live_key(vault, name)
    if key is None:
        return _not_found(reg, name)
    try:
        body = req.json() or {}
    except ValueError:
        return _kv_error(400, "BadParameter", "The request body is not valid JSON.")
    actions = body.get("lifetimeActions") if isinstance(body, dict) else None
    attrs = body.get("attributes") if isinstance(body, dict) else None
    if not isinstance(actions, list) or (attrs is not None and not isinstance(attrs, dict)):
        return _kv_error(400, "BadParameter", "A rotation policy needs a 'lifetimeActions' list.")
    expiry = (attrs or {}).get("expiryTime")
    if expiry is not None and _duration(expiry) is None:
        return _kv_error(400, "BadParameter", f"Property 'expiryTime' has an invalid value: '{expiry}'.")
    now = _ts(reg.clock())
    created = (key.rotation_policy or {}).get("attributes", {}).get("created", now)
    key.rotation_policy = {
        "lifetimeActions": actions,
        "attributes": {**({"expiryTime": expiry} if expiry else {}), "created": created, "updated": now},
    }
    return Response(200, _policy_json(reg, vault, key))


def _rotate(reg: VaultRegistry, vault: Vault, name: str) -> Response:
    """POST rotate (recorded 2023): a new current version like the last one; with a policy
    `expiryTime` it expires that long after its creation."""
    key = reg.live_key(vault, name)
    if key is None:
        return _not_found(reg, name)
    last = key.current
    now = reg.clock()
    expiry = _duration(((key.rotation_policy or {}).get("attributes") or {}).get("expiryTime"))
    size = len(base64.urlsafe_b64decode(last.material["n"] + "==")) * 8 if "n" in last.material else 2048
    ver = KeyVersion(
        version=_new_version_id(),
        kty=last.kty,
        key_ops=list(last.key_ops),
        material=_fake_material(last.kty, size, last.material.get("crv", "P-256")),
        enabled=True,
        created=now,
        updated=now,
        expires=now + expiry if expiry is not None else None,
        tags=dict(last.tags),
    )
    key.versions.append(ver)
    reg.changed = True  # a new current version: versionless clusters follow it (rule K1)
    return Response(200, _bundle(reg, vault, key, ver))


def _update_key(reg: VaultRegistry, vault: Vault, name: str, version: str, req: Request) -> Response:
    key = reg.live_key(vault, name)
    ver = None if key is None else key.current if version == "" else key.find(version)
    if key is None or ver is None:
        return _not_found(reg, name, version)
    try:
        body = req.json() or {}
    except ValueError:
        return _kv_error(400, "BadParameter", "The request body is not valid JSON.")
    if not isinstance(body, dict):
        return _kv_error(400, "BadParameter", "The request body must be a JSON object.")
    attrs = _attributes_of(body)
    if attrs is None:
        return _kv_error(400, "BadParameter", "Property 'attributes' must be an object.")
    if "enabled" in attrs and attrs["enabled"] is not None:
        ver.enabled = bool(attrs["enabled"])  # rule K1: disabling the used version revokes
    if "exp" in attrs:
        ver.expires = _from_ts(attrs["exp"])
    if "nbf" in attrs:
        ver.not_before = _from_ts(attrs["nbf"])
    if body.get("tags") is not None:
        ver.tags = dict(body["tags"])
    if body.get("key_ops") is not None:
        ver.key_ops = list(body["key_ops"])
    ver.updated = reg.clock()
    reg.changed = True
    return Response(200, _bundle(reg, vault, key, ver))


def _delete_key(reg: VaultRegistry, vault: Vault, name: str) -> Response:
    key = reg.live_key(vault, name)
    if key is None:
        return _not_found(reg, name)
    if vault.soft_delete:
        key.deleted_at = reg.clock()
    else:
        del vault.keys[name.lower()]
    reg.changed = True  # rule K1: deleting the used key revokes
    return Response(200, _deleted_bundle(reg, vault, key))


def _deleted_key(reg: VaultRegistry, vault: Vault, name: str) -> Key | None:
    key = vault.keys.get(name.lower())
    return key if key is not None and key.deleted_at is not None else None


def _deleted_not_found(reg: VaultRegistry, name: str) -> Response:
    return _kv_error(404, "KeyNotFound", f"Deleted Key not found: {name}")


def _list_deleted(reg: VaultRegistry, vault: Vault, req: Request, api: str) -> Response:
    items = []
    for key in vault.keys.values():
        if key.deleted_at is not None:
            b = _deleted_bundle(reg, vault, key)
            item = {k: v for k, v in b.items() if k != "key"}
            item["kid"] = f"https://{vault.host}/keys/{key.name}"
            items.append(item)
    return _page(reg, vault, req, api, items)


def _get_deleted(reg: VaultRegistry, vault: Vault, name: str) -> Response:
    key = _deleted_key(reg, vault, name)
    if key is None:
        return _deleted_not_found(reg, name)
    return Response(200, _deleted_bundle(reg, vault, key))


def _recover(reg: VaultRegistry, vault: Vault, name: str) -> Response:
    key = _deleted_key(reg, vault, name)
    if key is None:
        return _deleted_not_found(reg, name)
    key.deleted_at = None
    reg.changed = True  # rule K2: access returns, service resumes
    return Response(200, _bundle(reg, vault, key, key.current))


def _purge(reg: VaultRegistry, vault: Vault, name: str) -> Response:
    key = _deleted_key(reg, vault, name)
    if key is None:
        return _deleted_not_found(reg, name)
    if vault.purge_protection:
        return _kv_error(
            403,
            "Forbidden",
            'Operation "purge" is not allowed because purge protection is enabled for this vault.',
        )
    del vault.keys[name.lower()]
    reg.changed = True
    return Response(204)


DataHandler = Callable[[VaultRegistry, Vault, Request, str, list[str]], Response]


@dataclass(frozen=True)
class DataRoute:
    """One data-plane row: method, collection (`keys` or `deletedkeys`), the segments after it (None:
    a key name or version, a string: that word in any case), the permission it needs, the handler.
    `not_last`: a word the last segment must not be (a key named `rotationpolicy` is never read)."""

    method: str
    collection: str
    shape: tuple[str | None, ...]
    permission: str
    handler: DataHandler
    not_last: str | None = None

    def matches(self, method: str, collection: str, rest: list[str]) -> bool:
        return (
            method == self.method
            and collection == self.collection
            and len(rest) == len(self.shape)
            and all(want is None or got.lower() == want for want, got in zip(self.shape, rest, strict=True))
            and not (self.not_last is not None and rest and rest[-1].lower() == self.not_last)
        )


_N = None  # a key name or version segment
# First match wins: `versions` and `rotationpolicy` come before a key version in the same place.
ROUTES: tuple[DataRoute, ...] = (
    DataRoute("GET", "keys", (), "list", lambda reg, v, req, api, r: _list_keys(reg, v, req, api)),
    DataRoute(
        "GET",
        "keys",
        (_N, "versions"),
        "list",
        lambda reg, v, req, api, r: _list_versions(reg, v, req, api, r[0]),
    ),
    DataRoute(
        "GET",
        "keys",
        (_N, "rotationpolicy"),
        "getrotationpolicy",
        lambda reg, v, req, api, r: _get_policy(reg, v, r[0]),
    ),
    DataRoute(
        "GET",
        "keys",
        (_N,),
        "get",
        lambda reg, v, req, api, r: _get_key(reg, v, r[0], ""),
        not_last="rotationpolicy",
    ),
    DataRoute("GET", "keys", (_N, _N), "get", lambda reg, v, req, api, r: _get_key(reg, v, r[0], r[1])),
    DataRoute(
        "POST", "keys", (_N, "create"), "create", lambda reg, v, req, api, r: _create_key(reg, v, r[0], req)
    ),
    DataRoute("POST", "keys", (_N, "rotate"), "rotate", lambda reg, v, req, api, r: _rotate(reg, v, r[0])),
    DataRoute(
        "PUT",
        "keys",
        (_N, "rotationpolicy"),
        "setrotationpolicy",
        lambda reg, v, req, api, r: _set_policy(reg, v, r[0], req),
    ),
    DataRoute(
        "PATCH", "keys", (_N,), "update", lambda reg, v, req, api, r: _update_key(reg, v, r[0], "", req)
    ),
    DataRoute(
        "PATCH", "keys", (_N, _N), "update", lambda reg, v, req, api, r: _update_key(reg, v, r[0], r[1], req)
    ),
    DataRoute("DELETE", "keys", (_N,), "delete", lambda reg, v, req, api, r: _delete_key(reg, v, r[0])),
    DataRoute("GET", "deletedkeys", (), "list", lambda reg, v, req, api, r: _list_deleted(reg, v, req, api)),
    DataRoute("GET", "deletedkeys", (_N,), "get", lambda reg, v, req, api, r: _get_deleted(reg, v, r[0])),
    DataRoute(
        "POST", "deletedkeys", (_N, "recover"), "recover", lambda reg, v, req, api, r: _recover(reg, v, r[0])
    ),
    DataRoute("DELETE", "deletedkeys", (_N,), "purge", lambda reg, v, req, api, r: _purge(reg, v, r[0])),
)
