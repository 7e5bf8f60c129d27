"""One event per line on stderr: JSON (what log collectors such as Loki or the Azure Monitor agent
parse best; the default in a container) or text for a person at a terminal (`--log-format text`,
also what `auto` picks when stderr is a TTY): `time level event key=value ...`.

Why not `logging` formatters: the controller's events are structured records (a pass, a drifted
resource), and a line must never carry a secret; every string field goes through `redact` first.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from controller.reconcile.source import redact

LOG_FORMATS = ("auto", "json", "text")


def pick_format(name: str, stream: TextIO | None = None) -> str:
    """`auto`: text on a terminal, JSON otherwise (a container's stderr is a pipe)."""
    if name not in LOG_FORMATS:
        raise ValueError(f"--log-format {name!r}: use one of {', '.join(LOG_FORMATS)}")
    if name != "auto":
        return name
    target = stream or sys.stderr
    return "text" if target.isatty() else "json"


def _shown(value: Any) -> str:
    """A bare word stays bare; anything else (spaces, numbers, lists) is written as JSON, unambiguous."""
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"=" for c in value):
        return value
    return json.dumps(value, default=str)


def _text_line(record: dict[str, Any]) -> str:
    fields = " ".join(
        f"{key}={_shown(value)}"
        for key, value in record.items()
        if key not in ("ts", "level", "event") and value is not None
    )
    return f"{record['ts']} {record['level'].upper():<7} {record['event']}" + (f" {fields}" if fields else "")


class JsonLog:
    def __init__(
        self,
        stream: TextIO | None = None,
        now: Callable[[], datetime] | None = None,
        *,
        fmt: str = "json",
    ) -> None:
        self._stream = stream
        self.format = pick_format(fmt, stream)
        self._now = now or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self.records: list[dict[str, Any]] = []  # the last lines, for tests and /status debugging
        self._keep = 200

    def emit(self, event: str, level: str = "info", **fields: Any) -> None:
        record: dict[str, Any] = {"ts": self._now().isoformat(), "level": level, "event": event}
        for key, value in fields.items():
            record[key] = _clean(value)
        line = _text_line(record) if self.format == "text" else json.dumps(record, default=str)
        with self._lock:
            self.records.append(record)
            del self.records[: -self._keep]
            stream = self._stream or sys.stderr
            stream.write(line + "\n")
            stream.flush()


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class LogProgress:
    """The executor's progress as JSON lines: `step.started`, a `step.heartbeat` every `heartbeat`
    seconds while a step runs (operations take minutes to hours: a silent log looks like a hang), and
    `step.finished`. Implements controller.execution.progress.Progress."""

    def __init__(
        self,
        log: JsonLog,
        *,
        heartbeat: float = 60.0,
        monotonic: Callable[[], float] | None = None,
        revision: str | None = None,
    ) -> None:
        import time

        self._log = log
        self._every = heartbeat
        self._clock = monotonic or time.monotonic
        self._revision = revision
        self._running: dict[str, tuple[str, float, str]] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def step_started(self, step_id: str, label: str, typical_seconds: float, typical_text: str) -> None:
        with self._guard:
            self._running[step_id] = (label, self._clock(), typical_text)
            if self._beat is None and self._every > 0:
                self._beat = threading.Thread(target=self._heartbeats, name="cmkctl-heartbeat", daemon=True)
                self._beat.start()
        self._log.emit("step.started", step=label, typical=typical_text or None, revision=self._revision)

    def note(self, step_id: str, text: str) -> None:
        label = self._running.get(step_id, (step_id, 0.0, ""))[0]
        self._log.emit("step.note", step=label, message=text, revision=self._revision)

    def step_finished(self, step_id: str, status: str, detail: str = "") -> None:
        with self._guard:
            label, since, _ = self._running.pop(step_id, (step_id, self._clock(), ""))
        self._log.emit(
            "step.finished",
            level="error" if status == "failed" else "info",
            step=label,
            status=status,
            seconds=round(self._clock() - since, 1),
            message=detail or None,
            revision=self._revision,
        )

    def heartbeat_now(self) -> None:
        """One heartbeat line per running step (the background thread calls this every period)."""
        with self._guard:
            running = list(self._running.values())
        now = self._clock()
        for label, since, typical in running:
            self._log.emit(
                "step.heartbeat",
                step=label,
                running_seconds=round(now - since, 1),
                typical=typical or None,
                revision=self._revision,
            )

    def _heartbeats(self) -> None:
        while not self._stop.wait(self._every):
            self.heartbeat_now()

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
            self._beat = None
