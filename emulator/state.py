"""The emulator's whole world: one object, one lock. Async operations are not threads: each has a
simulated start and duration and is completed lazily (`tick`) whenever a request reads the state,
so advancing the clock finishes them deterministically."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from emulator.clock import SimClock, iso7
from emulator.clouds import PUBLIC, CloudHosts
from emulator.keyvault import VaultRegistry
from emulator.limits import DEFAULT_PROFILE, PROFILES, Limits
from emulator.resources import activity_log

DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"

# Realistic defaults (docs/azure-wire.md, seed doc): tests shorten them through `configure`.
DEFAULT_DURATIONS: dict[str, float] = {
    "cluster_create": 2 * 3600.0,
    "cluster_update": 120.0,
    "cluster_delete": 60.0,
    "link": 90 * 60.0,
    "unlink": 90 * 60.0,
    "workspace_create": 2.0,
}


def norm_loc(location: str) -> str:
    """'East US' and 'eastus' are the same region (docs/azure-wire.md)."""
    return location.replace(" ", "").lower()


@dataclass
class Operation:
    id: str
    kind: str  # one of DEFAULT_DURATIONS keys
    subscription: str
    location: str
    start: datetime
    end: datetime
    target: str  # key of the resource it acts on
    fail: bool = False
    done: bool = False
    failed: bool = False
    error: dict[str, str] | None = None
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Cluster:
    subscription: str
    resource_group: str
    name: str
    location: str  # as sent
    tags: dict[str, str]
    identity_type: str
    principal_id: str | None
    tenant_id: str
    user_identities: dict[str, dict[str, str]]
    capacity: int
    sku_name: str
    billing_type: str
    double_encryption: bool
    availability_zones: bool
    key: dict[str, Any] | None
    cluster_id: str
    created: datetime
    last_modified: datetime
    last_sku_update: datetime
    op: Operation | None = None
    failed: bool = False
    deleted_at: datetime | None = None
    revoked: bool = False
    access_removed: bool = False  # rule C12: irreversible
    key_removed: bool = False  # rule C13: a removed key reads back as `keyVaultProperties: {}`

    @property
    def key_id(self) -> str:
        return f"{self.subscription}/{self.resource_group}/{self.name}".lower()

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.OperationalInsights/clusters/{self.name}"
        )

    def running_op(self) -> Operation | None:
        return self.op if self.op is not None and not self.op.done else None

    def provisioning_state(self) -> str:
        op = self.running_op()
        if op is not None:
            return {"cluster_create": "Creating", "cluster_update": "Updating", "cluster_delete": "Deleting"}[
                op.kind
            ]
        return "Failed" if self.failed else "Succeeded"

    def effective_principal(self) -> str | None:
        if "userassigned" in self.identity_type.lower() and self.user_identities:
            return next(iter(self.user_identities.values())).get("principalId")
        return self.principal_id


@dataclass
class Workspace:
    subscription: str
    resource_group: str
    name: str
    location: str
    tags: dict[str, str]
    sku: str
    retention: int
    customer_id: str
    created: datetime
    modified: datetime
    ready_at: datetime
    cluster: str | None = None  # cluster ARM id (canonical casing) when linked
    linked_at: datetime | None = None
    link_op: Operation | None = None
    link_history: list[tuple[datetime, str]] = field(default_factory=list)  # (time, link|unlink) W3
    saved_searches: int = 0
    storage: dict[str, list[str]] = field(default_factory=dict)  # data source type (lower) → ids
    cache: bytes | None = None
    tags_set: bool = True  # Azure answers `tags` only for a workspace whose tags were ever set

    @property
    def key_id(self) -> str:
        return f"{self.subscription}/{self.resource_group}/{self.name}".lower()

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourcegroups/{self.resource_group.lower()}"
            f"/providers/microsoft.operationalinsights/workspaces/{self.name}"
        )

    def running_link_op(self) -> Operation | None:
        return self.link_op if self.link_op is not None and not self.link_op.done else None


@dataclass
class Fault:
    method: str | None
    path: re.Pattern[str]
    status: int | None = None
    retry_after: float | None = None
    reset: bool = False
    delay: float = 0.0
    fail_operation: bool = False
    stick_operation: float = 0.0
    count: int | None = None
    probability: float | None = None
    code: str = "InternalServerError"
    message: str = "Injected fault."
    after_accept: bool = False  # serve the request first (its effect happens), then answer status/reset
    message_given: bool = False  # `message` was set by the caller, not defaulted
    body: Any = None  # with `has_body`: this JSON is the answer (status `status`, default 200)
    has_body: bool = False
    # set (a string) or drop (None) these headers on the real answer, which is served as usual: e.g. an
    # `Azure-AsyncOperation` or `Location` naming another host than the cloud's Resource Manager
    headers: dict[str, str | None] | None = None

    @property
    def shapes_operation(self) -> bool:
        """Applied when an async operation starts, not to the HTTP exchange."""
        return self.fail_operation or bool(self.stick_operation)

    def fires(self, method: str, path: str, rng: random.Random) -> bool:
        """Does this fault apply to the request? Consumes one of its `count` when it does."""
        if self.method and self.method.upper() != method:
            return False
        if not self.path.search(path):
            return False
        if self.probability is not None and rng.random() >= self.probability:
            return False
        if self.count is not None:
            if self.count <= 0:
                return False
            self.count -= 1
        return True


@dataclass
class Bucket:
    capacity: float
    rate: float
    tokens: float
    stamp: float


class Emulator:
    """All state. Handlers hold `self.lock` while they read or mutate it."""

    def __init__(
        self,
        *,
        clock: SimClock | None = None,
        limits: str = DEFAULT_PROFILE,
        tenant_id: str = DEFAULT_TENANT,
        durations: dict[str, float] | None = None,
        cloud: CloudHosts = PUBLIC,
    ) -> None:
        self.lock = threading.RLock()
        self.cloud = cloud  # which Azure this instance plays: its ARM, Key Vault and Managed HSM hosts
        self.clock = clock or SimClock()
        self.tenant_id = tenant_id
        self.limits: Limits = PROFILES.get(limits, PROFILES[DEFAULT_PROFILE])
        self.durations = dict(DEFAULT_DURATIONS)
        if durations:
            self.durations.update(durations)
        self.no_double_encryption_regions: set[str] = set()
        self.throttling = False
        # token buckets (capacity, refill per second) per subscription, docs/azure-wire.md
        self.throttle_limits: dict[str, tuple[float, float]] = {
            "reads": (250.0, 25.0),
            "writes": (200.0, 10.0),
        }
        self.cluster_page_size = 100
        self.activity_page_size = 200
        self.rng = random.Random()
        self._quiet = 0
        self._init_collections()
        self.vaults = _make_vault_registry(self.clock, self._recheck_revocations, cloud)

    def _init_collections(self) -> None:
        self.resource_groups: dict[str, dict[str, Any]] = {}  # "sub/rg" lower → {name, location, tags?}
        self.clusters: dict[str, Cluster] = {}  # active (incl. being deleted) by key_id
        self.soft_deleted: list[Cluster] = []  # rule C11
        self.workspaces: dict[str, Workspace] = {}
        self.storage_accounts: dict[str, dict[str, str]] = {}  # lower id → {id, location}
        self.identities: dict[str, dict[str, str]] = {}  # lower id → {principalId, clientId}
        self.operations: dict[str, Operation] = {}
        # Not yet completed, as a heap of (end, creation order, op): a tick pops only what is due.
        # One entry per operation; an operation whose end moved later is pushed again when its old
        # end comes (`tick`), so only `new_operation` may set an end earlier than the default.
        self.pending: list[tuple[datetime, int, Operation]] = []
        self._op_seq = itertools.count()
        # Rule W1, kept by `w1_refresh`: per lower-case cluster id, workspaces linked to it and
        # workspaces with a link to it running; per workspace key, what it is counted as.
        self._w1_linked: dict[str, int] = {}
        self._w1_linking: dict[str, int] = {}
        self._w1_counted: dict[str, tuple[str | None, str | None]] = {}
        self.activity: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.buckets: dict[tuple[str, str], Bucket] = {}
        self.list_cache: dict[str, bytes] = {}
        # Rules K1-K3 as time passes: until this simulated time no key's usability can change by time
        # alone (a version's nbf or exp, an outage reaching 30 minutes); None: recheck at the next tick.
        self._keys_settled_until: datetime | None = None

    def reset(self) -> None:
        """Empty world; configuration (durations, limits, clock) is kept."""
        with self.lock:
            self._init_collections()
            self.vaults.reset()

    def now(self) -> datetime:
        return self.clock.now()

    # ---- harm events ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def seeding(self) -> Iterator[None]:
        """While an estate is loaded, state is set, not changed: a cluster seeded with an unusable
        key was revoked before we looked, and that is not an event that happens now."""
        with self.lock:
            self._quiet += 1
            try:
                yield
            finally:
                self._quiet -= 1

    def harm(self, kind: str, rule: str, resource_id: str, detail: str) -> None:
        """Record damage Azure would do silently (reliability tests assert these never happen)."""
        if self._quiet:
            return
        self.events.append(
            {
                "kind": kind,
                "rule": rule,
                "resource_id": resource_id,
                "time": iso7(self.now()),
                "detail": detail,
            }
        )

    # ---- operations ----------------------------------------------------------------------------
    def new_operation(
        self,
        kind: str,
        subscription: str,
        location: str,
        target: str,
        *,
        end: datetime | None = None,
        **data: Any,
    ) -> Operation:
        """An operation started now, ending at `end` (default: after the configured duration of
        `kind`). Its end may later move only later (a `stick_operation` fault)."""
        now = self.now()
        op = Operation(
            id=str(uuid.uuid4()),
            kind=kind,
            subscription=subscription,
            location=norm_loc(location),
            start=now,
            end=now + timedelta(seconds=self.durations.get(kind, 0.0)) if end is None else end,
            target=target,
            data=dict(data),
        )
        self.operations[op.id] = op
        heapq.heappush(self.pending, (op.end, next(self._op_seq), op))
        return op

    def tick(self) -> None:
        """Complete every operation whose simulated end has passed, in end-time order (operations
        ending at the same time in the order they started)."""
        now = self.now()
        due: list[Operation] = []
        while self.pending and self.pending[0][0] <= now:
            end, seq, op = heapq.heappop(self.pending)
            if op.done:
                continue
            if op.end > end:  # its end moved later: it is due then
                heapq.heappush(self.pending, (op.end, seq, op))
                continue
            due.append(op)
        for op in due:
            self._complete(op)
        self._expire_soft_deleted(now)
        settled = self._keys_settled_until
        if (settled is None or now >= settled) and any(
            c.key is not None and not c.access_removed for c in self.clusters.values()
        ):
            self._recheck_revocations()  # a key version may expire, an outage may last, as time passes

    def something_changed(self) -> None:
        """A write or an admin call may have changed a cluster's key, identity or access: the next tick
        rechecks every key (rules K1-K3) rather than waiting for the next time-driven change."""
        self._keys_settled_until = None

    # ---- rule W1: workspaces per cluster -------------------------------------------------------
    def w1_refresh(self, ws_key: str) -> None:
        """Recount one workspace for rule W1: call after anything that may change whether the
        workspace at `ws_key` exists, is linked, or has a link running (and to which cluster)."""
        x = self.workspaces.get(ws_key)
        new: tuple[str | None, str | None] = (None, None)
        if x is not None:
            op = x.running_link_op()
            new = (
                x.cluster.lower() if x.cluster else None,
                str(op.data.get("cluster", "")).lower() if op is not None and op.kind == "link" else None,
            )
        old = self._w1_counted.get(ws_key, (None, None))
        if new == old:
            return
        for counts, before, after in ((self._w1_linked, old[0], new[0]), (self._w1_linking, old[1], new[1])):
            if before is not None:
                counts[before] -= 1
            if after is not None:
                counts[after] = counts.get(after, 0) + 1
        if new == (None, None):
            del self._w1_counted[ws_key]
        else:
            self._w1_counted[ws_key] = new

    def linked_or_linking(self, cluster_id: str) -> tuple[int, int]:
        """Rule W1: (workspaces linked to the cluster, workspaces with a link to it running)."""
        cid = cluster_id.lower()
        return self._w1_linked.get(cid, 0), self._w1_linking.get(cid, 0)

    def _complete(self, op: Operation) -> None:
        self._keys_settled_until = None  # an ended operation may have set or removed a key
        op.done = True
        op.failed = op.fail
        if op.fail and op.error is None:
            op.error = {"code": "InternalServerError", "message": "The operation failed (injected fault)."}
        handler: Callable[[Operation], None] = getattr(self, f"_finish_{op.kind}")
        handler(op)
        if op.kind in ("link", "unlink"):
            self.w1_refresh(op.target)  # rule W1: linked, or the failed link no longer counts

    def _finish_cluster_create(self, op: Operation) -> None:
        c = self.clusters.get(op.target)
        if c is None:
            return
        c.last_modified = op.end
        if op.failed:
            c.failed = True
        self.list_cache.clear()

    def _finish_cluster_update(self, op: Operation) -> None:
        c = self.clusters.get(op.target)
        if c is None:
            return
        c.last_modified = op.end
        if not op.failed:
            # rule facts §12.10: the new key becomes visible only when the update succeeded
            c.key = op.data.get("key")
            c.key_removed = c.key is None  # rule C13: the removal took effect
            c.revoked = False
            self._recheck_revocations()
        self.list_cache.clear()

    def _finish_cluster_delete(self, op: Operation) -> None:
        activity_log.activity_end(self, op)
        c = self.clusters.get(op.target)
        if c is None or op.failed:
            return
        del self.clusters[op.target]
        c.deleted_at = op.end
        self.soft_deleted.append(c)  # rule C11
        # Deleting a cluster unlinks its workspaces (docs/azure-wire.md).
        for ws in self.workspaces.values():
            if ws.cluster and ws.cluster.lower() == c.arm_id.lower():
                ws.cluster = None
                ws.linked_at = None
                ws.cache = None
                self.w1_refresh(ws.key_id)  # rule W1
        self.list_cache.clear()

    def _finish_workspace_create(self, op: Operation) -> None:
        return

    def _finish_link(self, op: Operation) -> None:
        ws = self.workspaces.get(op.target)
        activity_log.activity_end(self, op)
        if ws is None or op.failed:
            return
        ws.cluster = op.data["cluster"]
        ws.linked_at = op.end
        ws.cache = None
        self.list_cache.clear()

    def _finish_unlink(self, op: Operation) -> None:
        ws = self.workspaces.get(op.target)
        activity_log.activity_end(self, op)
        if ws is None or op.failed:
            return
        ws.cluster = None
        ws.linked_at = None
        ws.cache = None
        self.list_cache.clear()

    def _expire_soft_deleted(self, now: datetime) -> None:
        keep = timedelta(days=self.limits.soft_delete_days)
        self.soft_deleted = [c for c in self.soft_deleted if c.deleted_at and now - c.deleted_at < keep]

    # ---- revocation (rules K1/K2/C12) ----------------------------------------------------------
    def _recheck_revocations(self) -> None:
        """Called by the vault registry after any vault/key change (and on every tick): a cluster whose
        key is no longer usable is revoked and drops ingestion (K1/K2; K3 after a 30-minute vault
        outage outlasts the unwrap cache); access returning restores it."""
        with self.lock:
            self._keys_settled_until = self.vaults.settled_until(self.now())
            for c in self.clusters.values():
                if c.key is None or c.access_removed:
                    continue
                principal = c.effective_principal() or ""
                uri = str(c.key.get("keyVaultUri", ""))
                usable = self.vaults.key_usable(
                    key_vault_uri=uri,
                    key_name=str(c.key.get("keyName", "")),
                    key_version=str(c.key.get("keyVersion", "") or ""),
                    principal_id=principal,
                )
                if not usable and not c.revoked:
                    c.revoked = True
                    if not self.vaults.vault_available(uri):
                        rule, why = "K3", "the Key Vault has been unreachable for 30 minutes"
                    else:
                        rule, why = (
                            "K2",
                            "key version disabled/deleted/expired or the cluster's access removed",
                        )
                    self.harm(
                        "revoked",
                        rule,
                        c.arm_id,
                        f"The cluster's key is no longer usable ({why}): storage becomes unavailable, "
                        "queries fail and new ingested data is dropped.",
                    )
                elif usable and c.revoked:
                    c.revoked = False

    # ---- request log ---------------------------------------------------------------------------
    def log_request(
        self,
        method: str,
        host: str,
        path: str,
        status: int,
        api_version: str | None = None,
        *,
        query: dict[str, str] | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "method": method,
            "host": host,
            "path": path,
            "status": status,
            "time": iso7(self.now()),
            "api_version": api_version,
        }
        options = {k: v for k, v in (query or {}).items() if k.startswith("$")}  # OData: $filter, $select
        if options:
            entry["query"] = options
        with self.lock:
            self.requests.append(entry)


def _make_vault_registry(clock: SimClock, on_change: Callable[[], None], cloud: CloudHosts) -> VaultRegistry:
    """The Key Vault side of the emulated cloud (emulator/keyvault.py)."""
    return VaultRegistry(clock=clock.now, on_change=on_change, cloud=cloud)
