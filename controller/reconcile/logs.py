"""One JSON object per line on stderr: what log collectors (Loki, Azure Monitor agent) parse best.

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


class JsonLog:
    def __init__(self, stream: TextIO | None = None, now: Callable[[], datetime] | None = None) -> None:
        self._stream = stream
        self._now = now or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self.records: list[dict[str, Any]] = []  # the last lines, for tests and /status debugging
        self._keep = 200

    def emit(self, event: str, level: str = "info", **fields: Any) -> None:
        record: dict[str, Any] = {"ts": self._now().isoformat(), "level": level, "event": event}
        for key, value in fields.items():
            record[key] = _clean(value)
        line = json.dumps(record, default=str, sort_keys=False)
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
