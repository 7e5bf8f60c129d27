"""Watches every in-flight operation of an apply with one scheduler, inside ARM's read budget.

The SDK's LROPoller runs one thread per operation and polls it every `polling_interval` (30 s): 40,000
links of ~90 min would cost ~7 M reads, about 130 a second per subscription of 4,000 links, five times
ARM's refill of 25 (docs/azure-wire.md). Here the SDK's own ARM polling logic is kept (status URL,
Retry-After, terminal states, final GET, errors as the SDK raises them) but driven one status read at
a time by a scheduler:

* `DeferredPolling` is ARMPolling that tells its LROPoller it has finished, so the poller starts no
  thread; `poll_once` makes one status read;
* `Watch` spreads the reads of each subscription's operations over `read_share` of its read refill,
  never faster than `min_interval` per operation: with n operations running in a subscription each is
  read every max(min_interval, n / (share x rate)) seconds. A few worker threads make the reads (an
  ARM GET takes tens of milliseconds); the operations themselves hold no thread.
* Link progress from the list: a link (or unlink) is over when its workspace shows the cluster in
  `features.clusterResourceId` (or none), and ONE workspaces list per subscription shows that for
  all its workspaces. When a subscription has more links in flight than per-operation reads can
  follow every `list_interval`, the Watch lists its workspaces every `list_interval` and reads the
  status of a link the list shows ended at once (the SDK still decides how it ended: terminal state,
  final GET, error). The per-operation reads of such links drop to `probe_share` of the refill: they
  only find the links that fail, which the list cannot show. While the lists show none ended they
  space out (up to LIST_BACKOFF intervals): links run for an hour or more before the first ends.

The continuation token is ARMPolling's, so a journaled operation resumes after a crash as before.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.core.polling.base_polling import BadResponse, BadStatus
from azure.mgmt.core.polling.arm_polling import ARMPolling

from controller.azure import errors

# Of each subscription's read refill, what status reads may use: the rest stays for the executor's
# prechecks and verifies and for other clients of the subscription.
READ_SHARE = 0.8
# Of that refill, what the status reads of links the workspaces list follows may use: they look for
# failures only (a success shows in the list). 4,000 links of a subscription are each read about once
# an hour (a failure is seen within ~67 min of a link that takes ~90); a tenth of the refill read each
# every 27 min: ~100,000 more reads over fleet F's apply, for failures that are rare.
PROBE_SHARE = 0.04
# While its lists show no link ended, a subscription's lists space out up to this many list intervals.
LIST_BACKOFF = 4
# A workspace id key -> the cluster id key it is linked to (None: not linked), for one subscription.
Lister = Callable[[str], Mapping[str, str | None]]


class DeferredPolling(ARMPolling):
    """ARMPolling whose poller starts no thread: the Watch makes its status reads, one at a time."""

    _held = False

    def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
        super().initialize(client, initial_response, deserialization_callback)
        self._held = True  # LROPoller checks finished() right after this: no thread for us

    def finished(self) -> bool:
        return True if self._held else bool(super().finished())

    def poll_once(self) -> bool:
        """One status read; True when the operation has ended (its failure raised as the SDK does)."""
        self._held = False
        try:
            if not super().finished():
                try:
                    self.update_status()
                except (BadStatus, BadResponse) as err:
                    self._status = "Failed"
                    raise HttpResponseError(
                        response=self._pipeline_response.http_response, error=err
                    ) from err
            if not super().finished():
                return False
            self.run()  # the SDK's own end: raises on Failed/Canceled, makes the final GET if any
            return True
        finally:
            self._held = True

    def hinted_delay(self) -> float:
        """Retry-After of the last status answer (0 when none)."""
        try:
            response = self._pipeline_response.http_response
            value = response.headers.get("retry-after")
            return max(0.0, float(value)) if value else 0.0
        except (AttributeError, ValueError):
            return 0.0


@dataclass(eq=False, slots=True)
class _Entry:
    """One watched operation. The heap holds (due, seq, entry, gen): an item whose gen is no longer the
    entry's was superseded (the list moved the read forward) and is dropped when it comes up."""

    sub: str
    # the operation's polling, live or rebuilt for each read from its continuation token (`restore`:
    # an operation in flight then costs its compressed token, ~1 KB, not the ~40 KB of SDK objects
    # that hold its last answers); neither: the subscription's workspaces list
    method: DeferredPolling | None
    deadline: float
    on_done: Callable[[BaseException | None], None]
    probe: tuple[str, str | None] | None = None  # (workspace key, cluster key it ends linked to)
    restore: Callable[[], DeferredPolling] | None = None
    # handed the polling of an operation that ended well, before `on_done` (its final GET's answer)
    on_result: Callable[[DeferredPolling], None] | None = None
    hinted: float = 0.0  # Retry-After of its last status answer
    gen: int = 0
    ended: bool = False

    @property
    def is_list(self) -> bool:
        return self.method is None and self.restore is None


