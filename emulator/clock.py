"""A simulated clock: long Azure operations (hours) must finish in test time, and the 30-day and
14-day windows (rules C4, C11, W3) must be measurable without waiting a month."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """now = start + real elapsed × time_scale + explicit advances. Thread-safe."""

    def __init__(self, start: datetime | None = None, time_scale: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._base_sim = (start or datetime.now(UTC)).astimezone(UTC)
        self._base_real = time.monotonic()
        self._scale = time_scale

    def now(self) -> datetime:
        with self._lock:
            elapsed = (time.monotonic() - self._base_real) * self._scale
            return self._base_sim + timedelta(seconds=elapsed)

    def __call__(self) -> datetime:
        return self.now()

    def _rebase(self, sim: datetime) -> None:
        self._base_sim = sim
        self._base_real = time.monotonic()

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        with self._lock:
            self._rebase(when.astimezone(UTC))

    def advance(self, seconds: float) -> None:
        now = self.now()
        with self._lock:
            self._rebase(now + timedelta(seconds=seconds))

    @property
    def time_scale(self) -> float:
        return self._scale

    def set_time_scale(self, scale: float) -> None:
        now = self.now()
        with self._lock:
            self._rebase(now)
            self._scale = scale


def parse_time(text: str) -> datetime:
    """ISO-8601 (with Z or offset, up to 7 fractional digits as Azure writes them) → aware UTC."""
    t = text.strip()
    if t.endswith("Z") or t.endswith("z"):
        t = t[:-1] + "+00:00"
    # Python accepts at most 6 fractional digits.
    if "." in t:
        head, _, rest = t.partition(".")
        digits = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            digits += rest[i]
            i += 1
        t = head + "." + (digits[:6].ljust(6, "0")) + rest[i:]
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def rfc1123(dt: datetime) -> str:
    """Log Analytics resource dates are RFC-1123 even in 2025 (docs/azure-wire.md)."""
    return dt.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def iso7(dt: datetime) -> str:
    """ISO-8601 with 7 fractional digits, as operation statuses and the Activity Log write them."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
