"""Emulated Azure Key Vault: the data plane (keys) and the `Microsoft.KeyVault/vaults` ARM resource.

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
 "roleAssignments": [{"principalId": "<guid>", "role": "Key Vault Crypto Service Encryption User"}],
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
import re
import secrets
import threading
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

    def principal_key_perms(self, principal_id: str) -> set[str]:
        """Key permissions a principal holds in this vault, by access policy or role (rule C7)."""
        pid = principal_id.lower()
        if self.uses_rbac:
            roles = {r["role"].lower() for r in self.role_assignments if r["principalId"].lower() == pid}
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
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.RLock()
        self._vaults: dict[str, Vault] = {}  # lower-case vault name (global DNS name) -> vault
        self._changed = False
        self.caller_object_id = caller_object_id

    # ------------------------------------------------------------------ public: lifecycle and seeding

    def reset(self) -> None:
        with self._lock:
            self._vaults.clear()
        self._on_change()

    def seed(self, vaults: list[dict[str, Any]]) -> None:
        """Add or replace vaults (format in the module docstring). Raises SeedError on a bad document."""
        with self._lock:
            built = [self._build_vault(doc) for doc in vaults]
            for v in built:
                self._vaults[v.name.lower()] = v
        self._on_change()

    def principal_grant(self, vault_uri: str, object_id: str, permissions: list[str]) -> None:
        """Give a principal key permissions through an access policy (merged with any it has)."""
        with self._lock:
            vault = self._require_vault(vault_uri)
            self._merge_policy(vault, AccessPolicy(vault.tenant_id, object_id, None, {"keys": permissions}))
        self._on_change()

    def principal_revoke(self, vault_uri: str, object_id: str) -> None:
        """Remove every access policy and role assignment of a principal (rule K2 fault)."""
        with self._lock:
            vault = self._require_vault(vault_uri)
            oid = object_id.lower()
            vault.access_policies = [p for p in vault.access_policies if p.object_id.lower() != oid]
            vault.role_assignments = [r for r in vault.role_assignments if r["principalId"].lower() != oid]
        self._on_change()

    def role_grant(self, vault_uri: str, principal_id: str, role: str) -> None:
        """Seed an RBAC role assignment on the vault (no Microsoft.Authorization API is emulated)."""
        with self._lock:
            self._require_vault(vault_uri).role_assignments.append(
                {"principalId": principal_id, "role": role}
            )
        self._on_change()

    def set_key_enabled(self, vault_uri: str, key_name: str, key_version: str, enabled: bool) -> None:
        """Disable or re-enable a key version out of band (rule K1/K2 fault). "" = current version."""
        with self._lock:
            key = self._live_key(self._require_vault(vault_uri), key_name)
            ver = None if key is None else key.current if key_version == "" else key.find(key_version)
            if ver is None:
                raise KeyError(f"no key {key_name}/{key_version} in {vault_uri}")
            ver.enabled = enabled
            ver.updated = self._clock()
        self._on_change()

    def set_unavailable(self, vault_uri: str, unavailable: bool) -> None:
        """Make the vault's data plane answer 503 (rule K3: transient outage, ridden out from cache)."""
        with self._lock:
            vault = self._require_vault(vault_uri)
            if not unavailable:
                vault.unavailable_since = None
            elif vault.unavailable_since is None:
                vault.unavailable_since = self._clock()
        self._on_change()

    def set_caller_denied(self, vault_uri: str, denied: bool | list[str]) -> None:
        """Deny the caller (our tool) on a vault's data plane: all operations, or the listed ones."""
        with self._lock:
            self._require_vault(vault_uri).caller_denied = denied

    # ------------------------------------------------------------------ public: queries for the cluster side

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
        with self._lock:
            self._changed = False
            resp = self._dataplane(req)
            changed = self._changed
        if changed:
            self._on_change()
        return resp

    def handle_arm(
        self, req: Request, subscription: str, resource_group: str, vault_name: str | None
    ) -> Response:
        """Serve one `Microsoft.KeyVault/vaults` management request (§10).

        resource_group "" with vault_name None is the subscription-wide list
        (`/subscriptions/{s}/providers/Microsoft.KeyVault/vaults`, `vaults.list_by_subscription`)."""
        with self._lock:
            self._changed = False
            resp = self._arm(req, subscription, resource_group, vault_name)
            changed = self._changed
        if changed:
            self._on_change()
        return resp

    # ------------------------------------------------------------------ internals: lookup

    def _vault_by_uri(self, uri: str) -> Vault | None:
        try:
            host = (urlsplit(uri if "//" in uri else f"https://{uri}").hostname or "").lower()
        except ValueError:
            return None
        return self._vault_by_host(host)

    def _vault_by_host(self, host: str) -> Vault | None:
        host = host.split(":")[0].lower()
        name, _, suffix = host.partition(".")
        vault = self._vaults.get(name)
        if vault is None or suffix != vault.suffix:
            return None
        return vault

    def _require_vault(self, uri: str) -> Vault:
        vault = self._vault_by_uri(uri)
        if vault is None:
            raise KeyError(f"no vault at {uri}")
        return vault

    @staticmethod
    def _live_key(vault: Vault, name: str) -> Key | None:
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
        if not set(CLUSTER_KEY_PERMISSIONS) <= vault.principal_key_perms(principal_id):
            return False
        key = self._live_key(vault, name)
        if key is None:
            return False
        now = self._clock()
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
            roles.append({"principalId": str(r["principalId"]), "role": str(r["role"])})
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
                (_parse_time(doc.get("unavailableSince"), f"vault {name}") or self._clock())
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
            created = _parse_time(vdoc.get("created"), where) or self._clock()
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
    def _merge_policy(vault: Vault, new: AccessPolicy) -> None:
        """`add` semantics: union the permissions into the principal's existing entry."""
        for p in vault.access_policies:
            if p.object_id.lower() == new.object_id.lower() and p.application_id == new.application_id:
                for kind, perms in new.permissions.items():
                    have = p.permissions.setdefault(kind, [])
                    have.extend(x for x in perms if x.lower() not in {h.lower() for h in have})
                return
        vault.access_policies.append(new)

    # ------------------------------------------------------------------ internals: data plane

    def _dataplane(self, req: Request) -> Response:
        vault = self._vault_by_host(req.host)
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
            resp = self._route_dataplane(vault, req, api)
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

    def _route_dataplane(self, vault: Vault, req: Request, api: str) -> Response:
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
        if collection == "keys":
            if m == "GET" and not rest:
                return self._guard(vault, "list") or self._list_keys(vault, req, api)
            if m == "GET" and len(rest) == 2 and rest[1].lower() == "versions":
                return self._guard(vault, "list") or self._list_versions(vault, req, api, rest[0])
            if m == "GET" and len(rest) in (1, 2) and rest[-1].lower() != "rotationpolicy":
                return self._guard(vault, "get") or self._get_key(
                    vault, rest[0], rest[1] if len(rest) == 2 else ""
                )
            if m == "POST" and len(rest) == 2 and rest[1].lower() == "create":
                return self._guard(vault, "create") or self._create_key(vault, rest[0], req)
            if m == "POST" and len(rest) == 2 and rest[1].lower() == "rotate":
                return self._guard(vault, "rotate") or self._rotate(vault, rest[0])
            if len(rest) == 2 and rest[1].lower() == "rotationpolicy" and m in ("GET", "PUT"):
                if m == "GET":
                    return self._guard(vault, "getrotationpolicy") or self._get_policy(vault, rest[0])
                return self._guard(vault, "setrotationpolicy") or self._set_policy(vault, rest[0], req)
            if m == "PATCH" and len(rest) in (1, 2):
                return self._guard(vault, "update") or self._update_key(
                    vault, rest[0], rest[1] if len(rest) == 2 else "", req
                )
            if m == "DELETE" and len(rest) == 1:
                return self._guard(vault, "delete") or self._delete_key(vault, rest[0])
        else:
            if m == "GET" and not rest:
                return self._guard(vault, "list") or self._list_deleted(vault, req, api)
            if m == "GET" and len(rest) == 1:
                return self._guard(vault, "get") or self._get_deleted(vault, rest[0])
            if m == "POST" and len(rest) == 2 and rest[1].lower() == "recover":
                return self._guard(vault, "recover") or self._recover(vault, rest[0])
            if m == "DELETE" and len(rest) == 1:
                return self._guard(vault, "purge") or self._purge(vault, rest[0])
        return _kv_error(405, "MethodNotAllowed", f"{m} {req.path} is not supported by the emulated vault.")

    def _guard(self, vault: Vault, perm: str) -> Response | None:
        """403 when the caller (our tool) may not do `perm` on this vault (seeded fault)."""
        denied = vault.caller_denied
        blocked = denied is True or (isinstance(denied, list) and perm in {d.lower() for d in denied})
        if not blocked and vault.enforce_caller:
            blocked = perm not in vault.principal_key_perms(self.caller_object_id)
        if not blocked:
            return None
        caller = f"appid=04b07795-8ddb-461a-bbee-02f9e1bf7b46;oid={self.caller_object_id}"
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

    def _attributes(self, vault: Vault, ver: KeyVersion) -> dict[str, Any]:
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

    def _bundle(self, vault: Vault, key: Key, ver: KeyVersion) -> dict[str, Any]:
        jwk: dict[str, Any] = {"kid": f"https://{vault.host}/keys/{key.name}/{ver.version}", "kty": ver.kty}
        jwk["key_ops"] = list(ver.key_ops)
        jwk.update(ver.material)
        out: dict[str, Any] = {"key": jwk, "attributes": self._attributes(vault, ver)}
        if ver.tags:
            out["tags"] = dict(ver.tags)
        return out

    def _deleted_bundle(self, vault: Vault, key: Key) -> dict[str, Any]:
        out = self._bundle(vault, key, key.current)
        if vault.soft_delete and key.deleted_at is not None:
            out["recoveryId"] = f"https://{vault.host}/deletedkeys/{key.name}"
            out["deletedDate"] = _ts(key.deleted_at)
            out["scheduledPurgeDate"] = _ts(key.deleted_at + timedelta(days=vault.retention_days))
        return out

    def _page(self, vault: Vault, req: Request, api: str, items: list[dict[str, Any]]) -> Response:
        """One page of a list; nextLink carries an explicit :443 like the real service (§9.2)."""
        raw_max = req.q("maxresults")
        try:
            size = _PAGE_MAX if raw_max is None else int(raw_max)
            start = int(req.q("$skiptoken") or 0)
        except ValueError:
            return _kv_error(400, "BadParameter", "maxresults or $skiptoken is not a valid number.")
        if not 1 <= size <= _PAGE_MAX:
            return _kv_error(
                400, "BadParameter", f"The value of maxresults must be between 1 and {_PAGE_MAX}."
            )
        end = start + size
        next_link = None
        if end < len(items):
            next_link = (
                f"https://{vault.host}:443{req.path}?api-version={api}&$skiptoken={end}&maxresults={size}"
            )
        return Response(200, {"value": items[start:end], "nextLink": next_link})

    def _not_found(self, name: str, version: str = "") -> Response:
        return _kv_error(
            404, "KeyNotFound", KEY_NOT_FOUND.format(name=f"{name}/{version}" if version else name)
        )

    def _list_keys(self, vault: Vault, req: Request, api: str) -> Response:
        items = []
        for key in vault.keys.values():
            if key.deleted_at is None:
                item: dict[str, Any] = {
                    "kid": f"https://{vault.host}/keys/{key.name}",
                    "attributes": self._attributes(vault, key.current),
                }
                if key.current.tags:
                    item["tags"] = dict(key.current.tags)
                items.append(item)
        return self._page(vault, req, api, items)

    def _list_versions(self, vault: Vault, req: Request, api: str, name: str) -> Response:
        key = self._live_key(vault, name)
        if key is None:
            return self._not_found(name)
        items = []
        # recorded: versions come sorted by version id, not by creation time
        for ver in sorted(key.versions, key=lambda v: v.version.lower()):
            item: dict[str, Any] = {
                "kid": f"https://{vault.host}/keys/{key.name}/{ver.version}",
                "attributes": self._attributes(vault, ver),
            }
            if ver.tags:
                item["tags"] = dict(ver.tags)
            items.append(item)
        return self._page(vault, req, api, items)

    def _get_key(self, vault: Vault, name: str, version: str) -> Response:
        key = self._live_key(vault, name)
        if key is None:
            return self._not_found(name, version)
        ver = key.current if version == "" else key.find(version)
        if ver is None:
            return self._not_found(name, version)
        return Response(200, self._bundle(vault, key, ver))

    def _create_key(self, vault: Vault, name: str, req: Request) -> Response:
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
        now = self._clock()
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
        self._changed = True  # a new current version can revive a versionless cluster
        return Response(200, self._bundle(vault, key, ver))

    def _policy_json(self, vault: Vault, key: Key) -> dict[str, Any]:
        policy = dict(key.rotation_policy or {"lifetimeActions": [], "attributes": {}})
        return {"id": f"https://{vault.host}/keys/{key.name}/rotationpolicy", **policy}

    def _get_policy(self, vault: Vault, name: str) -> Response:
        key = self._live_key(vault, name)
        if key is None:
            return self._not_found(name)
        return Response(200, self._policy_json(vault, key))

    def _set_policy(self, vault: Vault, name: str, req: Request) -> Response:
        """PUT rotationpolicy (recorded 2023): the policy echoed with its id and created/updated times."""
        key = self._live_key(vault, name)
        if key is None:
            return self._not_found(name)
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
        now = _ts(self._clock())
        created = (key.rotation_policy or {}).get("attributes", {}).get("created", now)
        key.rotation_policy = {
            "lifetimeActions": actions,
            "attributes": {**({"expiryTime": expiry} if expiry else {}), "created": created, "updated": now},
        }
        return Response(200, self._policy_json(vault, key))

    def _rotate(self, vault: Vault, name: str) -> Response:
        """POST rotate (recorded 2023): a new current version like the last one; with a policy
        `expiryTime` it expires that long after its creation."""
        key = self._live_key(vault, name)
        if key is None:
            return self._not_found(name)
        last = key.current
        now = self._clock()
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
        self._changed = True  # a new current version: versionless clusters follow it (rule K1)
        return Response(200, self._bundle(vault, key, ver))

    def _update_key(self, vault: Vault, name: str, version: str, req: Request) -> Response:
        key = self._live_key(vault, name)
        ver = None if key is None else key.current if version == "" else key.find(version)
        if key is None or ver is None:
            return self._not_found(name, version)
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
        ver.updated = self._clock()
        self._changed = True
        return Response(200, self._bundle(vault, key, ver))

    def _delete_key(self, vault: Vault, name: str) -> Response:
        key = self._live_key(vault, name)
        if key is None:
            return self._not_found(name)
        if vault.soft_delete:
            key.deleted_at = self._clock()
        else:
            del vault.keys[name.lower()]
        self._changed = True  # rule K1: deleting the used key revokes
        return Response(200, self._deleted_bundle(vault, key))

    def _deleted_key(self, vault: Vault, name: str) -> Key | None:
        key = vault.keys.get(name.lower())
        return key if key is not None and key.deleted_at is not None else None

    def _deleted_not_found(self, name: str) -> Response:
        return _kv_error(404, "KeyNotFound", f"Deleted Key not found: {name}")

    def _list_deleted(self, vault: Vault, req: Request, api: str) -> Response:
        items = []
        for key in vault.keys.values():
            if key.deleted_at is not None:
                b = self._deleted_bundle(vault, key)
                item = {k: v for k, v in b.items() if k != "key"}
                item["kid"] = f"https://{vault.host}/keys/{key.name}"
                items.append(item)
        return self._page(vault, req, api, items)

    def _get_deleted(self, vault: Vault, name: str) -> Response:
        key = self._deleted_key(vault, name)
        if key is None:
            return self._deleted_not_found(name)
        return Response(200, self._deleted_bundle(vault, key))

    def _recover(self, vault: Vault, name: str) -> Response:
        key = self._deleted_key(vault, name)
        if key is None:
            return self._deleted_not_found(name)
        key.deleted_at = None
        self._changed = True  # rule K2: access returns, service resumes
        return Response(200, self._bundle(vault, key, key.current))

    def _purge(self, vault: Vault, name: str) -> Response:
        key = self._deleted_key(vault, name)
        if key is None:
            return self._deleted_not_found(name)
        if vault.purge_protection:
            return _kv_error(
                403,
                "Forbidden",
                'Operation "purge" is not allowed because purge protection is enabled for this vault.',
            )
        del vault.keys[name.lower()]
        self._changed = True
        return Response(204)

    # ------------------------------------------------------------------ internals: ARM plane

    def _arm(self, req: Request, subscription: str, resource_group: str, vault_name: str | None) -> Response:
        api = req.q("api-version")
        if api is None:
            return arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if api not in ARM_API_VERSIONS:
            return arm_error(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location 'global' and API version '{api}' "
                f"for type 'vaults'. The supported api-versions are '{', '.join(ARM_API_VERSIONS)}'.",
            )
        if vault_name is None:
            if req.method != "GET":
                return arm_error(
                    405, "MethodNotAllowed", f"{req.method} is not allowed on the vaults collection."
                )
            vaults = [
                self._vault_json(v, api)
                for v in self._vaults.values()
                if v.subscription.lower() == subscription.lower()
                and (not resource_group or v.resource_group.lower() == resource_group.lower())
                and not v.managed_hsm
            ]
            return Response(200, {"value": vaults})
        tail = self._arm_tail(req.path, vault_name)
        existing = self._vaults.get(vault_name.lower())
        mine = (
            existing
            if existing is not None
            and not existing.managed_hsm
            and existing.subscription.lower() == subscription.lower()
            and existing.resource_group.lower() == resource_group.lower()
            else None
        )
        if tail:
            if len(tail) == 2 and tail[0].lower() == "accesspolicies" and req.method in ("PUT", "PATCH"):
                if mine is None:
                    return self._arm_not_found(vault_name, resource_group)
                return self._arm_access_policy(mine, tail[1].lower(), req)
            return arm_error(404, "NotFound", f"The emulator does not serve {req.path}.")
        if req.method == "GET":
            return (
                Response(200, self._vault_json(mine, api))
                if mine
                else self._arm_not_found(vault_name, resource_group)
            )
        if req.method == "PUT":
            if existing is not None and mine is None:
                return arm_error(
                    409,
                    "VaultAlreadyExists",
                    f"The vault name '{vault_name}' is already in use. Vault names are globally unique so it "
                    "is possible that the name is already taken.",
                )
            return self._arm_put(req, subscription, resource_group, vault_name, mine)
        if req.method == "PATCH":
            if mine is None:
                return self._arm_not_found(vault_name, resource_group)
            return self._arm_patch(req, mine)
        if req.method == "DELETE":
            if mine is not None:
                del self._vaults[vault_name.lower()]
                self._changed = True  # every cluster on this vault loses its key (rule K2)
                return Response(200)
            return Response(204)
        return arm_error(405, "MethodNotAllowed", f"{req.method} is not allowed on a vault.")

    @staticmethod
    def _arm_tail(path: str, vault_name: str) -> list[str]:
        """Segments after `/vaults/{name}` (e.g. ["accessPolicies", "add"])."""
        segs = [s for s in path.split("/") if s]
        lower = [s.lower() for s in segs]
        for i in range(len(lower) - 1):
            if lower[i] == "vaults" and lower[i + 1] == vault_name.lower():
                return segs[i + 2 :]
        return []

    @staticmethod
    def _arm_not_found(name: str, resource_group: str) -> Response:
        return arm_error(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.KeyVault/vaults/{name}' under resource group '{resource_group}' was "
            "not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
        )

    def _vault_json(self, v: Vault, api: str | None = None, *, creating: bool = False) -> dict[str, Any]:
        """The vault as the api-version shows it. Recorded (2020, api 2019-09-01; 2023, api 2023-02-01):
        switches never set are absent, the retention only with soft delete; `systemData` and
        `publicNetworkAccess` appear in the newer api-version (the emulator switches at 2021-04-01-preview,
        the next one it accepts); a create answers `RegisteringDns` and a vaultUri without the slash."""
        props: dict[str, Any] = {
            "sku": {"family": "A", "name": v.sku},
            "tenantId": v.tenant_id,
            "accessPolicies": [p.to_json() for p in v.access_policies],
            "enabledForDeployment": False,
            "enableSoftDelete": v.soft_delete,
        }
        if v.soft_delete:
            props["softDeleteRetentionInDays"] = v.retention_days
        if v.rbac:
            props["enableRbacAuthorization"] = True
        props["vaultUri"] = v.uri.rstrip("/") if creating else v.uri
        props["provisioningState"] = "RegisteringDns" if creating else "Succeeded"
        newer = (api or ARM_API_VERSIONS[-1]) >= "2021-04-01-preview"
        if newer:
            props["publicNetworkAccess"] = "Enabled"
        props.update(v.extra_props)
        if v.purge_protection is not None:  # absent when never set (§10)
            props["enablePurgeProtection"] = v.purge_protection
        out: dict[str, Any] = {
            "id": v.arm_id,
            "name": v.name,
            "type": "Microsoft.KeyVault/vaults",
            "location": v.location,
            "tags": dict(v.tags),
        }
        if newer:
            created = v.created_at or self._clock()
            modified = v.modified_at or created
            out["systemData"] = {
                "createdBy": "user@example.com",
                "createdByType": "User",
                "createdAt": _iso(created),
                "lastModifiedBy": "user@example.com",
                "lastModifiedByType": "User",
                "lastModifiedAt": _iso(modified),
            }
        out["properties"] = props
        return out

    def _body(self, req: Request) -> dict[str, Any] | Response:
        try:
            body = req.json()
        except ValueError:
            return arm_error(
                400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
            )
        if not isinstance(body, dict):
            return arm_error(
                400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
            )
        return body

    def _apply_props(self, v: Vault, props: dict[str, Any], *, creating: bool) -> Response | None:
        """Apply vault properties, refusing the irreversible switches the service refuses (§10)."""
        if "sku" in props and props["sku"] is not None:
            sku = props["sku"]
            if not isinstance(sku, dict) or str(sku.get("name", "")).lower() not in ("standard", "premium"):
                return arm_error(
                    400, "BadRequest", "The property 'sku.name' must be 'standard' or 'premium'."
                )
            v.sku = str(sku["name"])
        if props.get("tenantId") is not None:
            v.tenant_id = str(props["tenantId"])
        sd = props.get("enableSoftDelete")
        if sd is not None:
            if not sd and v.soft_delete and not creating:
                return arm_error(
                    400,
                    "BadRequest",
                    'The property "enableSoftDelete" has been set to true previously and cannot be set '
                    "to false.",
                )
            v.soft_delete = bool(sd)
        pp = props.get("enablePurgeProtection")
        if pp is not None:
            if not pp and v.purge_protection:
                return arm_error(
                    400,
                    "BadRequest",
                    'The property "enablePurgeProtection" cannot be set to false. Enabling the purge '
                    "protection for a vault is an irreversible action.",
                )
            v.purge_protection = True if pp else v.purge_protection
        if v.purge_protection and not v.soft_delete:
            return arm_error(
                400, "BadRequest", "Purge protection can only be enabled on a vault with soft delete enabled."
            )
        days = props.get("softDeleteRetentionInDays")
        if days is not None:
            if not isinstance(days, int) or not 7 <= days <= 90:
                return arm_error(400, "BadRequest", "softDeleteRetentionInDays must be between 7 and 90.")
            v.retention_days = days
        if props.get("enableRbacAuthorization") is not None:
            v.rbac = bool(props["enableRbacAuthorization"])
        if props.get("accessPolicies") is not None:
            try:
                v.access_policies = [_parse_policy(p, v.tenant_id) for p in props["accessPolicies"]]
            except (ValueError, TypeError) as exc:
                return arm_error(400, "BadRequest", f"Invalid accessPolicies: {exc}")
        for name in (
            "enabledForDeployment",
            "enabledForDiskEncryption",
            "enabledForTemplateDeployment",
            "publicNetworkAccess",
            "networkAcls",
        ):
            if props.get(name) is not None:
                v.extra_props[name] = props[name]
        return None

    def _arm_put(
        self, req: Request, subscription: str, resource_group: str, name: str, existing: Vault | None
    ) -> Response:
        body = self._body(req)
        if isinstance(body, Response):
            return body
        if not _VAULT_NAME_RE.match(name):
            return arm_error(
                400,
                "VaultNameNotValid",
                f"The vault name '{name}' is invalid. A vault's name must be between 3-24 alphanumeric "
                "characters. The name must begin with a letter, end with a letter or digit, and not contain "
                "consecutive hyphens.",
            )
        location = body.get("location")
        if not isinstance(location, str) or not location:
            return arm_error(
                400, "LocationRequired", "The location property is required for this definition."
            )
        props = body.get("properties")
        if not isinstance(props, dict) or not props.get("tenantId") or not props.get("sku"):
            return arm_error(400, "BadRequest", "The properties 'tenantId' and 'sku' are required.")
        if existing is not None and _norm_location(existing.location) != _norm_location(location):
            return arm_error(
                400,
                "InvalidResourceLocation",
                f"The resource '{name}' already exists in location '{existing.location}' in resource group "
                f"'{resource_group}'. A resource with the same name cannot be created in location "
                f"'{location}'. Please select a new resource name.",
            )
        work = Vault(
            name=name,
            subscription=subscription,
            resource_group=resource_group,
            location=location,
            tenant_id=str(props["tenantId"]),
            cloud=self.cloud,
        )
        if existing is not None:  # PUT replaces, but irreversible switches are judged against the old state
            work.soft_delete, work.purge_protection = existing.soft_delete, existing.purge_protection
            work.retention_days, work.keys = existing.retention_days, existing.keys
            work.role_assignments = existing.role_assignments
            work.caller_denied, work.enforce_caller = existing.caller_denied, existing.enforce_caller
            work.unavailable_since = existing.unavailable_since
        err = self._apply_props(work, props, creating=existing is None)
        if err is not None:
            return err
        work.tags = dict(body.get("tags") or {})
        now = self._clock()
        work.created_at = existing.created_at if existing is not None else now
        work.modified_at = now
        self._vaults[name.lower()] = work
        self._changed = True
        # recorded: 200 on create too, while DNS registers (an LRO the SDK polls to Succeeded)
        return Response(200, self._vault_json(work, req.q("api-version"), creating=existing is None))

    def _arm_patch(self, req: Request, v: Vault) -> Response:
        body = self._body(req)
        if isinstance(body, Response):
            return body
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            return arm_error(400, "BadRequest", "'properties' must be an object.")
        # Validate on a copy so a refused PATCH changes nothing.
        trial = Vault(**{f: getattr(v, f) for f in v.__dataclass_fields__})
        trial.access_policies = list(v.access_policies)
        trial.extra_props = dict(v.extra_props)
        err = self._apply_props(trial, props, creating=False)
        if err is not None:
            return err
        if body.get("tags") is not None:
            trial.tags = dict(body["tags"])
        self._vaults[v.name.lower()] = trial
        self._changed = True
        trial.modified_at = self._clock()
        return Response(200, self._vault_json(trial, req.q("api-version")))

    def _arm_access_policy(self, v: Vault, kind: str, req: Request) -> Response:
        """PUT .../accessPolicies/{add|replace|remove} (rule K2: removal revokes a cluster)."""
        if kind not in ("add", "replace", "remove"):
            return arm_error(
                400, "BadRequest", f"The operation kind '{kind}' is invalid; use add, replace or remove."
            )
        body = self._body(req)
        if isinstance(body, Response):
            return body
        raw = (body.get("properties") or {}).get("accessPolicies")
        if not isinstance(raw, list):
            return arm_error(400, "BadRequest", "properties.accessPolicies is required.")
        try:
            policies = [_parse_policy(p, v.tenant_id) for p in raw]
        except (ValueError, TypeError) as exc:
            return arm_error(400, "BadRequest", f"Invalid accessPolicies: {exc}")
        for new in policies:
            if kind == "add":
                self._merge_policy(v, new)
                continue
            match = [
                p
                for p in v.access_policies
                if p.object_id.lower() == new.object_id.lower() and p.application_id == new.application_id
            ]
            if kind == "replace":
                for p in match:
                    v.access_policies.remove(p)
                v.access_policies.append(new)
                continue
            for p in match:  # remove: drop the listed permissions; an emptied entry disappears
                for k, perms in new.permissions.items():
                    gone = {x.lower() for x in perms}
                    p.permissions[k] = [x for x in p.permissions.get(k, []) if x.lower() not in gone]
                if not any(p.permissions.values()):
                    v.access_policies.remove(p)
        self._changed = True
        return Response(
            200,
            {
                "id": f"{v.arm_id}/accessPolicies/{kind}",
                "type": "Microsoft.KeyVault/vaults/accessPolicies",
                "location": v.location,
                "properties": {"accessPolicies": [p.to_json() for p in policies]},
            },
        )