class Watch:
    """One scheduler for all operations of an apply (thread-safe; starts its thread on first use)."""

    def __init__(
        self,
        *,
        read_rate: Callable[[str], float | None],
        min_interval: float,
        workers: int = 8,
        read_share: float = READ_SHARE,
        clock: Callable[[], float] = time.monotonic,
        lister: Lister | None = None,
        list_interval: float | None = None,
        probe_share: float = PROBE_SHARE,
    ) -> None:
        self._read_rate = read_rate  # reads/s ARM refills for a subscription; None: unlimited
        self.min_interval = max(0.0, min_interval)
        self.read_share = read_share
        self._clock = clock
        self._lister = lister
        self.list_interval = 2 * self.min_interval if list_interval is None else list_interval
        self.probe_share = probe_share
        self._cond = threading.Condition()
        # one heap per subscription: a subscription at its read pace never holds back another's reads
        self._heaps: dict[str, list[tuple[float, int, _Entry, int]]] = {}
        self._seq = itertools.count()
        self._active: dict[str, int] = {}  # operations being watched, per subscription
        self._probes: dict[str, dict[str, _Entry]] = {}  # links the list can follow: sub -> ws key -> op
        self._listing: set[str] = set()  # subscriptions whose next list is scheduled
        self._list_gap: dict[str, float] = {}  # seconds from a subscription's last list to its next
        self._next_slot: dict[str, float] = {}  # earliest time of the subscription's next read
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="watch")
        # one list at a time: each holds every workspace of its subscription while it is read (~30 MB
        # for 4,000), and the subscriptions' lists at once were most of an apply's peak memory; lists
        # come at most every interval per subscription, so they rarely wait for each other
        self._list_one = threading.Lock()
        # reads handed to the pool and not finished: at most one per reader, so when ARM answers slowly
        # the reads wait in the heap in due order (a list due now is not queued behind a backlog)
        self._busy = threading.BoundedSemaphore(max(1, workers))
        self._thread: threading.Thread | None = None
        self.reads = 0  # status reads made (a figure for the benchmark and tests)
        self.lists = 0  # workspaces lists made for link progress

    # -- the API -----------------------------------------------------------------------------------

    def watch(
        self,
        sub: str,
        method: DeferredPolling | None,
        *,
        timeout: float,
        on_done: Callable[[BaseException | None], None],
        probe: tuple[str, str | None] | None = None,
        restore: Callable[[], DeferredPolling] | None = None,
        on_result: Callable[[DeferredPolling], None] | None = None,
    ) -> None:
        """Read `method`'s status until it ends or `timeout` passes; then `on_done(error or None)`.

        `restore` instead of `method`: a polling rebuilt for each read (from the continuation token),
        so nothing of the SDK's is held between reads. `probe` (workspace id key, cluster id key or
        None) says how the workspaces list shows that a link (or unlink) is over: the workspace
        linked to that cluster (or to none). `on_result`: handed the polling of an operation that
        ended well (its final answer), before `on_done(None)`.

        The first status read comes one interval after the operation was accepted, as the SDK's own
        poller waits before its first read: the answer that accepted it said how it stands."""
        if method is None and restore is None:
            raise ValueError("watch needs the operation's polling or a way to restore it")
        now = self._clock()
        with self._cond:
            sub = sys.intern(sub.lower())  # one string per subscription, not per operation
            self._active[sub] = self._active.get(sub, 0) + 1
            entry = _Entry(
                sub,
                method,
                now + timeout,
                on_done,
                probe if self._lister else None,
                restore=restore,
                on_result=on_result,
            )
            if entry.probe is not None:
                self._probes.setdefault(sub, {})[entry.probe[0]] = entry
            self._push(entry, now + self._interval(entry, now))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="watch-scheduler", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _push(self, entry: _Entry, due: float) -> None:
        """(Re)schedule `entry` at `due`; an earlier item of it still in the heap is superseded."""
        entry.gen += 1
        heapq.heappush(self._heaps.setdefault(entry.sub, []), (due, next(self._seq), entry, entry.gen))

    def wait(self, sub: str, method: DeferredPolling, *, timeout: float) -> None:
        """Block the caller until the operation ends (re-raising its error) or StillRunning at the timeout."""
        ended = threading.Event()
        box: list[BaseException | None] = []

        def done(exc: BaseException | None) -> None:
            box.append(exc)
            ended.set()

        self.watch(sub, method, timeout=timeout, on_done=done)
        ended.wait()
        if box and box[0] is not None:
            raise box[0]

    def watching(self) -> int:
        with self._cond:
            return sum(self._active.values())

    # -- the scheduler -----------------------------------------------------------------------------

    def _spacing(self, sub: str) -> float:
        """Seconds between two status reads of one subscription: its share of the read refill."""
        rate = self._read_rate(sub)
        return 0.0 if not rate else 1.0 / (rate * self.read_share)

    def _next(self) -> tuple[float, str] | None:
        """(when, subscription) of the read that can start first: each subscription's earliest due
        read, held to its pace (under the lock; superseded and ended items are dropped on the way)."""
        best: tuple[float, str] | None = None
        for sub, heap in list(self._heaps.items()):
            while heap and (heap[0][3] != heap[0][2].gen or heap[0][2].ended):  # superseded, or ended
                heapq.heappop(heap)
            if not heap:
                del self._heaps[sub]
                continue
            start = max(heap[0][0], self._next_slot.get(sub, 0.0))
            if best is None or start < best[0]:
                best = (start, sub)
        return best

    def _run(self) -> None:
        while True:
            with self._cond:
                first = self._next()
                if first is None:
                    self._cond.wait()
                    continue
                start, sub = first
                now = self._clock()
                if start > now:
                    self._cond.wait(timeout=start - now)
                    continue
                if not self._busy.acquire(blocking=False):  # every reader busy: wait for one
                    self._cond.wait(timeout=0.05)
                    continue
                entry = heapq.heappop(self._heaps[sub])[2]
                self._next_slot[sub] = max(now, self._next_slot.get(sub, 0.0)) + self._spacing(sub)
            try:
                self._pool.submit(self._read, entry)
            except RuntimeError:  # the interpreter is ending (SIGTERM): no reads, and no traceback
                self._busy.release()
                return

    def _read(self, entry: _Entry) -> None:
        try:
            if entry.is_list:
                self._list(entry)
            else:
                self._poll(entry)
        finally:
            self._busy.release()
            with self._cond:
                self._cond.notify()

    def _probe_interval(self, sub: str) -> float:
        """Seconds between two status reads of one listed link: n of them share `probe_share`."""
        rate = self._read_rate(sub)
        n = len(self._probes.get(sub, ()))
        return 0.0 if not rate else n / (rate * self.probe_share)

    def _list_wanted(self, sub: str) -> bool:
        """The list pays when per-operation reads would come less often than it (under the lock)."""
        return bool(self._probes.get(sub)) and self._probe_interval(sub) > max(
            self.list_interval, self.min_interval
        )

    def _list(self, entry: _Entry) -> None:
        """One workspaces list of the subscription: read at once every link it shows ended."""
        sub = entry.sub
        linked: Mapping[str, str | None] | None = None
        try:
            with self._list_one:
                linked = self._lister(sub) if self._lister else None
        except Exception:  # a failed list only delays what the status reads find anyway
            linked = None
        now = self._clock()
        with self._cond:
            self.lists += 1
            found = False
            for ws, op in list(self._probes.get(sub, {}).items()):
                if linked is None or op.ended or op.probe is None or ws not in linked:
                    continue
                if linked[ws] == op.probe[1]:
                    self._push(op, now)  # its status read now; the SDK says how it ended
                    found = True
            if self._list_wanted(sub):
                # while lists find nothing ended the next waits twice as long, up to LIST_BACKOFF
                # intervals: a list costs a read of every workspace of the subscription, and links run
                # for an hour or more before the first ends; once one has, the lists come every interval
                base = max(self.list_interval, self.min_interval)
                gap = base if found else min(2 * self._list_gap.get(sub, base / 2), LIST_BACKOFF * base)
                self._list_gap[sub] = gap
                self._push(entry, now + gap)
            else:
                self._listing.discard(sub)
                self._list_gap.pop(sub, None)
            self._cond.notify()

    def _poll(self, entry: _Entry) -> None:
        try:
            method = entry.method or (entry.restore() if entry.restore else None)
            if method is None:
                return
            try:
                ended = method.poll_once()
            finally:
                with self._cond:
                    self.reads += 1
            entry.hinted = method.hinted_delay()
            if ended and entry.on_result is not None:
                # it only spares a read: should it fail, the caller reads the resource itself
                with contextlib.suppress(Exception):
                    entry.on_result(method)
            del method  # a restored polling is not kept: the next read rebuilds it
        except BaseException as exc:  # the operation's own error, as the SDK raised it
            self._finish(entry, exc)
            return
        now = self._clock()
        if ended:
            self._finish(entry, None)
            return
        if now >= entry.deadline:
            self._finish(
                entry,
                errors.StillRunning(
                    "Azure is still running it after the operation timeout (CMKCTL_OPERATION_TIMEOUT); "
                    "it was not sent again: run apply later to resume it"
                ),
            )
            return
        with self._cond:
            self._push(entry, now + self._interval(entry, now))
            self._cond.notify()

    def _interval(self, entry: _Entry, now: float) -> float:
        """Seconds to the entry's next status read (under the lock); starts the subscription's lists
        when they pay."""
        if entry.probe is not None and self._list_wanted(entry.sub):
            # the list finds its end; this read only looks for a failure
            if entry.sub not in self._listing:
                self._listing.add(entry.sub)
                lister = _Entry(entry.sub, None, float("inf"), lambda _exc: None)
                self._push(lister, now + max(self.list_interval, self.min_interval))
            return max(self.min_interval, entry.hinted, self._probe_interval(entry.sub))
        n = self._active.get(entry.sub, 1)
        # each operation of the subscription gets its turn once per n reads of the subscription
        return max(self.min_interval, entry.hinted, n * self._spacing(entry.sub))

    def _finish(self, entry: _Entry, exc: BaseException | None) -> None:
        with self._cond:
            entry.ended = True
            self._active[entry.sub] = self._active.get(entry.sub, 1) - 1
            if entry.probe is not None:
                probes = self._probes.get(entry.sub, {})
                if probes.get(entry.probe[0]) is entry:
                    del probes[entry.probe[0]]
        entry.on_done(exc)
