"""The blob history store and lease lock against Azurite (the real Storage protocol, ETags, leases)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azurite import Azurite, AzuriteUnavailable

from controller.azure.blob_store import BlobHistoryStore, BlobLease, container_client
from controller.azure.clients import AzureClients
from controller.errors import LockHeldError
from controller.model.history import ClusterDeletion, InFlightOperation, LinkOperation, Revision

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
WS = "/subscriptions/s/resourcegroups/rg/providers/microsoft.operationalinsights/workspaces/ws1"


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    try:
        server = Azurite()
    except AzuriteUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def container(azurite: Azurite) -> Iterator[Any]:
    clients = AzureClients(env={})
    yield container_client(clients, azurite.account_url, f"t{uuid.uuid4().hex[:12]}", azurite.credential)
    clients.close()


def test_journal_round_trips_through_the_blob(container: Any) -> None:
    store = BlobHistoryStore(container, now=lambda: NOW)
    assert store.load().link_operations == ()
    store.record_link_operation(LinkOperation(WS, "link", NOW - timedelta(days=3), cluster_key="c1"))
    store.record_cluster_deletion(ClusterDeletion("c2", "s", "westeurope", "clu02", NOW - timedelta(days=1)))
    store.begin_operation(InFlightOperation("op1", "link", WS, "https://status/1", NOW))
    store.record_revision(Revision("abc123", NOW, {"link": 1}))

    again = BlobHistoryStore(container, now=lambda: NOW).load()  # another process reading
    assert [(o.kind, o.at) for o in again.link_operations] == [("link", NOW - timedelta(days=3))]
    assert again.cluster_deletions[0].name == "clu02"
    assert [op.op_id for op in again.in_flight] == ["op1"]  # resumable after a crash
    assert BlobHistoryStore(container, now=lambda: NOW).running() == again.in_flight
    store.end_operation("op1", "succeeded")
    assert store.load().in_flight == ()
    assert store.running() == ()
    assert store.revisions()[0].revision == "abc123"


def test_the_same_link_recorded_twice_counts_once(container: Any) -> None:
    """A retried journal write must not burn a second W3 operation."""
    store = BlobHistoryStore(container, now=lambda: NOW)
    op = LinkOperation(WS, "unlink", NOW)
    store.record_link_operation(op)
    store.record_link_operation(op)
    assert len(store.load().link_operations) == 1


def test_concurrent_writers_lose_nothing(container: Any) -> None:
    """ETag-guarded read-modify-write: 4 writers × 10 records each = 40 records, none overwritten."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        store = BlobHistoryStore(container, now=lambda: NOW)
        try:
            for i in range(10):
                store.record_link_operation(LinkOperation(f"{WS}{n}", "link", NOW - timedelta(minutes=i)))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(BlobHistoryStore(container).load().link_operations) == 40


def test_operations_older_than_the_retention_are_dropped_on_write(container: Any) -> None:
    store = BlobHistoryStore(container, now=lambda: NOW)
    store.record_link_operation(LinkOperation(WS, "link", NOW - timedelta(days=200)))
    store.record_link_operation(LinkOperation(WS, "link", NOW - timedelta(days=2)))
    assert [o.at for o in store.load().link_operations] == [NOW - timedelta(days=2)]


def test_lease_lock_is_exclusive_and_names_its_holder(container: Any) -> None:
    first = BlobLease(container, "ci-job-17 on runner-a", duration=15).acquire()
    second = BlobLease(container, "laptop of alice", duration=15)
    with pytest.raises(LockHeldError) as refused:
        second.acquire(timeout=0.5, poll=0.1)
    assert "ci-job-17 on runner-a" in str(refused.value)
    first.renew()
    first.release()
    with second.acquire(timeout=2, poll=0.1):
        assert second.held
        assert second.current_holder() == "laptop of alice"
    assert not second.held
    assert BlobLease(container, "x", duration=15).current_holder() is None


def test_waiting_for_the_lock_succeeds_once_it_is_released(container: Any) -> None:
    holder = BlobLease(container, "apply #1", duration=15).acquire()
    threading.Timer(0.5, holder.release).start()
    waiter = BlobLease(container, "apply #2", duration=15).acquire(timeout=10, poll=0.1)
    assert waiter.held
    waiter.release()


def test_intent_and_baseline_of_an_apply_are_kept_in_the_blob_journal(container: Any) -> None:
    """The blob journal keeps what `drift: report` compares with, exactly as the SQLite one does."""
    from controller.model.history import AppliedResource

    store = BlobHistoryStore(container, now=lambda: NOW)
    store.record_applied([AppliedResource("cluster:c1", "rev1", NOW, {"capacity": 1200}, {"capacity": 1200})])
    store.record_applied(
        [AppliedResource("cluster:c1", "rev2", NOW, {"capacity": 1300}, {"tags": {"a": "b"}})]
    )
    got = BlobHistoryStore(container, now=lambda: NOW).load().applied_by_key()
    assert list(got) == ["cluster:c1"]
    assert got["cluster:c1"].revision == "rev2" and got["cluster:c1"].intent == {"capacity": 1300}
    assert got["cluster:c1"].baseline == {"tags": {"a": "b"}} and got["cluster:c1"].at == NOW
