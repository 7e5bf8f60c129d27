"""Many operations in flight at once cost the apply memory, not a thread each: the executor starts a
step, hands Azure's accepted operation to the watch and finishes it when the watch calls back. Real
SDK against the emulator; the journal keeps every in-flight token for a restart (rule W3: never
re-sent)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.azure.clients import AzureClients
from controller.azure.operations import Operations
from controller.execution.executor import ApplyResult, Executor, StepStatus
from controller.planning.plan import Action, Change, Plan
from controller.state.sqlite_store import SqliteHistoryStore

SUB = "00000000-0000-0000-0000-00000000ab02"
RG = "rg-flight"
PROVIDER = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights"
CLUSTER = f"{PROVIDER}/clusters/c1"
N = 120


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {**emulator.env, "CMKCTL_POLLING_INTERVAL": "0.2"}.items():
        monkeypatch.setenv(name, value)
    yield


def _ours(before: set[int]) -> int:
    """Threads of this apply (its workers, its watch): not the in-process emulator's, nor those an
    earlier test's watch left idle."""
    return sum(
        1 for t in threading.enumerate() if t.name.startswith(("apply", "watch")) and t.ident not in before
    )


def _plan() -> Plan:
    from datetime import UTC, datetime

    changes = [
        Change(
            id=f"link-w{i}",
            action=Action.LINK,
            address=f"workspace.w{i}",
            resource_id=f"{PROVIDER}/workspaces/w{i}",
            cluster_id=CLUSTER,
            parameters={"workspace_id": f"{PROVIDER}/workspaces/w{i}", "cluster_id": CLUSTER},
        )
        for i in range(N)
    ]
    return Plan(
        generated_at=datetime.now(UTC), limits_profile="seed", fingerprint="sha256:x", changes=tuple(changes)
    )


def test_links_in_flight_hold_no_thread_each_and_stay_journaled(
    emulator: Any, env: None, tmp_path: Path
) -> None:
    """Scenario: 120 links into one cluster, each taking 90 minutes in Azure. All 120 are in flight
    at once (links of one cluster run side by side), the apply holds far fewer than 120 threads, the
    journal holds every one as "sent" with its token, and when Azure finishes them each is verified
    and journaled done."""
    emulator.seed(
        {
            "resource_groups": [{"subscription": SUB, "name": RG, "location": "westeurope"}],
            "clusters": [{"subscription": SUB, "resource_group": RG, "name": "c1", "location": "westeurope"}],
            "workspaces": [
                {"subscription": SUB, "resource_group": RG, "name": f"w{i}", "location": "westeurope"}
                for i in range(N)
            ],
        }
    )
    emulator.configure(durations={"link": 90 * 60})
    clients = AzureClients()
    store = SqliteHistoryStore(tmp_path / "state")
    before = {t.ident for t in threading.enumerate() if t.ident is not None}
    out: list[ApplyResult] = []
    try:
        executor = Executor(gateway=Operations(clients), store=store, parallelism=10)
        runner = threading.Thread(target=lambda: out.append(executor.apply(_plan())), daemon=True)
        runner.start()
        deadline = time.monotonic() + 120
        sent: list[Any] = []
        most = 0
        while time.monotonic() < deadline:
            most = max(most, _ours(before))
            sent = [op for op in store.load().in_flight if op.phase == "sent" and op.continuation_token]
            if len(sent) == N:
                break
            time.sleep(0.2)
        assert len(sent) == N, f"only {len(sent)} of {N} links in flight"
        time.sleep(1.0)
        most = max(most, _ours(before))
        assert not out  # Azure is still running all of them
        # the apply's workers (parallelism + 8), the watch's readers and its scheduler
        assert most <= 10 + 8 + 8 + 1, most

        emulator.advance(90 * 60 + 1)
        runner.join(timeout=120)
        assert out, "the apply did not end once Azure finished the links"
        result = out[0]
        assert [s.status for s in result.steps] == [StepStatus.DONE] * N, result.failed[:3]
        assert not store.load().in_flight
        done = [o for o in store.operations() if o["outcome"] == "done"]
        assert len(done) == N
    finally:
        store.close()
        clients.close()
