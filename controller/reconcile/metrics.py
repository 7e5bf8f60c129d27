"""Prometheus metrics for the controller, on a registry of its own (one per controller instance).

Why a private registry: tests run several controllers in one process, and a scrape must describe
this scope only. ARM requests are read from the Azure adapter's request counter at scrape time (a
custom collector), so there is one source of truth for "how hard are we hitting ARM" (throttling
is per subscription, see docs/azure-wire.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from controller import __version__
from controller.model import clouds
from controller.reporting import Report

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
        # what an operator alerts on: the encryption report's figures, from what the last pass observed
        # before it wrote (a change it applied shows one pass later)
        self.blocked = Gauge(
            "cmkctl_blocked_changes",
            "Changes that can never run as declared (a rule forbids them): the user must act",
            registry=r,
        )
        self.key_expiry_days = Gauge(
            "cmkctl_key_expiry_days",
            "Days until the nearest key version in force expires (rules K1, K2); absent: no key expires",
            registry=r,
        )
        self.protected_ratio = Gauge(
            "cmkctl_workspaces_cmk_protected_ratio",
            "Share of declared workspaces whose data is on a CMK cluster (1: all; absent: none declared)",
            registry=r,
        )
        self.findings = Gauge(
            "cmkctl_findings", "Encryption report findings by severity", ["severity"], registry=r
        )
        self.last_success = Gauge(
            "cmkctl_last_successful_pass_timestamp_seconds",
            "Unix time the last pass that succeeded ended (0: none since the start)",
            registry=r,
        )
        Info("cmkctl_build", "The controller's version", registry=r).info({"version": __version__})
        for severity in ("critical", "warning", "info"):
            self.findings.labels(severity=severity).set(0)
        _set_or_absent(self.key_expiry_days, None)  # unknown until a pass has looked
        _set_or_absent(self.protected_ratio, None)
        if azure_requests is not None:
            r.register(_AzureRequests(azure_requests))

    def report(self, report: Report, *, blocked: int) -> None:
        """Set the alerting gauges from this pass's report; a value that does not exist is removed,
        never faked (a key without an expiry must not look like one expiring today)."""
        c = report.counts
        self.blocked.set(blocked)
        for severity, count in (("critical", c.critical), ("warning", c.warning), ("info", c.info)):
            self.findings.labels(severity=severity).set(count)
        _set_or_absent(self.key_expiry_days, c.days_to_nearest_key_expiry)
        declared = [w for w in report.workspaces if w.expected_cluster is not None]
        protected = sum(1 for w in declared if w.cmk_protected)
        _set_or_absent(self.protected_ratio, protected / len(declared) if declared else None)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _set_or_absent(gauge: Gauge, value: float | None) -> None:
    """A gauge with no sample when there is no value (prometheus_client has no 'unset')."""
    if value is None:
        gauge.set(float("nan"))  # Prometheus's "no value"
    else:
        gauge.set(value)
