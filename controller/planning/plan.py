"""The plan artefact: what will run now (a DAG), what must wait and until when, what can never run.

Each action has one row of traits (glyph, phase, lock, usual duration: `Action.traits`) and one
parameters model; adding an action adds one of each here, and one branch per layer that acts on it
(planning kind, request body, text detail).

`Plan` serialises to the versioned JSON that `cmkctl plan --out` writes and `cmkctl apply PLANFILE`
reads; text and markdown are rendered from that JSON only (controller.render).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.model.frozen import share_fields_set
from controller.model.ids import KeyRef
from controller.model.rules import Rule

FORMAT_VERSION = "2.1"  # 2.1: `targeting` (plans made with --target)


class LockScope(StrEnum):
    """What an operation holds while it runs: its cluster (rule C6) or its workspace (rule W5)."""

    CLUSTER = "cluster"
    WORKSPACE = "workspace"


class Tally(StrEnum):
    """The summary sentence's column for an action: 'N clusters to add, N to change, N to destroy;
    N workspace links to add, N to remove; N storage links to add, N to remove'."""

    CLUSTER_ADD = "cluster_add"
    CLUSTER_CHANGE = "cluster_change"
    CLUSTER_DESTROY = "cluster_destroy"
    LINK_ADD = "link_add"
    LINK_REMOVE = "link_remove"
    STORAGE_ADD = "storage_add"
    STORAGE_REMOVE = "storage_remove"


@dataclass(frozen=True, slots=True)
class ActionTraits:
    """Everything that is a property of an action rather than of one change: one row per action."""

    glyph: str  # + ~ - in text and markdown
    phase: int  # among steps ready together: make room, build, key, link (controller.planning.graph)
    lock: LockScope  # what the executor holds while it runs
    usual_seconds: float  # for the progress view: "create 41m, usually ~2h"
    usual_text: str
    tally: Tally


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    SET_KEY = "set_key"
    LINK = "link"
    UNLINK = "unlink"
    BYOS_LINK = "byos_link"
    BYOS_UNLINK = "byos_unlink"

    @property
    def traits(self) -> ActionTraits:
        return _TRAITS[self]


