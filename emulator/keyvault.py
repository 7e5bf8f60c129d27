"""Emulated Azure Key Vault: the registry of vaults and keys behind the data plane (keys) and the
`Microsoft.KeyVault/vaults` ARM resource (served by emulator/resources/keyvault_data.py and
keyvault_mgmt.py).

Why it exists: the controller talks to Key Vault through the real `azure-keyvault-keys` and
`azure-mgmt-keyvault` SDKs; this module answers them the way the service does (docs/azure-wire.md,
§10), and tells the Log Analytics side of the emulator whether a cluster may use a key (rule C7, C8)
and whether a cluster that uses one is revoked (rules K1, K2, K3).

Vault hosts are real names (`<vault>.vault.azure.net`, `<hsm>.managedhsm.azure.net`): the HTTPS server
routes by the Host header, so the SDK's challenge check (resource `https://vault.azure.net`) passes. In a
sovereign cloud (emulator `--cloud`) the suffixes, the challenge resource and its authority are that cloud's
(`vault.usgovcloudapi.net`, `managedhsm.azure.cn`, ...).

Seed format (`VaultRegistry.seed`), every field but `name` optional:

```
{"name": "kvprod",                       # 3-24 chars, globally unique (DNS name)
 "subscription": "<guid>", "resourceGroup": "rg-keys", "location": "westeurope",
 "tenantId": "<guid>", "sku": "standard",
 "managedHsm": false,                     # true: host <name>.managedhsm.azure.net, RBAC only
 "softDelete": true, "softDeleteRetentionDays": 90,
 "purgeProtection": true,                 # false/absent: never set (absent from ARM responses)
 "rbac": false,                           # true: access policies ignored, roleAssignments used
 "accessPolicies": [{"objectId": "<guid>", "tenantId": "<guid>"?, "keys": ["get", "wrapKey", "unwrapKey"]}],
 "roleAssignments": [{"principalId": "<guid>", "role": "Key Vault Crypto Service Encryption User",
                      "scope": "/"}],         # scope: "/", "/keys" or "/keys/<name>" (default "/")
 "callerDenied": false,                   # true: every data-plane call by the caller gets 403;
                                          # a list (["get", "list"]) denies only those permissions
 "enforceCallerAccess": false,            # true: the caller needs an access policy / role like anyone
 "unavailable": false,                    # true: data plane answers 503 (rule K3 fault); after
                                          # 30 min of it clusters on the vault count as revoked
 "unavailableSince": "ISO" | null,        # when that outage began (default: now)
 "tags": {},
 "keys": [{"name": "k1", "kty": "RSA", "tags": {},
           "versions": [{"version": "<32 hex>", "enabled": true, "created": "ISO",
                         "expires": "ISO" | null, "notBefore": "ISO" | null}]}]}   # oldest first
```
Versions are ordered oldest first; the last one is the key's current version. Missing version ids are
generated, missing `created` is the simulated clock's now.
"""

from __future__ import annotations

import base64
import functools
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from emulator.clouds import PUBLIC, CloudHosts
from emulator.http import Request, Response, arm_error

DEFAULT_CALLER_OBJECT_ID = "c0ffee00-0000-4000-8000-00000000ca11"
DEFAULT_TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
DEFAULT_LOCATION = "westeurope"

# Data-plane api-versions azure-keyvault-keys can send (§9.2); anything else is rejected like the
# service does, so a client pinned to a bogus version is noticed in tests.
DATAPLANE_API_VERSIONS = frozenset(
    {"2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5-preview.1", "7.5", "7.6", "2025-07-01"}
)
LATEST_DATAPLANE_API = "2025-07-01"
# Microsoft.KeyVault/vaults api-versions (azure-mgmt-keyvault 14.1.0 default is 2026-05-15, §10).
ARM_API_VERSIONS = (
    "2015-06-01",
    "2016-10-01",
    "2018-02-14",
    "2019-09-01",
    "2021-04-01-preview",
    "2021-06-01-preview",
    "2021-10-01",
    "2021-11-01-preview",
    "2022-02-01-preview",
    "2022-07-01",
    "2022-11-01",
    "2023-02-01",
    "2023-07-01",
    "2024-04-01-preview",
    "2024-11-01",
    "2024-12-01-preview",
    "2025-05-01",
    "2026-05-15",
)

