"""The desired state, as users write it in YAML (Kubernetes-style documents).

Three document kinds, any number per file and any number of files:

* `Cluster`      one dedicated cluster and the key that encrypts it;
* `WorkspaceSet` workspaces linked to one cluster (or to none), with their BYOS storage accounts;
* `Settings`     at most one per spec tree: limits profile, drift mode, and the opt-ins for what
                 cannot be undone (prune, identity None, BYOS Query that drops saved searches).

Models are strict (`extra="forbid"`) and frozen; field names are the YAML names (camelCase aliases).
Cross-document checks (duplicates, W1 over-subscription, unknown cluster references) live in
`controller.loading.validate`, which knows file and line.
"""

from __future__ import annotations

import functools
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from controller.model import clouds, ids
from controller.model.frozen import share_fields_set

API_VERSION = "cmk.azure.io/v1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, str_strip_whitespace=True)

    def model_post_init(self, context: Any, /) -> None:
        share_fields_set(self)  # 40,000 workspace entries share a few sets (controller.model.frozen)


class Metadata(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=253, description="Unique name of this document")]

    @field_validator("name")
    @classmethod
    def _name_readable(cls, v: str) -> str:
        # the address in every plan and PR comment: ASCII, no bidi overrides or lookalike letters
        bad = ids.unsafe_character(v)
        if bad:
            raise ValueError(f"'{ids.escaped(v)}' contains {bad}")
        return v
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class IdentityType(StrEnum):
    SYSTEM_ASSIGNED = "SystemAssigned"
    USER_ASSIGNED = "UserAssigned"
    NONE = "None"


class Identity(_Strict):
    type: IdentityType = Field(description="SystemAssigned, UserAssigned, or None (rule C12: irreversible)")
    user_assigned_identity: str | None = Field(
        default=None,
        alias="userAssignedIdentity",
        description="Resource id of the user-assigned identity (required with UserAssigned)",
    )
    key_access_granted: bool = Field(
        default=False,
        alias="keyAccessGranted",
        description=(
            "UserAssigned only: the identity already has get/wrapKey/unwrapKey on the vault, so the key "
            "may be set at creation (rule C5)"
        ),
    )

    @field_validator("user_assigned_identity")
    @classmethod
    def _uai_is_an_identity(cls, v: str | None) -> str | None:
        if v is not None:
            ids.ResourceId.parse(v, expected_type=ids.USER_IDENTITY_TYPE)
        return v

    @model_validator(mode="after")
    def _uai_iff_user_assigned(self) -> Identity:
        if self.type is IdentityType.USER_ASSIGNED and not self.user_assigned_identity:
            raise ValueError("userAssignedIdentity is required when type is UserAssigned")
        if self.type is not IdentityType.USER_ASSIGNED and self.user_assigned_identity:
            raise ValueError("userAssignedIdentity is only allowed when type is UserAssigned")
        return self


class Key(_Strict):
    vault_uri: str = Field(
        alias="vaultUri",
        description="https://<vault>.vault.azure.net/ or a Managed HSM URI (https://<hsm>.managedhsm.azure.net/);"
        " in a sovereign cloud, that cloud's suffixes (e.g. vault.usgovcloudapi.net, vault.azure.cn)",
    )
    name: Annotated[str, Field(alias="name", pattern=r"^[0-9a-zA-Z-]{1,127}$")]
    version: Annotated[
        str | None,
        Field(
            default=None,
            pattern=r"^[0-9a-fA-F]{32}$",
            description="Pinned key version; omit for versionless (automatic rotation)",
        ),
    ] = None

    @field_validator("vault_uri")
    @classmethod
    def _vault_uri(cls, v: str, info: ValidationInfo) -> str:
        # the loader passes the selected cloud (--cloud / AZURE_CLOUD) as validation context
        context = info.context if isinstance(info.context, dict) else {}
        cloud = context.get("cloud")
        return ids.parse_vault_uri(v, cloud if isinstance(cloud, clouds.Cloud) else clouds.DEFAULT)

    def ref(self) -> ids.KeyRef:
        return ids.KeyRef(vault_uri=self.vault_uri, name=self.name, version=self.version)


