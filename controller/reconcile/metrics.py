"""Prometheus metrics for the controller, on a registry of its own (one per controller instance).

Why a private registry: tests run several controllers in one process, and a scrape must describe
this scope only. ARM requests are read from the Azure adapter's request counter at scrape time (a
custom collector), so there is one source of truth for "how hard are we hitting ARM" (throttling
is per subscription, see docs/azure-wire.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from controller.model import clouds

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


Snapshot = Callable[[], dict[tuple[str, str, int], int]]  # (host, method, status) -> tries


def service_of(host: str) -> str:
    """ARM throttles per subscription, Key Vault per vault: keep them apart, never expose host names."""
    if clouds.is_arm_host(host):
        return "arm"
    if clouds.cloud_of_vault_host(host) is not None:
        return "keyvault"
    if any(host.endswith(f".blob.{c.storage_suffix}") for c in clouds.CLOUDS):
        return "blob"
    return "other"


class _AzureRequests(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "cmkctl_azure_requests",
            "HTTP tries to Azure by service (arm, keyvault, blob), method and status code",
            labels=["service", "method", "status"],
        )
        totals: dict[tuple[str, str, str], int] = {}
        for (host, method, status), count in self._snapshot().items():
            key = (service_of(host), method, str(status))
            totals[key] = totals.get(key, 0) + count
        for labels, count in sorted(totals.items()):
            family.add_metric(list(labels), float(count))
        yield family


class Metrics:
    def __init__(self, azure_requests: Snapshot | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.pass_seconds = Histogram(
            "cmkctl_pass_duration_seconds",
            "Duration of one reconcile pass",
            registry=r,
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 7200),
        )
        self.passes = Counter("cmkctl_passes", "Reconcile passes by result", ["result"], registry=r)
        self.drifted = Gauge(
            "cmkctl_drifted_resources", "Resources whose live state differs from the spec", registry=r
        )
        self.deferred = Gauge(
            "cmkctl_deferred_changes", "Changes waiting for a rule's date (e.g. C4, W3)", registry=r
        )
        self.next_not_before = Gauge(
            "cmkctl_next_not_before_timestamp_seconds",
            "Unix time when the earliest deferred change becomes possible (0: none)",
            registry=r,
        )
        self.in_flight = Gauge(
            "cmkctl_operations_in_flight", "Azure operations started and not finished", registry=r
        )
        self.lock_held = Gauge(
            "cmkctl_lock_held", "1 while this controller holds the scope's writer lock", registry=r
        )
        self.suspended = Gauge("cmkctl_suspended", "1 while reconciliation is suspended", registry=r)
        self.stalled = Gauge(
            "cmkctl_stalled", "1 while the last pass stalled (the user must act; re-evaluated each pass)",
            registry=r,
        )
        self.failures = Gauge(
            "cmkctl_consecutive_failures",
            "Passes in a row that ended in a retryable failure (the backoff doubles with each)",
            registry=r,
        )
        self.ready = Gauge("cmkctl_ready", "1 when the last pass left Azure matching the spec", registry=r)
        if azure_requests is not None:
            r.register(_AzureRequests(azure_requests))

    def render(self) -> bytes:
        return generate_latest(self.registry)