_TRAITS: dict[Action, ActionTraits] = {
    Action.DELETE: ActionTraits("-", 0, LockScope.CLUSTER, 60, "~1m", Tally.CLUSTER_DESTROY),
    Action.UNLINK: ActionTraits("-", 1, LockScope.WORKSPACE, 90 * 60, "up to 90m", Tally.LINK_REMOVE),
    Action.CREATE: ActionTraits("+", 2, LockScope.CLUSTER, 2 * 3600, "~2h", Tally.CLUSTER_ADD),
    Action.UPDATE: ActionTraits("~", 3, LockScope.CLUSTER, 60, "~1m", Tally.CLUSTER_CHANGE),
    Action.SET_KEY: ActionTraits("~", 3, LockScope.CLUSTER, 5 * 60, "a few minutes", Tally.CLUSTER_CHANGE),
    Action.LINK: ActionTraits("+", 4, LockScope.WORKSPACE, 90 * 60, "up to 90m", Tally.LINK_ADD),
    Action.BYOS_LINK: ActionTraits("+", 5, LockScope.WORKSPACE, 10, "seconds", Tally.STORAGE_ADD),
    Action.BYOS_UNLINK: ActionTraits("-", 5, LockScope.WORKSPACE, 10, "seconds", Tally.STORAGE_REMOVE),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def model_post_init(self, context: Any, /) -> None:
        share_fields_set(self)  # a 40,000-change plan's models share a few sets (controller.model.frozen)


# -- per-action parameters: what the executor sends, and then checks is in effect ------------------


class KeyParams(_Frozen):
    """A customer-managed key; `version` None = versionless (the cluster follows the key, rule K1)."""

    vault_uri: str
    name: str
    version: str | None = None

    @classmethod
    def of(cls, ref: KeyRef | None) -> KeyParams | None:
        return None if ref is None else cls(vault_uri=ref.vault_uri, name=ref.name, version=ref.version)

    def ref(self) -> KeyRef:
        return KeyRef(vault_uri=self.vault_uri, name=self.name, version=self.version)


class IdentityParams(_Frozen):
    type: str  # SystemAssigned | UserAssigned | None
    user_assigned_identity: str | None = None


class _ClusterParams(_Frozen):
    subscription: str
    resource_group: str
    name: str


class CreateParams(_ClusterParams):
    """A new cluster (or a Failed one re-issued): rules C3, C5, C9."""

    action: Literal[Action.CREATE] = Action.CREATE
    location: str
    identity: IdentityParams
    capacity: int
    billing_type: str
    double_encryption: bool
    availability_zones: bool | None = None  # None: not sent, Azure decides by region (rule C9)
    tags: dict[str, str] = Field(default_factory=dict)
    key: KeyParams | None = None  # rule C5: only with a granted UserAssigned identity


class UpdateParams(_ClusterParams):
    """A PATCH with only the fields that change (None: not sent)."""

    action: Literal[Action.UPDATE] = Action.UPDATE
    capacity: int | None = None
    billing_type: str | None = None
    tags: dict[str, str] | None = None
    identity: IdentityParams | None = None
    # ARM merges user-assigned identities on PATCH: the ones to leave are sent as null
    unassign_identities: tuple[str, ...] = ()


class DeleteParams(_ClusterParams):
    action: Literal[Action.DELETE] = Action.DELETE
    location: str  # the journal files the deletion under its region (rules C2, C11)


class SetKeyParams(_ClusterParams):
    action: Literal[Action.SET_KEY] = Action.SET_KEY
    key: KeyParams | None  # None clears the key (rule C13)


class _LinkWrite(_Frozen):
    # set by the executor as it sends (journaled first), never planned: x-ms-client-request-id, which the
    # Activity Log shows, so the journal's record and Azure's are one operation (rule W3)
    request_id: str | None = Field(default=None, exclude=True)


class LinkParams(_LinkWrite):
    action: Literal[Action.LINK] = Action.LINK
    workspace_id: str
    cluster_id: str


class UnlinkParams(_LinkWrite):
    action: Literal[Action.UNLINK] = Action.UNLINK
    workspace_id: str
    cluster_id: str | None  # the cluster it leaves; linked elsewhere meanwhile = not ours to unlink


class ByosLinkParams(_Frozen):
    action: Literal[Action.BYOS_LINK] = Action.BYOS_LINK
    workspace_id: str
    data_source_type: str  # Query | Alerts (rule B1)
    storage_account_id: str


class ByosUnlinkParams(_Frozen):
    action: Literal[Action.BYOS_UNLINK] = Action.BYOS_UNLINK
    workspace_id: str
    data_source_type: str


Parameters = Annotated[
    CreateParams | UpdateParams | DeleteParams | SetKeyParams | LinkParams | UnlinkParams | ByosLinkParams
    | ByosUnlinkParams,
    Field(discriminator="action"),
]
ClusterParameters = CreateParams | UpdateParams | DeleteParams | SetKeyParams
WorkspaceParameters = LinkParams | UnlinkParams | ByosLinkParams | ByosUnlinkParams


def _same_action(action: Action, parameters: Parameters | None) -> None:
    if parameters is not None and parameters.action is not action:
        raise ValueError(f"parameters of a {parameters.action} on a {action} step")


def _tag_parameters(data: Any) -> Any:
    """Parameters given as a mapping without their `action` take the step's (one action per step)."""
    if isinstance(data, dict) and isinstance(data.get("parameters"), dict) and "action" in data:
        params = data["parameters"]
        if "action" not in params:
            data = {**data, "parameters": {"action": data["action"], **params}}
    return data


class Change(_Frozen):
    """One operation to run now, after the changes it depends on."""

    id: str
    action: Action
    address: str  # human address, e.g. cluster.prod-weu or workspace.ws-1 (contains name or id)
    resource_id: str  # the ARM id the operation targets
    cluster_id: str | None = None  # the cluster whose operation slot it uses (C6/W5 serialisation)
    depends_on: tuple[str, ...] = ()
    # what the executor sends and then checks after the operation ("inconsistent result" otherwise)
    parameters: Parameters
    # for people: what the fields the change touches read before, and will read after
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: str = ""
    rules: tuple[Rule, ...] = ()
    destructive: bool = False
    warnings: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _tag(cls, data: Any) -> Any:
        return _tag_parameters(data)

    @model_validator(mode="after")
    def _parameters_match(self) -> Change:
        _same_action(self.action, self.parameters)
        return self

    @property
    def workspace_id(self) -> str | None:
        """The workspace a link or BYOS change operates on (rule W5), None for cluster changes."""
        p = self.parameters
        return p.workspace_id if isinstance(p, WorkspaceParameters) else None


class Deferred(_Frozen):
    """A change that can't run yet and will become possible at `not_before` (not a failure)."""

    id: str
    action: Action
    address: str
    resource_id: str
    rule: Rule
    reason: str
    not_before: datetime | None  # None: possible once an upstream deferred change has run
    depends_on: tuple[str, ...] = ()
    parameters: Parameters | None = None  # None: not known until an upstream step has run

    @model_validator(mode="before")
    @classmethod
    def _tag(cls, data: Any) -> Any:
        return _tag_parameters(data)

    @model_validator(mode="after")
    def _parameters_match(self) -> Deferred:
        _same_action(self.action, self.parameters)
        return self


class Blocked(_Frozen):
    """A change that can never run as declared; the user must act."""

    id: str
    action: Action
    address: str
    resource_id: str
    rule: Rule | None  # None: no service rule, e.g. a missing resource group
    reason: str
    remedy: str


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Warning_(_Frozen):
    code: str
    message: str
    address: str | None = None
    rule: Rule | None = None
    severity: Severity = Severity.WARNING


class Drift(_Frozen):
    """Live differs from the spec for a resource."""

    address: str
    resource_id: str
    field: str
    desired: Any = None
    live: Any = None
    severity: Severity = Severity.WARNING
    rule: Rule | None = None
    # changed outside cmkctl since the last apply, spec unchanged: reported, not reverted (drift: report)
    held: bool = False


class Summary(_Frozen):
    """How many changes of each action run now (actions without any are left out), and what waits."""

    by_action: dict[Action, int] = Field(default_factory=dict)
    deferred: int = 0
    blocked: int = 0
    drift: int = 0

    @property
    def changes(self) -> int:
        return sum(self.by_action.values())

    def count(self, *actions: Action) -> int:
        return sum(self.by_action.get(a, 0) for a in actions)

    def tally(self, column: Tally) -> int:
        return sum(n for a, n in self.by_action.items() if a.traits.tally is column)


class LeftOut(_Frozen):
    """A step of the full plan that a targeted plan does not contain (`--target`)."""

    id: str
    action: Action
    address: str
    status: Literal["change", "deferred", "blocked"]


class Targeting(_Frozen):
    """Made with `--target`: only these addresses and the steps they depend on, like Terraform's -target.

    `left_out` names every step of the full plan that this one does not run or report."""

    addresses: tuple[str, ...]
    left_out: tuple[LeftOut, ...] = ()


class Plan(_Frozen):
    format_version: str = FORMAT_VERSION
    generated_at: datetime
    limits_profile: str
    fingerprint: str  # hash of the observed state the plan was made from (stale-plan check)
    spec_digest: str = ""
    changes: tuple[Change, ...] = ()
    deferred: tuple[Deferred, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    warnings: tuple[Warning_, ...] = ()
    drift: tuple[Drift, ...] = ()
    summary: Summary = Field(default_factory=Summary)
    # added for `cmkctl apply PLANFILE`: what to re-observe and how to say what went stale
    spec_paths: tuple[str, ...] = ()  # the -f paths the plan was made from
    resource_digests: dict[str, str] = Field(default_factory=dict)  # planning.fingerprint.resource_digests
    # made with --correct-drift (or settings.drift: correct): applying it reviewed the reverts too
    correct_drift: bool = False
    # made with --target (None: the whole spec); planning.targeting.target_plan
    targeting: Targeting | None = None

    @property
    def complete(self) -> bool:
        """False while anything is deferred or blocked: the controller requeues at next_not_before."""
        return not self.deferred and not self.blocked

    @property
    def next_not_before(self) -> datetime | None:
        dates = [d.not_before for d in self.deferred if d.not_before is not None]
        return min(dates) if dates else None

    @property
    def has_work(self) -> bool:
        return bool(self.changes or self.deferred)
