"""The encryption-coverage report as data: what a security or compliance reviewer asks about.

"Which data is protected by our key, since when, and what could break it". Built by
`controller.reporting.build.build_report` from values only, rendered by the sibling modules. The JSON
form is `Report.model_dump_json()`; it holds no secrets (key URIs and ARM ids are not secrets).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

REPORT_FORMAT_VERSION = "1.0"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


class KeyState(_Frozen):
    """The key version a cluster uses now, as Key Vault describes it."""

    uri: str  # https://vault/keys/name[/version] as configured on the cluster
    vault_uri: str
    name: str
    pinned: bool  # a version is configured (rule K1: rotation is then manual)
    version_in_force: str | None  # the pinned version, or the key's current one when versionless
    readable: bool = True  # False: Key Vault refused us, or the key was not read; the state below is unknown
    read: bool = True  # False: not read at all (observe reads keys of the spec's clusters only)
    exists: bool | None = None  # None: unknown
    enabled: bool | None = None
    expires: datetime | None = None
    recovery_level: str | None = None
    newer_versions: int = 0  # enabled versions created after the one in force (pinned only)


class VaultState(_Frozen):
    uri: str
    readable: bool
    soft_delete: bool | None = None
    purge_protection: bool | None = None
    recoverable: bool | None = None  # rule C7: soft delete + purge protection (None: unknown)
    access_granted: bool | None = None  # rule C7: identity has get/wrapKey/unwrapKey (None: can't tell)


class ClusterReport(_Frozen):
    id: str
    name: str
    in_spec: bool
    exists: bool
    location: str = ""
    provisioning_state: str | None = None
    identity_type: str | None = None
    principal_id: str | None = None
    key: KeyState | None = None  # None: Microsoft-managed keys
    vault: VaultState | None = None
    capacity: int | None = None
    last_sku_update: datetime | None = None
    capacity_decrease_from: datetime | None = None  # rule C4; None: possible now (or unknown)
    linked_workspaces: int = 0
    workspace_limit: int = 1000  # rule W1


class WorkspaceReport(_Frozen):
    id: str
    name: str
    in_spec: bool
    exists: bool
    expected_cluster: str | None = None  # ARM id the spec links it to, None when not declared on CMK
    linked_cluster: str | None = None  # features.clusterResourceId
    linked_since: datetime | None = None  # associateDate, else the newest link operation in history
    linked_since_source: str | None = None  # associateDate | journal | activityLog
    cmk_protected: bool = False  # linked to a cluster whose key is in force now
    cmk_since: datetime | None = None  # rule W6: only data ingested after this date is on the key
    key_uri: str | None = None
    key_version: str | None = None
    byos: dict[str, str] = Field(default_factory=dict)  # data source type -> storage account id
    link_ops_used: int = 0  # rule W3, in the rolling window ending now
    link_ops_limit: int = 2
    next_link_op_frees: datetime | None = None  # when the oldest counted operation leaves the window


class Finding(_Frozen):
    severity: Severity
    code: str  # stable: revoked, revocation-risk, key-expired, key-expiring, vault-not-recoverable, ...
    subject: str  # the cluster or workspace name
    resource_id: str
    message: str
    rule: str | None = None
    date: datetime | None = None


class EventKind(StrEnum):
    CAPACITY_LOCK_ENDS = "capacity-lock-ends"  # rule C4
    LINK_BUDGET_FREES = "link-budget-frees"  # rule W3
    DEFERRED_POSSIBLE = "deferred-change-possible"  # plan.deferred not_before
    KEY_EXPIRES = "key-expires"  # rule K1/K2
    NAME_RELEASED = "cluster-name-released"  # rule C11


class CalendarEvent(_Frozen):
    date: datetime
    kind: EventKind
    subject: str
    resource_id: str
    description: str
    rule: str | None = None


class Counts(_Frozen):
    clusters: int = 0
    workspaces: int = 0
    workspaces_expected_on_cmk: int = 0
    workspaces_cmk_protected: int = 0
    workspaces_expected_not_protected: int = 0
    critical: int = 0
    warning: int = 0
    info: int = 0
    days_to_nearest_key_expiry: float | None = None


class Report(_Frozen):
    format_version: str = REPORT_FORMAT_VERSION
    generated_at: datetime
    limits_profile: str
    key_expiry_warning_days: int
    counts: Counts
    clusters: tuple[ClusterReport, ...] = ()
    workspaces: tuple[WorkspaceReport, ...] = ()
    findings: tuple[Finding, ...] = ()  # most severe first
    calendar: tuple[CalendarEvent, ...] = ()  # soonest first
    observe_warnings: tuple[str, ...] = ()
