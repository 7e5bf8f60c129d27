"""The plan artefact: what will run now (a DAG), what must wait and until when, what can never run.

`Plan` serialises to the versioned JSON that `cmkctl plan --out` writes and `cmkctl apply PLANFILE`
reads; text and markdown are rendered from that JSON only (controller.render).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = "1.0"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    SET_KEY = "set_key"
    LINK = "link"
    UNLINK = "unlink"
    BYOS_LINK = "byos_link"
    BYOS_UNLINK = "byos_unlink"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Change(_Frozen):
    """One operation to run now, after the changes it depends on."""

    id: str
    action: Action
    address: str  # human address, e.g. cluster.prod-weu or workspace.ws-1 (contains name or id)
    resource_id: str  # the ARM id the operation targets
    cluster_id: str | None = None  # the cluster whose operation slot it uses (C6/W5 serialisation)
    depends_on: tuple[str, ...] = ()
    # what the executor sends and then checks after the operation ("inconsistent result" otherwise)
    parameters: dict[str, Any] = Field(default_factory=dict)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: str = ""
    rules: tuple[str, ...] = ()
    destructive: bool = False
    warnings: tuple[str, ...] = ()


class Deferred(_Frozen):
    """A change that can't run yet and will become possible at `not_before` (not a failure)."""

    id: str
    action: Action
    address: str
    resource_id: str
    rule: str
    reason: str
    not_before: datetime | None  # None: possible once an upstream deferred change has run
    depends_on: tuple[str, ...] = ()
    parameters: dict[str, Any] = Field(default_factory=dict)


class Blocked(_Frozen):
    """A change that can never run as declared; the user must act."""

    id: str
    action: Action
    address: str
    resource_id: str
    rule: str
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
    rule: str | None = None
    severity: Severity = Severity.WARNING


class Drift(_Frozen):
    """Live differs from the spec for a resource."""

    address: str
    resource_id: str
    field: str
    desired: Any = None
    live: Any = None
    severity: Severity = Severity.WARNING
    rule: str | None = None
    # changed outside cmkctl since the last apply, spec unchanged: reported, not reverted (drift: report)
    held: bool = False


class Summary(_Frozen):
    create: int = 0
    update: int = 0
    delete: int = 0
    set_key: int = 0
    link: int = 0
    unlink: int = 0
    byos_link: int = 0
    byos_unlink: int = 0
    deferred: int = 0
    blocked: int = 0
    drift: int = 0

    @property
    def changes(self) -> int:
        return (
            self.create + self.update + self.delete + self.set_key + self.link
            + self.unlink + self.byos_link + self.byos_unlink
        )


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
