"""An in-memory Azure for executor logic tests (DAG, retries, journal order). It implements the
executor's own Gateway protocol; the SDK itself is exercised only against the emulator."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controller.azure import errors
from controller.azure.operations import Handle, OnSent, Precheck
from controller.planning.plan import Action, Change, Plan

SUB = "00000000-0000-0000-0000-000000000001"
T0 = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def cluster_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.OperationalInsights/clusters/{name}"


def workspace_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/{name}"


def create(name: str, *, deps: tuple[str, ...] = ()) -> Change:
    cid = cluster_id(name)
    return Change(
        id=f"create-{name}",
        action=Action.CREATE,
        address=f"cluster.{name}",
        resource_id=cid,
        cluster_id=cid,
        depends_on=deps,
        parameters={
            "subscription": SUB,
            "resource_group": "rg",
            "name": name,
            "location": "westeurope",
            "capacity": 1000,
            "identity": {"type": "SystemAssigned"},
            "billing_type": "Cluster",
            "double_encryption": True,
            "availability_zones": True,
        },
    )


def cluster_step(name: str, action: Action, step_id: str, *, deps: tuple[str, ...] = ()) -> Change:
    """An update (capacity) or set_key (clear) step on cluster `name`."""
    cid = cluster_id(name)
    target = {"subscription": SUB, "resource_group": "rg", "name": name}
    params = {**target, "capacity": 1000} if action is Action.UPDATE else {**target, "key": None}
    return Change(id=step_id, action=action, address=f"cluster.{name}", resource_id=cid, cluster_id=cid,
                  depends_on=deps, parameters=params)


def link(ws: str, cluster: str, *, deps: tuple[str, ...] = ()) -> Change:
    return Change(
        id=f"link-{ws}",
        action=Action.LINK,
        address=f"workspace.{ws}",
        resource_id=workspace_id(ws),
        cluster_id=cluster_id(cluster),
        depends_on=deps,
        parameters={"workspace_id": workspace_id(ws), "cluster_id": cluster_id(cluster)},
    )


def plan_of(*changes: Change, **kw: Any) -> Plan:
    return Plan(generated_at=T0, limits_profile="seed", fingerprint="sha256:x", changes=changes, **kw)


@dataclass
class FakeAzure:
    """Targets in `done` are in effect; `faults[change_id]` are raised by successive start() calls."""

    done: set[str] = field(default_factory=set)
    faults: dict[str, list[Exception]] = field(default_factory=lambda: defaultdict(list))
    # an OutcomeUnknown fault that nevertheless took effect (the response was lost, not the request)
    lost_responses: set[str] = field(default_factory=set)
    sent: list[str] = field(default_factory=list)
    timeline: list[tuple[str, str]] = field(default_factory=list)  # ("sent" | "done", step id), in order
    resumed: list[tuple[str, str]] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    failed_operations: set[str] = field(default_factory=set)  # tokens whose LRO ended Failed
    step_seconds: float = 0.0
    store: Any = None  # to check the journal order
    journal_seen_before_wait: list[bool] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_active: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_total: int = 0
    _total: int = 0
    send_seconds: float = 0.0  # how long a request takes before Azure accepts it
    sending: int = 0
    max_sending: int = 0
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def precheck(self, change: Change) -> Precheck:
        return Precheck.DONE if change.id in self.done else Precheck.NEEDED

    def wait_idle(self, change: Change, *, timeout: float) -> None:
        return None

    def start(self, change: Change, on_sent: OnSent) -> Handle:
        if self.send_seconds:
            with self._guard:
                self.sending += 1
                self.max_sending = max(self.max_sending, self.sending)
            time.sleep(self.send_seconds)
            with self._guard:
                self.sending -= 1
        with self._guard:
            self.sent.append(change.id)
            self.timeline.append(("sent", change.id))
            pending = self.faults.get(change.id)
            fault = pending.pop(0) if pending else None
        if fault is not None:
            if change.id in self.lost_responses:
                self.done.add(change.id)
            raise fault
        on_sent(f"https://status/{change.id}", f"token-{change.id}")
        return Handle(change.action, change.resource_id, change, f"token-{change.id}", None)

    def wait(self, handle: Handle) -> None:
        change: Change = handle.poller
        if self.store is not None:
            (op,) = [o for o in self.store.load().in_flight if o.op_id == change.id]
            self.journal_seen_before_wait.append(op.continuation_token == f"token-{change.id}")
        key = change.cluster_id or change.resource_id
        with self._guard:
            self.active[key] += 1
            self._total += 1
            self.max_active[key] = max(self.max_active[key], self.active[key])
            self.max_total = max(self.max_total, self._total)
        time.sleep(self.step_seconds)
        with self._guard:
            self.active[key] -= 1
            self._total -= 1
            self.done.add(change.id)
            self.finished.append(change.id)
            self.timeline.append(("done", change.id))

    def verify(self, change: Change) -> None:
        if change.id not in self.done:
            raise errors.Terminal(f"{change.address}: inconsistent result")

    def resume(self, *, action: str, target: str, parameters: dict[str, Any], token: str) -> None:
        self.resumed.append((action, token))
        if token in self.failed_operations:
            raise errors.Terminal(f"Azure said: operation {token} Failed: InternalError")

    def read_link(self, workspace_id: str) -> dict[str, Any] | None:
        return (
            {"properties": {"provisioningState": "Succeeded"}}
            if f"linked:{workspace_id}" in self.done
            else None
        )