class BillingType(StrEnum):
    CLUSTER = "Cluster"
    WORKSPACES = "Workspaces"


class ClusterSpec(_Strict):
    subscription: str = Field(description="Subscription id (GUID)")
    resource_group: str = Field(alias="resourceGroup", min_length=1, max_length=90)
    location: str = Field(min_length=1, description="Azure region, e.g. westeurope")
    name: str | None = Field(
        default=None,
        description=(
            "Cluster name in Azure (rule C1: 4-63 letters, digits and hyphens, not at either end); "
            "defaults to metadata.name"
        ),
    )
    identity: Identity
    capacity: int = Field(description="Commitment tier in GB/day (rule C3, per the limits profile)")
    billing_type: BillingType = Field(default=BillingType.CLUSTER, alias="billingType")
    double_encryption: bool = Field(
        default=True, alias="doubleEncryption", description="Fixed at creation (rule C9)"
    )
    availability_zones: bool | None = Field(
        default=None,
        alias="availabilityZones",
        description=(
            "Fixed at creation (rule C9); true only in regions with zone support. Omit to let Azure "
            "decide by region"
        ),
    )
    tags: dict[str, str] = Field(default_factory=dict)
    key: Key | None = Field(default=None, description="The customer-managed key; omit for Microsoft keys")
    allow_access_revocation: bool = Field(
        default=False,
        alias="allowAccessRevocation",
        description="Opt-in for identity None, which revokes access irreversibly (rule C12)",
    )

    @field_validator("subscription")
    @classmethod
    def _sub_is_guid(cls, v: str) -> str:
        if not ids.is_guid(v):
            raise ValueError(f"'{v}' is not a subscription id (GUID)")
        return v.lower()

    @field_validator("resource_group")
    @classmethod
    def _resource_group(cls, v: str) -> str:
        # `a/b` or `..` would change the request path; a lookalike letter names another group
        return ids.check_resource_group(v)

    @field_validator("location")
    @classmethod
    def _location(cls, v: str) -> str:
        bad = ids.unsafe_character(v)
        if bad:
            raise ValueError(f"'{ids.escaped(v)}' contains {bad}")
        if not re.fullmatch(r"[A-Za-z0-9 ]+", v):
            raise ValueError(f"'{v}' is not an Azure region name (letters, digits and spaces)")
        return ids.normalise_location(v)

    @field_validator("tags")
    @classmethod
    def _tags_readable(cls, v: dict[str, str]) -> dict[str, str]:
        # tags are shown in plans and PR comments: no bidi overrides or invisible characters
        for key, value in v.items():
            bad = ids.unsafe_character(key, ascii_only=False) or ids.unsafe_character(value, ascii_only=False)
            if bad:
                raise ValueError(f"tag '{ids.escaped(key)}' contains {bad}")
        return v

    @model_validator(mode="after")
    def _identity_none_needs_opt_in(self, info: ValidationInfo) -> ClusterSpec:
        # `salvage` (the loader, for a document already refused): let the rule checks see the rest
        salvage = isinstance(info.context, dict) and info.context.get("salvage")
        if self.identity.type is IdentityType.NONE and not self.allow_access_revocation and not salvage:
            raise ValueError(
                "identity.type None revokes the cluster's access to its key irreversibly (rule C12); "
                "set allowAccessRevocation: true to opt in"
            )
        return self


class Cluster(_Strict):
    api_version: Literal["cmk.azure.io/v1"] = Field(alias="apiVersion")
    kind: Literal["Cluster"]
    metadata: Metadata
    spec: ClusterSpec

    @property
    def azure_name(self) -> str:
        return self.spec.name or self.metadata.name

    @property
    def arm_id(self) -> str:
        return ids.cluster_id(self.spec.subscription, self.spec.resource_group, self.azure_name)


