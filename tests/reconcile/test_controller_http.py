"""/status, /healthz, /readyz and /metrics of a controller that has run passes against the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from gitops_repo import GitRepo, MakeReconciler, seed, spec_docs
from prometheus_client.parser import text_string_to_metric_families

from controller.reconcile.loop import Reconciler
from controller.reconcile.server import StatusServer, parse_listen


@pytest.fixture
def served(emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler) -> Iterator[tuple[Reconciler, str]]:
    seed(emulator)
    repo.commit_spec(spec_docs(capacity=2000), "cluster")
    rec = make_reconciler(repo.url)
    server = StatusServer(rec, "127.0.0.1:0")
    server.start()
    try:
        yield rec, f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def _get(url: str) -> requests.Response:
    s = requests.Session()
    s.trust_env = False
    return s.get(url, timeout=10)


def test_not_ready_before_the_first_pass_then_ready(served: tuple[Reconciler, str]) -> None:
    rec, base = served
    assert _get(base + "/healthz").status_code == 200
    r = _get(base + "/readyz")
    assert r.status_code == 503 and "first pass" in r.text
    rec.run_pass()
    assert _get(base + "/readyz").status_code == 200
    rec.request_stop()
    assert _get(base + "/readyz").status_code == 503


def test_status_shows_conditions_revisions_and_passes(served: tuple[Reconciler, str], repo: GitRepo) -> None:
    rec, base = served
    rec.run_pass()
    repo.commit_spec(spec_docs(capacity=1000), "shrink: deferred by C4")
    rec.run_pass()
    body = _get(base + "/status").json()
    head = repo.git("rev-parse", "HEAD")
    assert body["lastAttemptedRevision"] == head
    assert body["lastAppliedRevision"] == head  # what could run did; the decrease waits (not a failure)
    types = {c["type"]: c for c in body["conditions"]}
    assert set(types) == {"Ready", "Reconciling", "Stalled"}
    assert types["Ready"]["reason"] == "ChangesDeferred" and "C4" in types["Ready"]["message"]
    assert [p["result"] for p in body["passes"]] == ["deferred", "applied"]
    assert body["deferred"][0]["rule"] == "C4" and body["nextNotBefore"]
    assert body["source"]["url"] == repo.url
    assert body["scope"] == f"{repo.url}@main:specs"


def test_metrics_count_passes_drift_deferred_and_azure_requests(
    served: tuple[Reconciler, str], repo: GitRepo
) -> None:
    rec, base = served
    rec.run_pass()
    repo.commit_spec(spec_docs(capacity=1000), "shrink: deferred by C4")
    out = rec.run_pass()
    r = _get(base + "/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }
    assert samples[("cmkctl_passes_total", (("result", "applied"),))] == 1
    assert samples[("cmkctl_passes_total", (("result", "deferred"),))] == 1
    assert samples[("cmkctl_deferred_changes", ())] == 1
    assert out.plan is not None and out.plan.next_not_before is not None
    assert samples[("cmkctl_next_not_before_timestamp_seconds", ())] == out.plan.next_not_before.timestamp()
    assert samples[("cmkctl_drifted_resources", ())] == 1  # the capacity differs until the decrease runs
    arm_gets = ("cmkctl_azure_requests_total", (("method", "GET"), ("service", "arm"), ("status", "200")))
    assert samples[arm_gets] > 0
    services = {dict(labels)["service"] for name, labels in samples if name == "cmkctl_azure_requests_total"}
    assert services == {"arm"}  # this spec has no key: no Key Vault call; host names never exported
    assert not any("azure.com" in str(labels) or "azure.net" in str(labels) for _, labels in samples)
    assert samples[("cmkctl_lock_held", ())] == 0
    assert samples[("cmkctl_operations_in_flight", ())] == 0
    assert samples[("cmkctl_pass_duration_seconds_count", ())] == 2


def test_status_never_contains_the_git_credentials(emulator: Any, make_reconciler: MakeReconciler) -> None:
    rec = make_reconciler("https://bot:tok-123456@127.0.0.1:9/specs.git")
    rec.run_pass()
    body = str(rec.status.snapshot()) + "".join(str(r) for r in rec.log.records)
    assert "tok-123456" not in body
    assert rec.status.snapshot()["conditions"][0]["reason"] == "SourceUnavailable"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (":8080", ("0.0.0.0", 8080)),  # noqa: S104 - the pod default
        ("127.0.0.1:0", ("127.0.0.1", 0)),
    ],
)
def test_parse_listen(text: str, want: tuple[str, int]) -> None:
    assert parse_listen(text) == want


def test_unknown_path_is_404(served: tuple[Reconciler, str]) -> None:
    assert _get(served[1] + "/admin").status_code == 404


def test_metrics_show_the_lock_and_the_operation_in_flight_during_a_long_create(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    """A cluster create takes hours in Azure (C6): while it runs, /metrics says the scope's lock is held
    and one operation is in flight; when the (simulated) clock passes its end, both drop to 0."""
    import threading
    import time

    seed(emulator)
    emulator.configure(durations={"cluster_create": 7200})
    repo.commit_spec(spec_docs(workspaces=()), "cluster only")
    rec = make_reconciler(repo.url)
    server = StatusServer(rec, "127.0.0.1:0")
    server.start()
    worker = threading.Thread(target=rec.run_pass)
    worker.start()
    try:

        def gauges() -> dict[str, float]:
            text = _get(f"http://127.0.0.1:{server.port}/metrics").text
            return {
                s.name: s.value
                for f in text_string_to_metric_families(text)
                for s in f.samples
                if s.name in ("cmkctl_lock_held", "cmkctl_operations_in_flight")
            }

        deadline = time.monotonic() + 30
        while gauges().get("cmkctl_operations_in_flight") != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gauges() == {"cmkctl_lock_held": 1, "cmkctl_operations_in_flight": 1}
        emulator.advance(7201)
        worker.join(timeout=30)
        assert not worker.is_alive()
        assert gauges() == {"cmkctl_lock_held": 0, "cmkctl_operations_in_flight": 0}
        assert rec.status.snapshot()["passes"][0]["result"] == "applied"
    finally:
        emulator.advance(7201)
        worker.join(timeout=30)
        server.stop()