# Rule K3: storage rides Key Vault errors out from its cache for about this long.
OUTAGE_TOLERANCE = timedelta(minutes=30)
# Key permissions a Log Analytics cluster identity needs (rule C7).
CLUSTER_KEY_PERMISSIONS = ("get", "wrapkey", "unwrapkey")
_CLUSTER_KEY_PERMISSION_SET = frozenset(CLUSTER_KEY_PERMISSIONS)


@functools.lru_cache(maxsize=4096)
def _uri_host(uri: str) -> str | None:
    """The lower-case host of a vault URI (or bare host name); None when it does not parse. Every
    request rechecks each keyed cluster's key (rules K1-K3): the parse is kept, not repeated."""
    try:
        return (urlsplit(uri if "//" in uri else f"https://{uri}").hostname or "").lower()
    except ValueError:
        return None
# RBAC roles whose data actions include keys/read + wrap + unwrap (rule C7, RBAC vaults).
CLUSTER_KEY_ROLES = frozenset(
    {
        "key vault crypto service encryption user",
        "managed hsm crypto service encryption user",  # the Managed HSM local RBAC built-in role
        "managed hsm crypto user",
        "key vault crypto user",
        "key vault crypto officer",
        "key vault administrator",
    }
)
# The Managed HSM local RBAC built-in roles (learn.microsoft.com: managed-hsm/built-in-roles): a role
# assignment's roleDefinitionId ends with one of these ids.
HSM_ROLE_IDS = {
    "managed hsm administrator": "a290e904-7015-4bba-90c8-60543313cdb4",
    "managed hsm crypto officer": "515eb02d-2335-4d2d-92f2-b1cbdf9c3778",
    "managed hsm crypto user": "21dbd100-6940-42c2-9190-5d6cb909625b",
    "managed hsm policy administrator": "4bd23610-cdcf-4971-bdee-bdc562cc28e4",
    "managed hsm crypto auditor": "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3",
    "managed hsm crypto service encryption user": "33413926-3206-4cdd-b39a-83574fe37a17",
    "managed hsm crypto service release user": "21dbd100-6940-42c2-9190-5d6cb909625c",
    "managed hsm backup": "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8",
    "managed hsm restore": "6efe6056-5259-49d2-8b3d-d3d73544b20b",
}
ALL_KEY_PERMISSIONS = (
    "encrypt", "decrypt", "wrapkey", "unwrapkey", "sign", "verify", "get", "list", "create", "update",
    "import", "delete", "backup", "restore", "recover", "purge", "release", "rotate",
    "getrotationpolicy", "setrotationpolicy",
)  # fmt: skip

# Log Analytics texts for a key it refuses (docs/azure-wire.md; rule C7 / C8).
MSG_BAD_FORMAT = "KeyVaultProperties isn't empty but has a bad format."
MSG_VALIDATE = (
    "Failed to validate key in Key Vault. Could be due to lack of permissions or when key doesn't exist."
)
MSG_NOT_RECOVERABLE = "Key isn't recoverable. Key Vault must be set to Soft-delete and Purge-protection."
# No public text exists for C8; this one is the emulator's own, worded like the service's messages.
MSG_REGION_TENANT = (
    "Key Vault '{vault}' is in region '{vloc}' and tenant '{vtenant}', but the cluster is in region "
    "'{cloc}' and tenant '{ctenant}'. Key Vault and cluster must be in the same region and tenant."
)
KEY_NOT_FOUND = (
    "A key with (name/id) {name} was not found in this key vault. If you recently deleted this key you "
    "may be able to recover it using the correct recovery command. For help resolving this issue, please "
    "see https://go.microsoft.com/fwlink/?linkid=2125182"
)

