"""The mutable workbench one `make_plan` call fills in, shared by the per-kind planners.

Why a workbench: the kinds depend on each other (a link waits on its cluster's create and key
steps, a create may wait on a delete that frees a region slot), so each kind records what it
decided about its resources here and the later kinds read it. Nothing in here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.model import ids
from controller.model.history import History
from controller.model.limits import Limits
from controller.model.observed import ObservedState
from controller.model.rules import Rule
from controller.model.spec import DesiredState
from controller.planning.plan import Action, Blocked, Change, Deferred, Drift, Parameters, Severity, Warning_


@dataclass
class Gate:
    """What a workspace link into a cluster must wait for (rules W4, C6).

    `ready` with empty `depends_on`: link now. `depends_on`: link in this plan after those steps.
    `waiting`: the cluster is not linkable in this plan: the link is deferred with `rule`,
    `not_before` and `reason` (and depends on `wait_ids`, the deferred/blocked steps it waits on).
    """

    depends_on: list[str] = field(default_factory=list)
    waiting: bool = False
    rule: Rule = Rule.W4
    reason: str = ""
    not_before: datetime | None = None
    wait_ids: list[str] = field(default_factory=list)

    def wait(self, rule: Rule, reason: str, not_before: datetime | None, wait_id: str | None) -> None:
        """Keep the first reason; the latest date (the link is possible only when all have passed)."""
        if not self.waiting:
            self.rule, self.reason = rule, reason
        self.waiting = True
        if not_before is not None and (self.not_before is None or not_before > self.not_before):
            self.not_before = not_before
        if wait_id is not None and wait_id not in self.wait_ids:
            self.wait_ids.append(wait_id)


@dataclass
class Workbench:
    desired: DesiredState
    observed: ObservedState
    now: datetime
    history: History
    limits: Limits
    changes: dict[str, Change] = field(default_factory=dict)
    deferred: dict[str, Deferred] = field(default_factory=dict)
    blocked: dict[str, Blocked] = field(default_factory=dict)
    warnings: list[Warning_] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    # cluster id_key -> the gate its links wait on
    gates: dict[str, Gate] = field(default_factory=dict)
    # cluster id_key -> ids of delete steps for it (a create may need that slot: C2)
    deletes: dict[str, str] = field(default_factory=dict)

    def add(self, change: Change) -> None:
        if change.id in self.changes or change.id in self.deferred or change.id in self.blocked:
            raise ValueError(f"duplicate plan step id {change.id}")  # a planner bug, never user input
        self.changes[change.id] = change

    def defer(
        self,
        *,
        id: str,
        action: Action,
        address: str,
        resource_id: str,
        rule: Rule,
        reason: str,
        not_before: datetime | None,
        depends_on: tuple[str, ...] | list[str] = (),
        parameters: Parameters | None = None,
    ) -> None:
        if id in self.changes or id in self.deferred or id in self.blocked:
            raise ValueError(f"duplicate plan step id {id}")
        self.deferred[id] = Deferred(
            id=id, action=action, address=address, resource_id=resource_id, rule=rule, reason=reason,
            not_before=not_before, depends_on=tuple(sorted(set(depends_on))), parameters=parameters,
        )

    def block(
        self, *, id: str, action: Action, address: str, resource_id: str, rule: Rule | None, reason: str,
        remedy: str,
    ) -> None:
        if id in self.blocked:
            return  # the first reason wins; one blocked item per step
        self.changes.pop(id, None)
        self.deferred.pop(id, None)
        self.blocked[id] = Blocked(
            id=id, action=action, address=address, resource_id=resource_id, rule=rule, reason=reason,
            remedy=remedy,
        )

    def warn(
        self, code: str, message: str, *, address: str | None = None, rule: Rule | None = None,
        severity: Severity = Severity.WARNING,
    ) -> None:
        self.warnings.append(
            Warning_(code=code, message=message, address=address, rule=rule, severity=severity)
        )

    def drifted(
        self, *, address: str, resource_id: str, field_: str, desired: Any, live: Any,
        severity: Severity = Severity.WARNING, rule: Rule | None = None,
    ) -> None:
        self.drift.append(
            Drift(address=address, resource_id=resource_id, field=field_, desired=desired, live=live,
                  severity=severity, rule=rule)
        )

    def gate(self, cluster_arm_id: str) -> Gate:
        return self.gates.setdefault(ids.id_key(cluster_arm_id), Gate())

    def pending(self, step_id: str) -> bool:
        """True when a step exists in the plan but cannot run now (deferred or blocked)."""
        return step_id in self.deferred or step_id in self.blocked


def cluster_path(subscription: str, resource_group: str, name: str) -> str:
    """The readable part of cluster step ids: <sub>/<rg>/<name>."""
    return f"{subscription}/{resource_group}/{name}"


def workspace_path(workspace_id: str) -> str:
    rid = ids.ResourceId.parse(workspace_id)
    return f"{rid.subscription}/{rid.resource_group}/{rid.name}"


def workspace_name(workspace_id: str) -> str:
    return ids.ResourceId.parse(workspace_id).name
