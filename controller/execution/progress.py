"""What a user watching an apply sees: a live table on a TTY, plain log lines otherwise.

Operations here take minutes to hours, so each running step shows its elapsed time against what is
usual ("cluster.prod-weu: create 41m, usually ~2h") - a user can tell slow from stuck.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
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


class LineProgress:
    """Plain lines for logs and CI (no TTY): one when a step starts, one when it ends."""

    def __init__(
        self, out: Callable[[str], None] | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._out = out or (lambda line: print(line, file=sys.stderr, flush=True))
        self._clock = monotonic
        self._running: dict[str, tuple[str, float, str]] = {}
        self._guard = threading.Lock()

    def step_started(self, step_id: str, label: str, typical_seconds: float, typical_text: str) -> None:
        with self._guard:
            self._running[step_id] = (label, self._clock(), typical_text)
        self._out(f"{label}: started" + (f" (usually {typical_text})" if typical_text else ""))

    def note(self, step_id: str, text: str) -> None:
        label = self._running.get(step_id, (step_id, 0.0, ""))[0]
        self._out(f"{label}: {text}")

    def step_finished(self, step_id: str, status: str, detail: str = "") -> None:
        """`detail`: why a step failed, on the same line (a bare "failed after 0s" left users guessing)."""
        with self._guard:
            label, since, _ = self._running.pop(step_id, (step_id, self._clock(), ""))
        line = f"{label}: {status} after {human(self._clock() - since)}"
        self._out(f"{line}: {detail}" if detail else line)


class LiveProgress(LineProgress):
    """A rich live table of running steps on a TTY; finished steps scroll above it as lines."""

    def __init__(
        self, stream: IO[str] | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._console = Console(file=stream or sys.stderr)
        super().__init__(out=self._console.print, monotonic=monotonic)
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
            for label, since, typical in self._running.values():
                table.add_row(
                    f"[bold]{label}[/]", human(now - since), f"usually {typical}" if typical else ""
                )
        return table

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()
