"""The live state as read from Azure, trimmed to what planning needs. Frozen; built by controller.azure.

Ids are kept as Azure returned them; dictionaries are keyed by `ids.id_key()` so lookups ignore casing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from controller.model import compare
from controller.model.ids import KeyRef


@dataclass(frozen=True, slots=True)
class ObservedCluster:
    id: str
    subscription: str
    resource_group: str
    name: str
    location: str  # normalised (lower, no spaces)
    provisioning_state: str  # Creating, ProvisioningAccount, Updating, Deleting, Succeeded, Failed, Canceled
    identity_type: str  # SystemAssigned | UserAssigned | None
    user_assigned_identities: tuple[str, ...]
    principal_id: str | None  # SystemAssigned principal, or the UserAssigned identity's principal
    tenant_id: str | None
    capacity: int
    billing_type: str
    double_encryption: bool
    availability_zones: bool
    key: KeyRef | None  # keyVaultProperties; version None = versionless
    last_sku_update: datetime | None  # rule C4
    created: datetime | None
    tags: dict[str, str] = field(default_factory=dict)
    # workspace id key -> associateDate (rule W3 history, W1 count)
    associated_workspaces: dict[str, datetime | None] = field(default_factory=dict)
    # fields Azure's answer did not carry readably ("capacity", "identity", "location"): unknown, never
    # a difference to act on
    unknown: frozenset[str] = frozenset()

    @property
    def busy(self) -> bool:
        """Rule C6: an asynchronous operation is running."""
        return compare.busy(self.provisioning_state)


@dataclass(frozen=True, slots=True)
class ObservedWorkspace:
    id: str
    subscription: str
    resource_group: str
    name: str
    location: str
    provisioning_state: str
    cluster_id: str | None  # features.clusterResourceId: the cluster it is linked to
    link_state: str | None = None  # provisioningState of linkedServices/cluster when read (W5)
    # data source type ('query' / 'alerts') -> storage account id; only for workspaces the spec names;
    # a type absent from the dict means "no link"; byos_read False means "not read"
    byos: dict[str, str] = field(default_factory=dict)
    byos_read: bool = False


@dataclass(frozen=True, slots=True)
class KeyVersion:
    version: str
    enabled: bool
    created: datetime | None
    expires: datetime | None
    not_before: datetime | None


@dataclass(frozen=True, slots=True)
class ObservedKey:
    vault_uri: str
    name: str
    exists: bool
    current_version: str | None  # the newest enabled version (what versionless resolves to)
    versions: tuple[KeyVersion, ...]
    recovery_level: str | None  # e.g. "Recoverable" (soft delete + purge protection)
    readable: bool = True  # False when Key Vault refused us (403): unknown, not missing

    def version(self, version: str) -> KeyVersion | None:
        return next((v for v in self.versions if v.version.lower() == version.lower()), None)


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    tenant_id: str
    object_id: str
    key_permissions: frozenset[str]  # lower-cased


# Managed HSM local RBAC built-in roles whose data actions include keys read, wrap and unwrap (rule C7):
# "Managed HSM Crypto Service Encryption User" and "Managed HSM Crypto User", by role definition id.
HSM_KEY_ROLE_IDS = frozenset({"33413926-3206-4cdd-b39a-83574fe37a17", "21dbd100-6940-42c2-9190-5d6cb909625b"})


@dataclass(frozen=True, slots=True)
class HsmRoleAssignment:
    """One Managed HSM role assignment of a principal: its role definition id (a guid) and its scope."""

    principal_id: str
    role_id: str  # lower-case guid, the last segment of roleDefinitionId
    scope: str  # "/", "/keys", "/keys/<name>"

    def covers(self, key_name: str) -> bool:
        scope = "/" + "/".join(p for p in self.scope.lower().split("/") if p)
        return scope in ("/", "/keys") or scope == f"/keys/{key_name.lower()}"


@dataclass(frozen=True, slots=True)
class ObservedVault:
    uri: str
    readable: bool  # the management-plane vault resource could be read
    location: str | None = None
    tenant_id: str | None = None
    soft_delete: bool | None = None
    purge_protection: bool | None = None
    rbac: bool | None = None
    access_policies: tuple[AccessPolicy, ...] = ()
    # a Managed HSM's role assignments, read per principal: (principal lower, key name lower) pairs read
    hsm_roles_read: frozenset[tuple[str, str]] = frozenset()
    hsm_roles: tuple[HsmRoleAssignment, ...] = ()

    def hsm_grants_key_access(self, object_id: str | None, key_name: str) -> bool | None:
        """Rule C7 on a Managed HSM: a built-in role with keys read/wrap/unwrap at "/", "/keys" or the
        key. None = can't tell (not read, or only other roles, which may be custom ones that grant it)."""
        if object_id is None or (object_id.lower(), key_name.lower()) not in self.hsm_roles_read:
            return None
        who = object_id.lower()
        mine = [r for r in self.hsm_roles if r.principal_id.lower() == who and r.covers(key_name)]
        if any(r.role_id in HSM_KEY_ROLE_IDS for r in mine):
            return True
        return None if mine else False

    def grants_key_access(self, object_id: str | None) -> bool | None:
        """Rule C7: get, wrapKey, unwrapKey. None = can't tell (RBAC vault or vault not readable)."""
        if not self.readable or self.rbac or object_id is None:
            return None
        needed = {"get", "wrapkey", "unwrapkey"}
        for p in self.access_policies:
            if p.object_id.lower() == object_id.lower() and (
                "all" in p.key_permissions or needed <= p.key_permissions
            ):
                return True
        return False


@dataclass(frozen=True, slots=True, weakref_slot=True)
class ObservedState:
    """What the planner sees. `complete` is False when some part could not be read.

    Weak-referenceable: the planner's resource digests are computed once per state
    (controller/planning/fingerprint.py)."""

    subscriptions: tuple[str, ...]
    clusters: dict[str, ObservedCluster]  # id_key -> cluster
    workspaces: dict[str, ObservedWorkspace]  # id_key -> workspace
    keys: dict[str, ObservedKey]  # KeyRef.key() -> key
    vaults: dict[str, ObservedVault]  # vault host (lower) -> vault
    read_at: datetime
    warnings: tuple[str, ...] = ()
    # subscription (lower) -> its resource group names (lower); read only where a declared cluster is
    # missing (its create needs the group). A subscription absent here was not read: unknown.
    resource_groups: dict[str, frozenset[str]] = field(default_factory=dict)
    # user-assigned identity (id_key) -> its principal id, for the identities declared clusters use
    # (rule C7: the vault's access policies are checked against it before any create or key update)
    identity_principals: dict[str, str] = field(default_factory=dict)
