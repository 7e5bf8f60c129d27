"""lock -> resume in-flight -> apply -> record: the writing half of the pipeline, written once.

`cmkctl apply` and each controller pass that writes open an `ApplySession`; everything that must
happen under the one-writer lock (resuming journaled operations, executing, recording the revision)
happens between `open()` and `close()`, which never leave a lock or a store behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType

from controller.azure.clients import AzureClients
from controller.azure.errors import AzureError
from controller.azure.observe import observe
from controller.azure.operations import Operations
from controller.execution.executor import ApplyResult, Executor, Gateway, StepResult, StepStatus
from controller.execution.progress import Progress
from controller.loading import load
from controller.model import ids
from controller.model.history import History, HistoryStore, Revision, WriterLock
from controller.model.observed import ObservedState
from controller.model.settings import Settings
from controller.planning.fingerprint import forget_digests
from controller.planning.plan import Plan
from controller.service.memory import few_arenas, give_back
from controller.service.snapshot import RecordBasis, Snapshot, look


class ApplySession:
    """One writer's session on a state location: the lock is held from `open()` to `close()`."""

    def __init__(
        self,
        lock: WriterLock,
        open_store: Callable[[], HistoryStore],
        *,
        clients: AzureClients,
        settings: Settings | None = None,
        gateway: Gateway | None = None,
        parallelism: int = 10,
        busy_timeout: float | None = None,
        backoff: float | None = None,
        progress: Progress | None = None,
        now: Callable[[], datetime] | None = None,
        plan_id: str | None = None,
        close_store: bool = True,
    ) -> None:
        few_arenas()  # before the executor's and the watch's threads (controller.service.memory)
        knobs = settings or Settings.read()
        self.lock = lock
        self._open_store = open_store
        self.clients = clients
        # journal times on the planning clock: Azure's (ARM's `Date`), the local one before it answers
        self.now = now or clients.service_now
        self._given_now = now
        self.gateway: Gateway = gateway or Operations(clients, operation_timeout=knobs.operation_timeout)
        self._parallelism = parallelism
        self._busy_timeout = knobs.busy_timeout if busy_timeout is None else busy_timeout
        self._backoff = knobs.retry_backoff if backoff is None else backoff
        self._progress = progress
        self._plan_id = plan_id
        self._close_store = close_store
        self.store: HistoryStore | None = None
        self._executor: Executor | None = None

    # -- lifetime ---------------------------------------------------------------------------------
    def open(self, *, timeout: float = 0.0) -> ApplySession:
        """Take the writer lock (LockHeldError naming the holder after `timeout`), open the journal."""
        self.lock.acquire(timeout=timeout)
        try:
            self.store = self._open_store()
        except BaseException:
            self.lock.release()
            raise
        self._executor = Executor(
            gateway=self.gateway,
            store=self.store,
            now=self.now,
            parallelism=self._parallelism,
            busy_timeout=self._busy_timeout,
            backoff=self._backoff,
            progress=self._progress,
            plan_id=self._plan_id,
        )
        return self

    def close(self) -> None:
        closer = getattr(self.store, "close", None) if self._close_store else None
        try:
            if callable(closer):
                closer()
        finally:
            self.store = None
            self.lock.release()

    def __enter__(self) -> ApplySession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.store is not None:
            self.close()

    # -- the steps --------------------------------------------------------------------------------
    @property
    def executor(self) -> Executor:
        if self._executor is None:
            raise RuntimeError("ApplySession.open() first")
        return self._executor

    def _held(self) -> HistoryStore:
        if self.store is None:
            raise RuntimeError("ApplySession.open() first")
        return self.store

    def journal_store(self) -> HistoryStore:
        """The journal this session holds (under the lock)."""
        return self._held()

    def journal(self) -> History:
        return self._held().load()

    def resume(self) -> list[StepResult]:
        """Finish what an interrupted writer left running (journaled LRO tokens; never re-sent)."""
        return self.executor.resume_in_flight()

    def look(
        self, spec_paths: Sequence[str], *, now: datetime | None = None, correct_drift: bool = False
    ) -> Snapshot:
        """Load and plan under the lock, with the journal this session holds (W3 budget, C11 names)."""
        desired = load(list(spec_paths), cloud=self.clients.cloud)
        when = now or (self._given_now() if self._given_now is not None else None)
        return look(desired, self.clients, journal=self.journal(), now=when, correct_drift=correct_drift)

    def execute(self, plan: Plan) -> ApplyResult:
        """Run what the plan says is ready now (deferred and blocked items stay in the result)."""
        # planning's memos: their memory goes to the operations in flight
        ids.forget_parsed()
        forget_digests()
        give_back()
        try:
            return self.executor.apply(plan)
        finally:
            # what the operations in flight held is free now: the state read again and the journal
            # entries of the record start from a heap without it (see controller.service.memory)
            give_back()

    def record(
        self,
        revision: str,
        summary: dict[str, int],
        basis: RecordBasis | None = None,
        *,
        only_keys: set[str] | None = None,
    ) -> None:
        """Journal the applied revision and, with the basis of the snapshot it applied (its
        `Snapshot.basis`), what it left per resource, read again now (`only_keys`: those resources
        only, for a plan made with --target)."""
        store = self._held()
        if basis is not None:
            record_applied(store, basis, self.clients, revision=revision, now=self.now(), only_keys=only_keys)
        store.record_revision(Revision(revision=revision, applied_at=self.now(), summary=summary))


def record_applied(
    store: HistoryStore,
    basis: RecordBasis,
    clients: AzureClients | None,
    *,
    observed: ObservedState | None = None,
    revision: str,
    now: datetime,
    only_missing: bool = False,
    only_keys: set[str] | None = None,
) -> bool:
    """Journal, per declared resource, the spec's intent and the live state the apply left: what
    `drift: report` and the "changed outside cmkctl" report compare with from now on.

    With `clients`, the state is read again (no Activity Log); without, `observed` is (the snapshot's
    own reading: nothing was written since). `only_missing`: record only resources the journal has no
    entry for yet (a first in-sync pass). `only_keys`: only these journal keys (a targeted apply
    records the resources it covered, never those it left alone). False when Azure cannot be read now
    (the next apply records)."""
    after = observed
    if clients is not None:
        try:
            after, _ = observe(basis.desired, clients, now=now, activity_log=False)
        except AzureError:
            return False
    if after is None:
        raise ValueError("record_applied needs the clients to read the state again, or the state read")
    entries = basis.records(after, revision=revision, now=now)
    del after  # the records hold what they need of it: the reading is free before the journal writes
    if only_missing:
        entries = [e for e in entries if e.key not in basis.applied]
    if only_keys is not None:
        entries = [e for e in entries if e.key in only_keys]
    store.record_applied(entries)
    return True


def step_counts(result: ApplyResult) -> dict[str, int]:
    """How many steps ended in each status (the journal's revision summary)."""
    return {str(s): result.count(s) for s in StepStatus if result.count(s)}