_NAME_RE = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_VERSION_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_VAULT_NAME_RE = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{1,22}[A-Za-z0-9]$")
_PAGE_MAX = 25


class SeedError(ValueError):
    """A seed document does not follow the format in the module docstring."""


@dataclass
class KeyVersion:
    version: str
    kty: str
    key_ops: list[str]
    material: dict[str, str]  # the JWK public parts: n/e or crv/x/y, base64url
    enabled: bool
    created: datetime
    updated: datetime
    expires: datetime | None = None
    not_before: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def usable_at(self, now: datetime) -> bool:
        """A version can wrap/unwrap only while enabled and inside its nbf..exp window (rule K1)."""
        if not self.enabled:
            return False
        if self.expires is not None and self.expires <= now:
            return False
        return not (self.not_before is not None and self.not_before > now)


@dataclass
class Key:
    name: str
    versions: list[KeyVersion] = field(default_factory=list)  # oldest first; last = current
    deleted_at: datetime | None = None
    rotation_policy: dict[str, Any] | None = None  # as PUT (lifetimeActions, attributes.expiryTime)

    @property
    def current(self) -> KeyVersion:
        return self.versions[-1]

    def find(self, version: str) -> KeyVersion | None:
        for v in self.versions:
            if v.version.lower() == version.lower():
                return v
        return None


@dataclass
class AccessPolicy:
    tenant_id: str
    object_id: str
    application_id: str | None
    permissions: dict[str, list[str]]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tenantId": self.tenant_id, "objectId": self.object_id}
        if self.application_id:
            out["applicationId"] = self.application_id
        out["permissions"] = {k: list(v) for k, v in self.permissions.items()}
        return out

    def key_perms(self) -> set[str]:
        return {p.lower() for p in self.permissions.get("keys", [])}


@dataclass
class Vault:
    name: str
    subscription: str
    resource_group: str
    location: str
    tenant_id: str
    sku: str = "standard"
    managed_hsm: bool = False
    soft_delete: bool = True
    retention_days: int = 90
    purge_protection: bool | None = None  # None: never set, absent from ARM responses (§10)
    rbac: bool = False
    access_policies: list[AccessPolicy] = field(default_factory=list)
    # {"principalId", "role" (its name), "scope" ("/", "/keys", "/keys/<name>"), "name" (a guid)}
    role_assignments: list[dict[str, str]] = field(default_factory=list)
    caller_denied: bool | list[str] = False
    enforce_caller: bool = False
    unavailable_since: datetime | None = None  # rule K3: an outage in progress since then

    @property
    def unavailable(self) -> bool:
        return self.unavailable_since is not None

    tags: dict[str, str] = field(default_factory=dict)
    keys: dict[str, Key] = field(default_factory=dict)  # lower-case name -> key (live or soft-deleted)
    extra_props: dict[str, Any] = field(default_factory=dict)  # other ARM properties, echoed back
    created_at: datetime | None = None  # ARM systemData
    modified_at: datetime | None = None

    cloud: CloudHosts = PUBLIC  # the Azure the vault lives in: its DNS suffixes and authority

    @property
    def suffix(self) -> str:
        return self.cloud.hsm_suffix if self.managed_hsm else self.cloud.vault_suffix

    @property
    def host(self) -> str:
        return f"{self.name.lower()}.{self.suffix}"

    @property
    def uri(self) -> str:
        return f"https://{self.host}/"

    @property
    def resource(self) -> str:
        return f"https://{self.suffix}"

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.KeyVault/vaults/{self.name}"
        )

    @property
    def uses_rbac(self) -> bool:
        return self.rbac or self.managed_hsm

    def recovery_level(self) -> str:
        """The key attribute `recoveryLevel` that follows from the vault settings (§9.2)."""
        if not self.soft_delete:
            return "Purgeable"
        prefix = "Recoverable" if self.retention_days >= 90 else "CustomizedRecoverable"
        return prefix if self.purge_protection else f"{prefix}+Purgeable"

    def recoverable(self) -> bool:
        """Log Analytics' notion: soft delete and purge protection both on (rule C7)."""
        return self.soft_delete and bool(self.purge_protection)

    def principal_key_perms(self, principal_id: str, key_name: str | None = None) -> set[str]:
        """Key permissions a principal holds in this vault, by access policy or role (rule C7); on key
        `key_name`, a role counts only when its scope covers that key ("/", "/keys", "/keys/<name>")."""
        pid = principal_id.lower()
        if self.uses_rbac:
            roles = {
                r["role"].lower()
                for r in self.role_assignments
                if r["principalId"].lower() == pid and (key_name is None or scope_covers_key(r, key_name))
            }
            roles &= CLUSTER_KEY_ROLES
            if roles - {"key vault crypto service encryption user"}:  # crypto user / officer / admin
                return set(ALL_KEY_PERMISSIONS)
            return set(CLUSTER_KEY_PERMISSIONS) if roles else set()
        perms: set[str] = set()
        for p in self.access_policies:
            if p.object_id.lower() == pid:
                perms |= p.key_perms()
        if "all" in perms:
            perms |= set(ALL_KEY_PERMISSIONS)
        return perms


