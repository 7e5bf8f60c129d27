"""ARM budget: requests paced to the subscription's buckets; in-flight operations watched by one
scheduler inside the read budget, not by a polling thread each. Real SDK against the emulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from controller.azure.clients import AzureClients
from controller.azure.operations import Operations
from controller.azure.watch import Watch
from controller.planning.plan import Action, Change

SUB = "00000000-0000-0000-0000-00000000ab01"
RG = "rg-pace"
PROVIDER = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights"
CLUSTER = f"{PROVIDER}/clusters/c1"


def _ws(name: str) -> str:
    return f"{PROVIDER}/workspaces/{name}"


def _seed(emulator: Any, n: int) -> None:
    emulator.seed(
        {
            "resource_groups": [{"subscription": SUB, "name": RG, "location": "westeurope"}],
            "clusters": [{"subscription": SUB, "resource_group": RG, "name": "c1", "location": "westeurope"}],
            "workspaces": [
                {"subscription": SUB, "resource_group": RG, "name": f"w{i}", "location": "westeurope"}
                for i in range(n)
            ],
        }
    )


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in emulator.env.items():
        monkeypatch.setenv(name, value)
    yield monkeypatch


def _arm(emulator: Any) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if f"/subscriptions/{SUB}" in r["path"].lower()]


def test_reads_are_paced_to_the_bucket_without_a_429(emulator: Any, env: Any) -> None:
    """Scenario: ARM allows 5 reads at once and 20 a second. 40 reads in a row, paced to that bucket,
    are never throttled and take the ~1.75 s the bucket needs; unpaced, the same reads hit 429s."""
    _seed(emulator, 1)
    emulator.configure(throttling=True, throttle_limits={"reads": [5, 20], "writes": [200, 10]})

    def burst(clients: AzureClients) -> float:
        la = clients.loganalytics(SUB)
        started = time.monotonic()
        for _ in range(40):
            la.workspaces.get(RG, "w0")
        return time.monotonic() - started

    emulator.clear_requests()
    unpaced = AzureClients(env={**emulator.env, "CMKCTL_AZURE_RETRY_TOTAL": "10"})
    try:
        burst(unpaced)
    finally:
        unpaced.close()
    assert any(r["status"] == 429 for r in _arm(emulator))  # the bucket is real

    time.sleep(0.5)  # let the emulator's bucket refill
    emulator.clear_requests()
    paced = AzureClients(env={**emulator.env, "CMKCTL_ARM_READ_RATE": "20"})
    try:
        seconds = burst(paced)
    finally:
        paced.close()
    statuses = [r["status"] for r in _arm(emulator)]
    assert statuses.count(429) == 0, statuses
    assert len(statuses) == 40
    assert seconds >= (40 - 5) / 20 * 0.8


def test_in_flight_links_are_watched_by_one_scheduler_inside_the_read_budget(
    emulator: Any, env: Any
) -> None:
    """Scenario: 30 links run at once in one subscription whose reads are paced to 10 a second. No
    thread per link is started; the status reads over 2 s stay within the watch's share of the read
    refill (8/s) and every link still gets read; once Azure finishes the links every wait ends."""
    n = 30
    _seed(emulator, n)
    emulator.configure(durations={"link": 90 * 60})
    clients = AzureClients(env={**emulator.env, "CMKCTL_ARM_READ_RATE": "10", "CMKCTL_POLLING_INTERVAL": "0"})
    ops = Operations(clients)
    try:
        handles = []
        for i in range(n):
            change = Change(
                id=f"l{i}",
                action=Action.LINK,
                address=f"workspace.w{i}",
                resource_id=_ws(f"w{i}"),
                cluster_id=CLUSTER,
                parameters={"workspace_id": _ws(f"w{i}"), "cluster_id": CLUSTER},
            )
            handles.append(ops.start(change, lambda url, token: None))
        threads_before = threading.active_count()
        ended: list[BaseException | None] = []
        for h in handles:
            method = h.poller.polling_method()
            ops.watch.watch(SUB, method, timeout=60, on_done=ended.append)
        emulator.clear_requests()
        time.sleep(2.0)
        polls = [r for r in _arm(emulator) if r["method"] == "GET"]
        assert threading.active_count() - threads_before <= 8 + 1  # the scheduler and its readers
        assert len(polls) <= 8 * 2 + 2
        assert ops.watch.watching() == n and not ended

        emulator.advance(90 * 60 + 1)
        deadline = time.monotonic() + 30
        while len(ended) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ended == [None] * n  # every link ended, without error
        assert ops.watch.reads >= n  # each was read at least once
    finally:
        clients.close()


def test_links_are_seen_ended_through_one_workspaces_list_not_a_read_each(emulator: Any, env: Any) -> None:
    """Scenario: 40 links run at once in one subscription whose reads are paced to 10 a second. While
    they run, the watch reads the workspaces list (every 0.4 s, spacing out to 1.6 s while none has
    ended) and each link's own status only rarely (it looks for failures, ~every 40 s, the first time
    40 s after the link was accepted), not each link every 5 s in turn. Once Azure finishes them, the
    list shows every workspace linked and each wait ends within seconds, after about one status read
    per link."""
    n = 40
    clients = _links_ready(emulator, n, link_seconds=90 * 60, reads="10", polling="0.2")
    ops = Operations(clients)
    try:
        handles = [ops.start(_link(i), lambda url, token: None) for i in range(n)]
        ended: list[BaseException | None] = []
        for h in handles:
            ops.when_done(h, ended.append)
        reads_before = ops.watch.reads
        time.sleep(4.0)
        assert not ended and ops.watch.watching() == n
        assert ops.watch.reads - reads_before <= 8  # per-link reads in turn: ~32 in 4 s
        assert ops.watch.lists >= 3
        reads_before = ops.watch.reads
        emulator.clear_requests()
        emulator.advance(90 * 60 + 1)
        started = time.monotonic()
        while len(ended) < n and time.monotonic() - started < 30:
            time.sleep(0.05)
        seconds = time.monotonic() - started
        assert ended == [None] * n  # every link ended, without error
        assert seconds < 15, seconds  # per-link reads alone would take ~40 s to reach them all
        lists = [r for r in _arm(emulator) if r["path"].lower().endswith("operationalinsights/workspaces")]
        assert 1 <= len(lists) <= seconds / 0.4 + 2
        # about one status read per link once the list showed it ended (plus the SDK's final GET)
        assert ops.watch.reads - reads_before <= 2 * n
    finally:
        clients.close()


def test_a_link_that_fails_is_still_found_by_its_own_status_read(emulator: Any, env: Any) -> None:
    """Scenario: of 40 links the first fails in Azure. The list never shows it linked; its own
    (sparser) status read finds the failure, and the wait ends with Azure's error, not at the
    operation timeout."""
    n = 40
    clients = _links_ready(emulator, n, link_seconds=90 * 60, reads="10", polling="0.2")
    ops = Operations(clients, operation_timeout=120)
    try:
        emulator.fault(
            method="PUT", path=r"/workspaces/w0/linkedServices/cluster$", fail_operation=True, count=1
        )
        handles = [ops.start(_link(i), lambda url, token: None) for i in range(n)]
        ended: list[BaseException | None] = []
        ops.when_done(handles[0], ended.append)
        others: list[BaseException | None] = []
        for h in handles[1:]:
            ops.when_done(h, others.append)
        emulator.advance(90 * 60 + 1)
        started = time.monotonic()
        while (not ended or len(others) < n - 1) and time.monotonic() - started < 60:
            time.sleep(0.1)
        assert ended and ended[0] is not None, "the failed link's wait did not end"
        assert "fail" in str(ended[0]).lower()
        assert others == [None] * (n - 1)
    finally:
        clients.close()


def _links_ready(emulator: Any, n: int, *, link_seconds: float, reads: str, polling: str) -> AzureClients:
    """n workspaces to link, links lasting `link_seconds`, and clients paced to `reads` a second that
    poll every `polling` seconds."""
    _seed(emulator, n)
    emulator.configure(durations={"link": link_seconds})
    pacing = {"CMKCTL_ARM_READ_RATE": reads, "CMKCTL_POLLING_INTERVAL": polling}
    return AzureClients(env={**emulator.env, **pacing})


def _link(i: int) -> Change:
    return Change(
        id=f"l{i}",
        action=Action.LINK,
        address=f"workspace.w{i}",
        resource_id=_ws(f"w{i}"),
        cluster_id=CLUSTER,
        parameters={"workspace_id": _ws(f"w{i}"), "cluster_id": CLUSTER},
    )


def test_an_ended_link_is_verified_from_the_sdks_final_read_not_read_again(emulator: Any, env: Any) -> None:
    """Scenario: 5 links run and end. Each is read once after Azure ended it (the SDK's final GET of
    linkedServices/cluster) and verified against that read: no second GET of the link. A link whose
    read the watch did not keep (another apply's, or a restart's) is still read again by verify, and a
    link that did not end as planned is still an inconsistent result."""
    n = 5
    clients = _links_ready(emulator, n, link_seconds=60, reads="50", polling="0.1")
    ops = Operations(clients)
    try:
        changes = [_link(i) for i in range(n)]
        handles = [ops.start(c, lambda url, token: None) for c in changes]
        ended: list[BaseException | None] = []
        for h in handles:
            ops.when_done(h, ended.append)
        emulator.advance(61)
        deadline = time.monotonic() + 30
        while len(ended) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ended == [None] * n
        emulator.clear_requests()
        # w1 checked against another cluster than the one it was linked to: the kept read says no
        other = CLUSTER.replace("/c1", "/c2")
        elsewhere = changes[1].model_copy(
            update={"parameters": changes[1].parameters.model_copy(update={"cluster_id": other})}
        )
        with pytest.raises(Exception, match="inconsistent result"):
            ops.verify(elsewhere)
        for c in changes[:1] + changes[2:]:
            ops.verify(c)  # each as planned: no error
        assert [r for r in _arm(emulator) if r["method"] == "GET"] == []  # all from the kept reads
        ops.verify(changes[1])  # nothing kept for it any more: read again, as planned
        reads = [r for r in _arm(emulator) if r["method"] == "GET"]
        assert len(reads) == 1 and reads[0]["path"].lower().endswith("/w1/linkedservices/cluster")
    finally:
        clients.close()


def test_lists_space_out_while_no_link_has_ended(emulator: Any, env: Any) -> None:
    """Scenario: 40 links of 90 minutes run in one subscription, lists due every 0.4 s. While none
    has ended, each list waits twice as long as the one before, up to 4 intervals (1.6 s): about 5
    lists in 6 s, not 15 (each reads every workspace of the subscription). Once Azure ends them, the
    next list shows them and every wait ends within seconds."""
    n = 40
    clients = _links_ready(emulator, n, link_seconds=90 * 60, reads="10", polling="0.2")
    ops = Operations(clients)
    try:
        ended: list[BaseException | None] = []
        for h in [ops.start(_link(i), lambda url, token: None) for i in range(n)]:
            ops.when_done(h, ended.append)
        time.sleep(6.0)
        assert not ended
        assert 3 <= ops.watch.lists <= 6, ops.watch.lists
        emulator.advance(90 * 60 + 1)
        started = time.monotonic()
        while len(ended) < n and time.monotonic() - started < 30:
            time.sleep(0.05)
        assert ended == [None] * n
        # the next list (at most 1.6 s away) shows them ended; then a status read and the SDK's final
        # GET each, paced to the 10 reads a second (per-link reads alone would take ~40 s to reach all)
        assert time.monotonic() - started < 15
    finally:
        clients.close()


SUB2 = "00000000-0000-0000-0000-00000000ab02"
CLUSTER2 = f"/subscriptions/{SUB2}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/clusters/c2"


def test_a_subscription_at_its_read_pace_does_not_hold_back_another_subscriptions_reads(
    emulator: Any, env: Any
) -> None:
    """Scenario: 30 links end at once in one subscription, paced to 8 status reads a second (~4 s to
    read them all); a moment later the one link of a second subscription ends. Each subscription
    has its own read budget in ARM, so the second one's link is read and ended at once, not after the
    first subscription's 30."""
    n = 30
    clients = _links_ready(emulator, n, link_seconds=90 * 60, reads="10", polling="0.2")
    where = {"subscription": SUB2, "resource_group": RG, "location": "westeurope"}
    emulator.seed(
        {
            "resource_groups": [{"subscription": SUB2, "name": RG, "location": "westeurope"}],
            "clusters": [{**where, "name": "c2"}],
            "workspaces": [{**where, "name": "v0"}],
        }
    )
    other = _ws("v0").replace(SUB, SUB2)
    ops = Operations(clients)
    try:
        first: list[float] = []
        for h in [ops.start(_link(i), lambda url, token: None) for i in range(n)]:
            ops.when_done(h, lambda exc: first.append(time.monotonic()))
        emulator.advance(10)  # the second subscription's link starts 10 s later, and ends 10 s later
        lone = Change(id="v0", action=Action.LINK, address="workspace.v0", resource_id=other,
                      cluster_id=CLUSTER2, parameters={"workspace_id": other, "cluster_id": CLUSTER2})
        second: list[float] = []
        ops.when_done(ops.start(lone, lambda url, token: None), lambda exc: second.append(time.monotonic()))
        emulator.advance(90 * 60 - 10 + 1)  # the 30 have ended
        deadline = time.monotonic() + 30
        while not first and time.monotonic() < deadline:  # the first subscription's list found them
            time.sleep(0.02)
        emulator.advance(10)  # now the lone link has ended too
        while (len(first) < n or not second) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(first) == n and second, (len(first), second)
        assert second[0] < max(first) - 1.0, "the lone link waited behind the other subscription's reads"
    finally:
        clients.close()


def test_the_scheduler_ends_quietly_when_the_process_shuts_its_readers_down() -> None:
    # SIGTERM to the controller while operations are watched: the interpreter shuts the readers' pool
    # down under the scheduler, which must stop without a traceback in the pod's log
    raised: list[BaseException | None] = []
    before = threading.excepthook
    threading.excepthook = lambda args: raised.append(args.exc_value)
    try:
        watch = Watch(read_rate=lambda sub: None, min_interval=0.2)
        watch.watch("sub", None, timeout=60, on_done=lambda exc: None, restore=_never_read)
        watch._pool.shutdown()  # what the interpreter's exit does to every ThreadPoolExecutor
        scheduler = watch._thread
        assert scheduler is not None
        scheduler.join(timeout=5)
        assert not scheduler.is_alive()
    finally:
        threading.excepthook = before
    assert raised == []


def _never_read() -> Any:
    raise AssertionError("no status read once the readers are shut down")
