"""Keeps our ARM traffic inside each subscription's request budget instead of bouncing off it.

Resource Manager meters every subscription with two token buckets (docs/azure-wire.md): reads (about
250 burst, 25 per second) and writes (200 burst, 10 per second). A request beyond them is answered 429
with `Retry-After`; a client that keeps sending into an empty bucket causes a 429 storm. So every ARM
request of ours first takes a token from our own copy of its subscription's bucket, and every answer
corrects that copy: `x-ms-ratelimit-remaining-subscription-reads/writes` (also the `-global-` names)
says how many tokens ARM really has left, and a `Retry-After` closes the bucket until it has passed.

A token is reserved under the lock (the bucket may go below zero: a queue of reservations) and the wait
happens outside it, so one thread's wait never blocks another subscription's requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import CustomHookPolicy

READS = "reads"
WRITES = "writes"
# Azure Resource Manager's per-subscription buckets (docs/azure-wire.md): (burst, refill per second)
ARM_BUDGET: dict[str, tuple[float, float]] = {READS: (250.0, 25.0), WRITES: (200.0, 10.0)}


@dataclass
class _Bucket:
    capacity: float
    rate: float
    tokens: float
    stamp: float
    closed_until: float = 0.0


def kind_of(method: str) -> str:
    """ARM meters GET and HEAD as reads and every other method as writes."""
    return READS if method.upper() in ("GET", "HEAD") else WRITES


def subscription_of(url: str) -> str | None:
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return parts[1].lower()
    return None


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None and str(value).strip() != "" else None
    except ValueError:
        return None


class ArmPacer:
    """Per-subscription read and write buckets, shared by every client of one `AzureClients`."""

    def __init__(
        self,
        budget: dict[str, tuple[float, float]] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.budget = dict(ARM_BUDGET if budget is None else budget)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self.waited = 0.0  # seconds spent waiting for tokens (a figure for the benchmark)

    def _bucket(self, sub: str, kind: str, now: float) -> _Bucket:
        b = self._buckets.get((sub, kind))
        if b is None:
            cap, rate = self.budget[kind]
            b = self._buckets[(sub, kind)] = _Bucket(cap, rate, cap, now)
        b.tokens = min(b.capacity, b.tokens + (now - b.stamp) * b.rate)
        b.stamp = now
        return b

    def delay(self, sub: str, kind: str) -> float:
        """Reserve one token; the seconds to wait before the request may go."""
        with self._lock:
            now = self._clock()
            b = self._bucket(sub, kind, now)
            b.tokens -= 1.0
            wait = max(0.0, -b.tokens / b.rate if b.rate > 0 else 0.0, b.closed_until - now)
            self.waited += wait
            return wait

    def acquire(self, sub: str, kind: str) -> None:
        wait = self.delay(sub, kind)
        if wait > 0:
            self._sleep(wait)

    def observe(
        self, sub: str, kind: str, *, status: int, remaining: float | None, retry_after: float | None
    ) -> None:
        """ARM's answer corrects our copy: it knows what other clients of the subscription spent."""
        with self._lock:
            now = self._clock()
            b = self._bucket(sub, kind, now)
            if remaining is not None:
                b.tokens = min(b.tokens, remaining)
            if status == 429:
                b.tokens = min(b.tokens, 0.0)
                wait = retry_after if retry_after is not None else (1.0 / b.rate if b.rate > 0 else 1.0)
                b.closed_until = max(b.closed_until, now + wait)

    def available(self, sub: str, kind: str) -> float:
        """Tokens left in our copy of the bucket now (negative: reservations queued)."""
        with self._lock:
            return self._bucket(sub.lower(), kind, self._clock()).tokens


class PacingPolicy(CustomHookPolicy[Any, Any]):
    """azure-core's hook policy (it runs once per try, after the retry policy) that also waits for a
    token before each ARM request and corrects the bucket from each answer."""

    def __init__(self, pacer: ArmPacer, arm_host: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pacer = pacer
        self._host = arm_host.lower()

    def _metered(self, request: PipelineRequest[Any]) -> tuple[str, str] | None:
        http = request.http_request
        url = str(http.url)
        if (urlsplit(url).hostname or "").lower() != self._host:
            return None
        sub = subscription_of(url)
        return (sub, kind_of(http.method)) if sub else None

    def on_request(self, request: PipelineRequest[Any]) -> None:
        metered = self._metered(request)
        if metered:
            self._pacer.acquire(*metered)
        super().on_request(request)

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        metered = self._metered(request)
        if metered:
            sub, kind = metered
            headers = response.http_response.headers
            remaining = _number(
                headers.get(f"x-ms-ratelimit-remaining-subscription-{kind}")
                or headers.get(f"x-ms-ratelimit-remaining-subscription-global-{kind}")
            )
            status = int(response.http_response.status_code)
            retry_after = _number(headers.get("Retry-After")) if status == 429 else None
            self._pacer.observe(sub, kind, status=status, remaining=remaining, retry_after=retry_after)
        super().on_response(request, response)