# ----------------------------------------------------------------------------------------------- helpers


def scope_covers_key(assignment: dict[str, str], key_name: str) -> bool:
    """A role assignment at "/" or "/keys" covers every key; at "/keys/<name>" that key only."""
    scope = "/" + "/".join(p for p in assignment.get("scope", "/").lower().split("/") if p)
    return scope in ("/", "/keys") or scope == f"/keys/{key_name.lower()}"


def role_assignment(principal_id: str, role: str, scope: str = "/") -> dict[str, str]:
    """One stored role assignment; its name is a guid, as the service makes it."""
    norm = "/" + "/".join(p for p in scope.split("/") if p)
    return {"principalId": principal_id, "role": role, "scope": norm, "name": str(uuid.uuid4())}


# Data-plane api-versions in release order (dates and numbers do not sort as strings).
_API_RANK = {v: i for i, v in enumerate(("2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4"), start=1)}
_API_RANK.update({"7.5-preview.1": 7, "7.5": 7, "7.6": 8, "2025-07-01": 9})


def _add_75_attributes(body: Any) -> None:
    """api 7.5 and later: a key bundle's attributes say `exportable` and, for a software-protected key,
    `hsmPlatform` "0" (recorded 2023)."""
    if not isinstance(body, dict) or not isinstance(body.get("key"), dict):
        return
    attrs = body.get("attributes")
    if isinstance(attrs, dict):
        attrs.setdefault("exportable", False)
        if not str(body["key"].get("kty", "")).endswith("-HSM"):
            attrs.setdefault("hsmPlatform", "0")


_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$")


def _duration(text: Any) -> timedelta | None:
    """A rotation policy's ISO-8601 duration (`P30D`, `P1Y`); months as 30 days, years as 365."""
    m = _DURATION.match(str(text or ""))
    if not m or not any(m.groups()):
        return None
    years, months, days = (int(g or 0) for g in m.groups())
    return timedelta(days=365 * years + 30 * months + days)


def _iso(dt: datetime) -> str:
    """ARM systemData times: ISO-8601 with milliseconds and Z."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _fake_material(kty: str, size: int, curve: str) -> dict[str, str]:
    """Public JWK parts that parse in the SDK; no real crypto is needed by anyone."""
    if kty.startswith("EC"):
        width = {"P-256": 32, "P-256K": 32, "P-384": 48, "P-521": 66}[curve]
        return {
            "crv": curve,
            "x": _b64url(secrets.token_bytes(width)),
            "y": _b64url(secrets.token_bytes(width)),
        }
    modulus = bytearray(secrets.token_bytes(size // 8))
    modulus[0] |= 0x80  # a real modulus has its top bit set
    modulus[-1] |= 0x01  # and is odd
    return {"n": _b64url(bytes(modulus)), "e": "AQAB"}


def _new_version_id() -> str:
    return secrets.token_hex(16)


def _ts(dt: datetime) -> int:
    return int(dt.timestamp())


def _from_ts(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def _parse_time(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise SeedError(f"{what}: not an ISO-8601 time: {value!r}") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _norm_location(loc: str) -> str:
    return loc.replace(" ", "").lower()


def _perm_list(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise ValueError("permissions must be a list of strings")
    return list(raw)


def _kv_error(status: int, code: str, message: str, inner: str | None = None) -> Response:
    extra: dict[str, Any] = {"innererror": {"code": inner}} if inner else {}
    return arm_error(status, code, message, **extra)


def _attributes_of(body: dict[str, Any]) -> dict[str, Any] | None:
    """A key request's `attributes` object ({} when absent); None when it is not an object."""
    attrs = body.get("attributes")
    if attrs is None:
        return {}
    return attrs if isinstance(attrs, dict) else None