class Byos(_Strict):
    """Bring-your-own-storage for one workspace (rule B1: one account per data source type)."""

    query: str | None = Field(default=None, description="Storage account for saved searches (Query)")
    alerts: str | None = Field(default=None, description="Storage account for log-alert queries (Alerts)")
    allow_saved_search_loss: bool = Field(
        default=False,
        alias="allowSavedSearchLoss",
        description="Opt-in: linking a Query account removes the workspace's saved searches (rule B2)",
    )

    @field_validator("query", "alerts")
    @classmethod
    def _storage_id(cls, v: str | None) -> str | None:
        if v is not None:
            ids.ResourceId.parse(v, expected_type=ids.STORAGE_TYPE)
        return v


class WorkspaceEntry(_Strict):
    id: str = Field(description="Workspace resource id")
    byos: Byos | None = None

    @field_validator("id")
    @classmethod
    def _ws_id(cls, v: str) -> str:
        ids.ResourceId.parse(v, expected_type=ids.WORKSPACE_TYPE)
        return v


def _workspace_id(value: str) -> str:
    ids.ResourceId.parse(value, expected_type=ids.WORKSPACE_TYPE)
    return value


def _workspace_item_kind(value: object) -> str:
    """A workspace item is either a bare id or an entry with BYOS: pick one so errors come from one branch."""
    return "<id>" if isinstance(value, str) else "<entry>"


# A tagged union (not a plain `WorkspaceEntry | str`), so a bad item reports one error, not one per branch.
WorkspaceItem = Annotated[
    Annotated[WorkspaceEntry, Tag("<entry>")] | Annotated[str, AfterValidator(_workspace_id), Tag("<id>")],
    Discriminator(_workspace_item_kind),
]


class WorkspaceSetSpec(_Strict):
    cluster: str | None = Field(
        default=None,
        description="metadata.name of the Cluster these workspaces link to; omit to manage BYOS only",
    )
    workspaces: list[WorkspaceItem] = Field(
        default_factory=list, description="Workspace resource ids, or entries with BYOS"
    )

    @field_validator("workspaces")
    @classmethod
    def _ids(cls, v: list[WorkspaceEntry | str]) -> list[WorkspaceEntry | str]:
        for item in v:
            if isinstance(item, str):
                ids.ResourceId.parse(item, expected_type=ids.WORKSPACE_TYPE)
        return v

    def entries(self) -> list[WorkspaceEntry]:
        """Every item as an entry (a fresh list; the entries themselves are frozen)."""
        return list(self.entry_tuple)

    @functools.cached_property
    def entry_tuple(self) -> tuple[WorkspaceEntry, ...]:
        """Built once per (frozen) spec: the checks and the planner ask many times. Bare ids were
        validated with the set, so they are wrapped as they are rather than validated again."""
        return tuple(
            WorkspaceEntry.model_construct(id=w) if isinstance(w, str) else w for w in self.workspaces
        )


class WorkspaceSet(_Strict):
    api_version: Literal["cmk.azure.io/v1"] = Field(alias="apiVersion")
    kind: Literal["WorkspaceSet"]
    metadata: Metadata
    spec: WorkspaceSetSpec


class LimitsProfile(StrEnum):
    """Which service limits apply: `current` is Azure today, `seed` the 2021 documentation (docs/rules.md)."""

    SEED = "seed"
    CURRENT = "current"


class DriftMode(StrEnum):
    REPORT = "report"
    CORRECT = "correct"


