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

The continuation token is ARMPolling's, so a journaled operation resumes after a crash as before.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.core.polling.base_polling import BadResponse, BadStatus
from azure.mgmt.core.polling.arm_polling import ARMPolling

from controller.azure import errors

# Of each subscription's read refill, what status reads may use: the rest stays for the executor's
# prechecks and verifies and for other clients of the subscription.
READ_SHARE = 0.8


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


@dataclass(order=True)
class _Entry:
    due: float
    seq: int
    sub: str = field(compare=False)
    method: DeferredPolling = field(compare=False)
    deadline: float = field(compare=False)
    on_done: Callable[[BaseException | None], None] = field(compare=False)


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
    ) -> None:
        self._read_rate = read_rate  # reads/s ARM refills for a subscription; None: unlimited
        self.min_interval = max(0.0, min_interval)
        self.read_share = read_share
        self._clock = clock
        self._cond = threading.Condition()
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._active: dict[str, int] = {}  # operations being watched, per subscription
        self._next_slot: dict[str, float] = {}  # earliest time of the subscription's next read
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="watch")
        self._thread: threading.Thread | None = None
        self.reads = 0  # status reads made (a figure for the benchmark and tests)

    # -- the API -----------------------------------------------------------------------------------

    def watch(
        self,
        sub: str,
        method: DeferredPolling,
        *,
        timeout: float,
        on_done: Callable[[BaseException | None], None],
    ) -> None:
        """Read `method`'s status until it ends or `timeout` passes; then `on_done(error or None)`."""
        now = self._clock()
        with self._cond:
            sub = sub.lower()
            self._active[sub] = self._active.get(sub, 0) + 1
            entry = _Entry(now, next(self._seq), sub, method, now + timeout, on_done)
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="watch-scheduler", daemon=True)
                self._thread.start()
            self._cond.notify()

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

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                entry = self._heap[0]
                now = self._clock()
                start = max(entry.due, self._next_slot.get(entry.sub, 0.0))
                if start > now:
                    self._cond.wait(timeout=start - now)
                    continue
                heapq.heappop(self._heap)
                self._next_slot[entry.sub] = max(now, self._next_slot.get(entry.sub, 0.0)) + self._spacing(
                    entry.sub
                )
            self._pool.submit(self._poll, entry)

    def _poll(self, entry: _Entry) -> None:
        try:
            ended = entry.method.poll_once()
        except BaseException as exc:  # the operation's own error, as the SDK raised it
            self._finish(entry, exc)
            return
        finally:
            with self._cond:
                self.reads += 1
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
            n = self._active.get(entry.sub, 1)
            # each operation of the subscription gets its turn once per n reads of the subscription
            interval = max(self.min_interval, entry.method.hinted_delay(), n * self._spacing(entry.sub))
            entry.due = now + interval
            entry.seq = next(self._seq)
            heapq.heappush(self._heap, entry)
            self._cond.notify()

    def _finish(self, entry: _Entry, exc: BaseException | None) -> None:
        with self._cond:
            self._active[entry.sub] = self._active.get(entry.sub, 1) - 1
        entry.on_done(exc)