def _parse_policy(raw: Any, default_tenant: str) -> AccessPolicy:
    """One ARM/seed access policy entry; seed entries may give `keys` at top level for brevity."""
    if not isinstance(raw, dict) or not isinstance(raw.get("objectId"), str) or not raw["objectId"]:
        raise ValueError("an access policy needs an objectId")
    perms_raw = raw.get("permissions")
    if perms_raw is None:
        perms_raw = {k: raw[k] for k in ("keys", "secrets", "certificates", "storage") if k in raw}
    if not isinstance(perms_raw, dict):
        raise ValueError("access policy permissions must be an object")
    perms = {k: _perm_list(v) for k, v in perms_raw.items()}
    perms.setdefault("keys", [])
    return AccessPolicy(
        tenant_id=str(raw.get("tenantId") or default_tenant),
        object_id=raw["objectId"],
        application_id=raw.get("applicationId"),
        permissions=perms,
    )


# ----------------------------------------------------------------------------------------------- registry


class VaultRegistry:
    """All vaults of the emulated cloud. Thread-safe: one re-entrant lock guards every state change,
    and `on_change` is called after the lock is released (so the caller may call back in)."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        on_change: Callable[[], None],
        caller_object_id: str = DEFAULT_CALLER_OBJECT_ID,
        cloud: CloudHosts = PUBLIC,
    ) -> None:
        self.cloud = cloud
        self.clock = clock
        self._on_change = on_change
        self._lock = threading.RLock()
        self.vaults: dict[str, Vault] = {}  # lower-case vault name (global DNS name) -> vault
        self.changed = False
        self.caller_object_id = caller_object_id

    # ------------------------------------------------------------------ public: lifecycle and seeding

    def reset(self) -> None:
        with self._lock:
            self.vaults.clear()
        self._on_change()

    def seed(self, vaults: list[dict[str, Any]]) -> None:
        """Add or replace vaults (format in the module docstring). Raises SeedError on a bad document."""
        with self._lock:
            built = [self._build_vault(doc) for doc in vaults]
            for v in built:
                self.vaults[v.name.lower()] = v
        self._on_change()

    def principal_grant(self, vault_uri: str, object_id: str, permissions: list[str]) -> None:
        """Give a principal key permissions through an access policy (merged with any it has)."""
        with self._lock:
            vault = self._require_vault(vault_uri)
            self.merge_policy(vault, AccessPolicy(vault.tenant_id, object_id, None, {"keys": permissions}))
        self._on_change()

    def principal_revoke(self, vault_uri: str, object_id: str) -> None:
        """Remove every access policy and role assignment of a principal (rule K2 fault)."""
        with self._lock:
            vault = self._require_vault(vault_uri)
            oid = object_id.lower()
            vault.access_policies = [p for p in vault.access_policies if p.object_id.lower() != oid]
            vault.role_assignments = [r for r in vault.role_assignments if r["principalId"].lower() != oid]
        self._on_change()

    def role_grant(self, vault_uri: str, principal_id: str, role: str, scope: str = "/") -> None:
        """Add a data-plane role assignment (a Managed HSM lists it on its roleAssignments API)."""
        with self._lock:
            self._require_vault(vault_uri).role_assignments.append(role_assignment(principal_id, role, scope))
        self._on_change()

    def set_key_enabled(self, vault_uri: str, key_name: str, key_version: str, enabled: bool) -> None:
        """Disable or re-enable a key version out of band (rule K1/K2 fault). "" = current version."""
        with self._lock:
            key = self.live_key(self._require_vault(vault_uri), key_name)
            ver = None if key is None else key.current if key_version == "" else key.find(key_version)
            if ver is None:
                raise KeyError(f"no key {key_name}/{key_version} in {vault_uri}")
            ver.enabled = enabled
            ver.updated = self.clock()
        self._on_change()

    def set_unavailable(self, vault_uri: str, unavailable: bool) -> None:
        """Make the vault's data plane answer 503 (rule K3: transient outage, ridden out from cache)."""
        with self._lock:
            vault = self._require_vault(vault_uri)
            if not unavailable:
                vault.unavailable_since = None
            elif vault.unavailable_since is None:
                vault.unavailable_since = self.clock()
        self._on_change()

    def set_caller_denied(self, vault_uri: str, denied: bool | list[str]) -> None:
        """Deny the caller (our tool) on a vault's data plane: all operations, or the listed ones."""
        with self._lock:
            self._require_vault(vault_uri).caller_denied = denied

    # ------------------------------------------------------------------ public: queries for the cluster side

    def settled_until(self, now: datetime) -> datetime:
        """The next time a key's usability can change by time alone (a version's nbf or exp, an
        outage reaching OUTAGE_TOLERANCE); datetime.max when none can. Changes made to the vaults
        call back (on_change), so until then a recheck would find what the last one found."""
        with self._lock:
            soon = datetime.max.replace(tzinfo=now.tzinfo)
            for vault in self.vaults.values():
                if vault.unavailable_since is not None and vault.unavailable_since + OUTAGE_TOLERANCE > now:
                    soon = min(soon, vault.unavailable_since + OUTAGE_TOLERANCE)
                for key in vault.keys.values():
                    for v in key.versions:
                        for when in (v.expires, v.not_before):
                            if when is not None and now < when < soon:
                                soon = when
            return soon

    def vault_available(self, key_vault_uri: str) -> bool:
        """False while the vault is in a seeded outage (rule K3); unknown vaults count as unavailable."""
        with self._lock:
            vault = self._vault_by_uri(key_vault_uri)
            return vault is not None and not vault.unavailable

    def vault_location(self, key_vault_uri: str) -> str | None:
        with self._lock:
            vault = self._vault_by_uri(key_vault_uri)
            return vault.location if vault else None

    def check_cluster_key(
        self,
        *,
        key_vault_uri: str,
        key_name: str,
        key_version: str,
        principal_id: str,
        tenant_id: str,
        cluster_location: str,
    ) -> Response | None:
        """None when a cluster may be set to this key; else Log Analytics' 400 (rules C7, C8).

        Order follows the service: the format first, then the vault's region/tenant, then a GET of the
        key with the cluster identity (permissions, existence, enabled), then the key's recoveryLevel.
        """
        if not self._well_formed(key_vault_uri, key_name, key_version):
            return arm_error(400, "BadRequest", MSG_BAD_FORMAT)  # rule C7: malformed keyVaultProperties
        with self._lock:
            vault = self._vault_by_uri(key_vault_uri)
            if vault is None:
                return arm_error(400, "BadRequest", MSG_VALIDATE)
            same_region = _norm_location(vault.location) == _norm_location(cluster_location)
            if not same_region or vault.tenant_id.lower() != tenant_id.lower():  # rule C8
                msg = MSG_REGION_TENANT.format(
                    vault=vault.name,
                    vloc=vault.location,
                    vtenant=vault.tenant_id,
                    cloc=cluster_location,
                    ctenant=tenant_id,
                )
                return arm_error(400, "BadRequest", msg)
            if not self._key_usable_locked(vault, key_name, key_version, principal_id):  # rule C7
                return arm_error(400, "BadRequest", MSG_VALIDATE)
            if not vault.recoverable():  # rule C7: soft delete + purge protection
                return arm_error(400, "BadRequest", MSG_NOT_RECOVERABLE)
        return None

    def key_usable(self, *, key_vault_uri: str, key_name: str, key_version: str, principal_id: str) -> bool:
        """False = a cluster on this key is revoked (rules K1, K2): version disabled, expired, not yet
        valid or deleted, key deleted, vault gone, or the principal's access removed."""
        with self._lock:
            vault = self._vault_by_uri(key_vault_uri)
            if vault is None:
                return False
            return self._key_usable_locked(vault, key_name, key_version, principal_id)

    # ------------------------------------------------------------------ public: HTTP entry points

    def handle_dataplane(self, req: Request) -> Response:
        """Serve one Key Vault data-plane request (§9)."""
        from emulator.resources import keyvault_data  # here, not on top: it imports this module

        with self._lock:
            self.changed = False
            resp = keyvault_data.serve(self, req)
            changed = self.changed
        if changed:
            self._on_change()
        return resp

    def handle_arm(
        self, req: Request, subscription: str, resource_group: str, vault_name: str | None
    ) -> Response:
        """Serve one `Microsoft.KeyVault/vaults` management request (§10).

        resource_group "" with vault_name None is the subscription-wide list
        (`/subscriptions/{s}/providers/Microsoft.KeyVault/vaults`, `vaults.list_by_subscription`)."""
        from emulator.resources import keyvault_mgmt  # here, not on top: it imports this module

        with self._lock:
            self.changed = False
            resp = keyvault_mgmt.serve(self, req, subscription, resource_group, vault_name)
            changed = self.changed
        if changed:
            self._on_change()
        return resp

    # ------------------------------------------------------------------ internals: lookup

    def _vault_by_uri(self, uri: str) -> Vault | None:
        host = _uri_host(uri)
        return None if host is None else self.vault_by_host(host)

    def vault_by_host(self, host: str) -> Vault | None:
        host = host.split(":")[0].lower()
        name, _, suffix = host.partition(".")
        vault = self.vaults.get(name)
        if vault is None or suffix != vault.suffix:
            return None
        return vault

    def _require_vault(self, uri: str) -> Vault:
        vault = self._vault_by_uri(uri)
        if vault is None:
            raise KeyError(f"no vault at {uri}")
        return vault

    @staticmethod
    def live_key(vault: Vault, name: str) -> Key | None:
        key = vault.keys.get(name.lower())
        return key if key is not None and key.deleted_at is None else None

    @staticmethod
    def _well_formed(uri: str, name: str, version: str) -> bool:
        """keyVaultProperties the service can parse (rule C7: malformed is rejected)."""
        try:
            parts = urlsplit(uri)
        except ValueError:
            return False
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
            return False
        return bool(_NAME_RE.match(name or "")) and (version == "" or bool(_VERSION_RE.match(version)))

    def _key_usable_locked(self, vault: Vault, name: str, version: str, principal_id: str) -> bool:
        if not vault.principal_key_perms(principal_id, name).issuperset(_CLUSTER_KEY_PERMISSION_SET):
            return False
        key = self.live_key(vault, name)
        if key is None:
            return False
        now = self.clock()
        if vault.unavailable_since is not None and now - vault.unavailable_since >= OUTAGE_TOLERANCE:
            return False  # rule K3: the unwrap cache ran out
        if version == "":  # versionless: the newest enabled version (auto-rotation)
            return any(v.usable_at(now) for v in key.versions)
        ver = key.find(version)
        return ver is not None and ver.usable_at(now)

    # ------------------------------------------------------------------ internals: seeding

    def _build_vault(self, doc: dict[str, Any]) -> Vault:
        if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
            raise SeedError("each vault needs a string 'name'")
        name = doc["name"]
        if not _VAULT_NAME_RE.match(name):
            raise SeedError(f"vault name {name!r} is not a valid Key Vault name (3-24 chars, a-z 0-9 -)")
        tenant = str(doc.get("tenantId", DEFAULT_TENANT_ID))
        try:
            policies = [_parse_policy(p, tenant) for p in doc.get("accessPolicies", [])]
        except ValueError as exc:
            raise SeedError(f"vault {name}: {exc}") from exc
        roles = []
        for r in doc.get("roleAssignments", []):
            if not isinstance(r, dict) or not r.get("principalId") or not r.get("role"):
                raise SeedError(f"vault {name}: a role assignment needs principalId and role")
            roles.append(role_assignment(str(r["principalId"]), str(r["role"]), str(r.get("scope") or "/")))
        retention = int(doc.get("softDeleteRetentionDays", 90))
        if not 7 <= retention <= 90:
            raise SeedError(f"vault {name}: softDeleteRetentionDays must be 7..90")
        vault = Vault(
            name=name,
            subscription=str(doc.get("subscription", DEFAULT_SUBSCRIPTION)),
            resource_group=str(doc.get("resourceGroup", "rg-keys")),
            location=str(doc.get("location", DEFAULT_LOCATION)),
            tenant_id=tenant,
            sku=str(doc.get("sku", "standard")),
            managed_hsm=bool(doc.get("managedHsm", False)),
            soft_delete=bool(doc.get("softDelete", True)),
            retention_days=retention,
            purge_protection=True if doc.get("purgeProtection") else None,
            rbac=bool(doc.get("rbac", False)),
            access_policies=policies,
            role_assignments=roles,
            caller_denied=doc.get("callerDenied", False),
            enforce_caller=bool(doc.get("enforceCallerAccess", False)),
            unavailable_since=(
                (_parse_time(doc.get("unavailableSince"), f"vault {name}") or self.clock())
                if doc.get("unavailable")
                else None
            ),
            tags=dict(doc.get("tags", {})),
            cloud=self.cloud,
        )
        for kdoc in doc.get("keys", []):
            key = self._build_key(name, kdoc)
            vault.keys[key.name.lower()] = key
        return vault

    def _build_key(self, vault_name: str, kdoc: Any) -> Key:
        if not isinstance(kdoc, dict) or not _NAME_RE.match(str(kdoc.get("name", ""))):
            raise SeedError(f"vault {vault_name}: each key needs a valid 'name' (a-z A-Z 0-9 -)")
        key = Key(name=kdoc["name"])
        kty = str(kdoc.get("kty", "RSA"))
        versions = kdoc.get("versions") or [{}]
        for i, vdoc in enumerate(versions):
            where = f"vault {vault_name} key {key.name} version #{i}"
            version = str(vdoc.get("version") or _new_version_id())
            if not _VERSION_RE.match(version):
                raise SeedError(f"{where}: version must be 32 hex characters")
            created = _parse_time(vdoc.get("created"), where) or self.clock()
            key.versions.append(
                KeyVersion(
                    version=version.lower(),
                    kty=kty,
                    key_ops=list(
                        vdoc.get("keyOps", ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"])
                    ),
                    material=_fake_material(
                        kty, int(kdoc.get("keySize", 2048)), str(kdoc.get("curve", "P-256"))
                    ),
                    enabled=bool(vdoc.get("enabled", True)),
                    created=created,
                    updated=_parse_time(vdoc.get("updated"), where) or created,
                    expires=_parse_time(vdoc.get("expires"), where),
                    not_before=_parse_time(vdoc.get("notBefore"), where),
                    tags=dict(vdoc.get("tags", kdoc.get("tags", {}))),
                )
            )
        return key

    @staticmethod
    def merge_policy(vault: Vault, new: AccessPolicy) -> None:
        """`add` semantics: union the permissions into the principal's existing entry."""
        for p in vault.access_policies:
            if p.object_id.lower() == new.object_id.lower() and p.application_id == new.application_id:
                for kind, perms in new.permissions.items():
                    have = p.permissions.setdefault(kind, [])
                    have.extend(x for x in perms if x.lower() not in {h.lower() for h in have})
                return
        vault.access_policies.append(new)