class Prune(_Strict):
    """Opt-ins to remove what the spec no longer names (irreversible: off by default)."""

    clusters: bool = Field(
        default=False, description="Delete clusters in managed resource groups that the spec does not name"
    )
    workspace_links: bool = Field(
        default=False,
        alias="workspaceLinks",
        description="Unlink workspaces from managed clusters when the spec does not name them and the "
        "link is ours: cmkctl linked it (journal) or created the cluster (cmkctl-scope tag) (W3, W6)",
    )
    max_unlinks: int = Field(
        default=50,
        alias="maxUnlinks",
        ge=0,
        description="Refuse a plan that unlinks more workspaces than this in one go",
    )


class SettingsSpec(_Strict):
    limits_profile: LimitsProfile = Field(
        default=LimitsProfile.CURRENT,
        alias="limitsProfile",
        description="current: what Azure enforces today (default); seed: the 2021 documented limits",
    )
    drift: DriftMode = DriftMode.REPORT
    prune: Prune = Field(default_factory=Prune)
    key_expiry_warning_days: int = Field(default=30, alias="keyExpiryWarningDays", ge=0, le=3650)
    suspend: bool = Field(default=False, description="Controller: observe and report, change nothing")


class Settings(_Strict):
    api_version: Literal["cmk.azure.io/v1"] = Field(alias="apiVersion")
    kind: Literal["Settings"]
    metadata: Metadata
    spec: SettingsSpec = Field(default_factory=SettingsSpec)


Document = Annotated[Cluster | WorkspaceSet | Settings, Field(discriminator="kind")]


class SourceLocation(BaseModel):
    """Where a document came from, for error messages and plan addresses."""

    model_config = ConfigDict(frozen=True)
    file: str
    line: int


class DesiredState(BaseModel):
    """Every document of a spec tree, validated as a whole. Pure data: the planner's `desired`."""

    model_config = ConfigDict(frozen=True)
    clusters: tuple[Cluster, ...] = ()
    workspace_sets: tuple[WorkspaceSet, ...] = ()
    settings: SettingsSpec = Field(default_factory=SettingsSpec)
    sources: dict[str, SourceLocation] = Field(
        default_factory=dict, description="'Kind/name' -> where it was declared"
    )

    @property
    def scope_id(self) -> str:
        """Who owns what this spec creates: the Settings document's name, else "default".

        It is the value of the `cmkctl-scope` tag on every cluster cmkctl creates, and prune
        deletes only clusters that carry it (a foreign cluster in a managed group is never ours)."""
        names = sorted(k.split("/", 1)[1] for k in self.sources if k.startswith("Settings/"))
        return names[0] if names else "default"

    def cluster_by_name(self, name: str) -> Cluster | None:
        return next((c for c in self.clusters if c.metadata.name == name), None)

    def desired_links(self) -> dict[str, Cluster]:
        """workspace id key -> the cluster it must be linked to (a fresh dict)."""
        return dict(self._links)

    @functools.cached_property
    def _links(self) -> dict[str, Cluster]:
        # computed once: the state is frozen, and the planner, observe and the CLI each ask for it
        out: dict[str, Cluster] = {}
        for ws_set in self.workspace_sets:
            if ws_set.spec.cluster is None:
                continue
            cluster = self.cluster_by_name(ws_set.spec.cluster)
            if cluster is None:
                continue
            for entry in ws_set.spec.entries():
                out[ids.id_key(entry.id)] = cluster
        return out

    def workspace_entries(self) -> dict[str, WorkspaceEntry]:
        """workspace id key -> its entry (id as written, BYOS); a fresh dict."""
        return dict(self._entries)

    @functools.cached_property
    def _entries(self) -> dict[str, WorkspaceEntry]:
        return {ids.id_key(e.id): e for s in self.workspace_sets for e in s.spec.entry_tuple}

    def subscriptions(self) -> set[str]:
        subs = {c.spec.subscription for c in self.clusters}
        for e in self.workspace_entries().values():
            # the same arguments as validation used, so the parse is a memo hit, not a second parse
            subs.add(ids.ResourceId.parse(e.id, expected_type=ids.WORKSPACE_TYPE).subscription)
        return subs
