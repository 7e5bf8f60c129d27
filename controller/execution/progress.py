"""What a user watching an apply sees: a live table on a TTY, plain log lines otherwise.

Operations here take minutes to hours, so each running step shows its elapsed time against what is
usual ("cluster.prod-weu: create 41m, usually ~2h") - a user can tell slow from stuck. Without a
TTY (CI logs) a running step says so at intervals (`LineProgress`, HEARTBEAT_SCHEDULE).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Protocol

from rich.console import Console
from rich.live import Live
from rich.table import Table


class Progress(Protocol):
    def step_started(self, step_id: str, label: str, typical_seconds: float, typical_text: str) -> None: ...

    def note(self, step_id: str, text: str) -> None: ...

    def step_finished(self, step_id: str, status: str, detail: str = "") -> None: ...


def human(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


class NullProgress:
    def step_started(self, step_id: str, label: str, typical_seconds: float, typical_text: str) -> None:
        return None

    def note(self, step_id: str, text: str) -> None:
        return None

    def step_finished(self, step_id: str, status: str, detail: str = "") -> None:
        return None


# Heartbeats of a running step: (while elapsed is below, report every) seconds. Terraform reports
# every 10 s; operations here run for hours, so every 10 s for the first minute (a quick step says
# nothing more), then every minute up to 10 minutes, then every 5 minutes (a 2-hour create: ~37 lines).
HEARTBEAT_SCHEDULE: tuple[tuple[float, float], ...] = ((60, 10), (600, 60), (math.inf, 300))
# More steps due in one tick than this are reported as one line (1000 links would flood a CI log).
HEARTBEAT_LINES = 10


def next_heartbeat(elapsed: float) -> float:
    """The elapsed time of the next heartbeat after `elapsed`: the next multiple of its interval."""
    for below, every in HEARTBEAT_SCHEDULE:
        if elapsed < below:
            return (math.floor(elapsed / every) + 1) * every
    return math.inf  # pragma: no cover - the last row is unbounded


@dataclass(slots=True)
class _Running:
    label: str  # "cluster.prod-weu: create"
    since: float
    typical: str
    due: float  # elapsed seconds at which the next heartbeat is due


class LineProgress:
    """Plain lines for logs and CI (no TTY): one when a step starts, one when it ends, and while it
    runs a heartbeat, as Terraform's "Still creating... [40s elapsed]":
    "cluster.prod-weu: create: still running [40m elapsed, usually ~2h]" (HEARTBEAT_SCHEDULE).

    Times are read from `monotonic`, the clock apply runs on (Azure's, `AzureClients.service_now`):
    a step's elapsed time is the service's, which under a time-scaled emulator runs ahead of the
    local one. `heartbeat` (real seconds, None: no heartbeats) is how often a background thread
    looks for due heartbeats while a step runs.
    """

    def __init__(
        self,
        out: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        heartbeat: float | None = 1.0,
    ) -> None:
        self._out = out or (lambda line: print(line, file=sys.stderr, flush=True))
        self._clock = monotonic
        self._running: dict[str, _Running] = {}
        self._guard = threading.Lock()
        self._tick = heartbeat
        self._ticker: threading.Thread | None = None

    def step_started(self, step_id: str, label: str, typical_seconds: float, typical_text: str) -> None:
        with self._guard:
            self._running[step_id] = _Running(label, self._clock(), typical_text, next_heartbeat(0))
            if self._tick is not None and self._ticker is None:
                self._ticker = threading.Thread(target=self._beat, name="progress-heartbeat", daemon=True)
                self._ticker.start()
        self._out(f"{label}: started" + (f" (usually {typical_text})" if typical_text else ""))

    def note(self, step_id: str, text: str) -> None:
        step = self._running.get(step_id)
        self._out(f"{step.label if step else step_id}: {text}")

    def step_finished(self, step_id: str, status: str, detail: str = "") -> None:
        """`detail`: why a step failed, on the same line (a bare "failed after 0s" left users guessing)."""
        with self._guard:
            step = self._running.pop(step_id, None)
        label, since = (step.label, step.since) if step else (step_id, self._clock())
        line = f"{label}: {status} after {human(self._clock() - since)}"
        self._out(f"{line}: {detail}" if detail else line)

    def heartbeat(self) -> None:
        """Report the running steps whose heartbeat is due (one line each, or one line for many)."""
        now = self._clock()
        due: list[tuple[_Running, float]] = []
        with self._guard:
            for step in self._running.values():
                elapsed = now - step.since
                if elapsed >= step.due:
                    due.append((step, elapsed))
                    step.due = next_heartbeat(elapsed)
        if len(due) <= HEARTBEAT_LINES:
            for step, elapsed in due:
                usual = f", usually {step.typical}" if step.typical else ""
                self._out(f"{step.label}: still running [{human(elapsed)} elapsed{usual}]")
            return
        kinds = Counter(step.label.rsplit(": ", 1)[-1] for step, _ in due)
        longest, elapsed = max(due, key=lambda d: d[1])
        what = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        self._out(f"still running: {len(due)} operations ({what}); longest: {longest.label} "
                  f"[{human(elapsed)} elapsed]")

    def _beat(self) -> None:
        """The heartbeat thread: ends when no step runs (the next step_started starts another)."""
        while True:
            time.sleep(self._tick or 1.0)
            with self._guard:
                if not self._running:
                    self._ticker = None
                    return
            self.heartbeat()


class LiveProgress(LineProgress):
    """A rich live table of running steps on a TTY; finished steps scroll above it as lines."""

    def __init__(
        self, stream: IO[str] | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._console = Console(file=stream or sys.stderr)
        super().__init__(out=self._console.print, monotonic=monotonic, heartbeat=None)
        self._live = Live(
            self._table(),
            console=self._console,
            refresh_per_second=2,
            transient=True,
            get_renderable=self._table,
        )

    def _table(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False)
        now = self._clock()
        with self._guard:
            for step in self._running.values():
                table.add_row(
                    f"[bold]{step.label}[/]", human(now - step.since),
                    f"usually {step.typical}" if step.typical else "",
                )
        return table

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()
