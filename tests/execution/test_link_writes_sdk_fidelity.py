"""Link/unlink writes are never silently re-sent (rule W3), and a small apply converges on every SDK we
support. Marked `sdk_floor`: tests/fidelity/run.sh also runs this module under the oldest supported
azure-mgmt-loganalytics (an SDK whose models the product reads wrongly makes every cluster field look
missing, and each create "fails after 0s" with an inconsistent-result error)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from estate import CLUSTER, RG, SUB, cluster_id, seed_estate, workspace_id, write_spec

from controller.azure.clients import AzureClients
from controller.azure.errors import OutcomeUnknown, Transient
from controller.azure.operations import Operations, Precheck
from controller.cli import apply_cmd
from controller.planning.plan import Action, Change

pytestmark = pytest.mark.sdk_floor
LINK_PATH = r"/workspaces/law1/linkedServices/cluster$"


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {**emulator.env, "CMKCTL_RETRY_BACKOFF": "0.01"}.items():
        monkeypatch.setenv(name, value)
    yield


@pytest.fixture
def ops(env: None) -> Iterator[Operations]:
    clients = AzureClients()
    yield Operations(clients)
    clients.close()


def _link_change(action: Action) -> Change:
    return Change(
        id=f"{action}-law1",
        action=action,
        address="workspace.law1",
        resource_id=workspace_id("law1"),
        cluster_id=cluster_id(),
        parameters={"workspace_id": workspace_id("law1"), "cluster_id": cluster_id()},
    )


def _seed_cluster(emulator: Any) -> None:
    seed_estate(emulator, workspaces=("law1",))
    emulator.seed({"clusters": [{"subscription": SUB, "resource_group": RG, "name": CLUSTER,
                                 "location": "westeurope"}]})


def _writes(emulator: Any, method: str) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r["method"] == method and "linkedServices" in r["path"]]


@pytest.mark.parametrize("action", [Action.LINK, Action.UNLINK])
def test_a_lost_link_response_is_not_resent(emulator: Any, ops: Operations, action: Action) -> None:
    """Scenario: the connection drops after a link (or unlink) request went out. The SDK must not send
    it again by itself (a second one may spend another of the workspace's W3 operations); the caller
    gets OutcomeUnknown and re-observes."""
    _seed_cluster(emulator)
    method = "PUT" if action is Action.LINK else "DELETE"
    if action is Action.UNLINK:
        ops.wait(ops.start(_link_change(Action.LINK), lambda url, token: None))
    emulator.fault(method=method, path=LINK_PATH, reset=True, count=1)
    emulator.clear_requests()
    with pytest.raises(OutcomeUnknown):
        ops.start(_link_change(action), lambda url, token: None)
    assert len(_writes(emulator, method)) == 1


@pytest.mark.parametrize("action", [Action.LINK, Action.UNLINK])
def test_a_link_write_answered_500_after_azure_accepted_it_is_not_resent(
    emulator: Any, ops: Operations, action: Action
) -> None:
    """Scenario: Azure starts the link (or unlink) and then answers 500. azure-core would re-send a
    PUT/DELETE on a 500, spending a second of the workspace's two operations (rule W3); here exactly
    one write reaches Azure, the caller gets a Transient error, and re-reading shows the operation
    running and then done, so nothing is sent again."""
    _seed_cluster(emulator)
    method = "PUT" if action is Action.LINK else "DELETE"
    if action is Action.UNLINK:
        ops.wait(ops.start(_link_change(Action.LINK), lambda url, token: None))
    emulator.configure(durations={"link": 600, "unlink": 600})
    emulator.fault(method=method, path=LINK_PATH, status=500, after_accept=True, count=1)
    emulator.clear_requests()
    with pytest.raises(Transient):
        ops.start(_link_change(action), lambda url, token: None)
    assert [r["status"] for r in _writes(emulator, method)] == [500]
    assert ops.precheck(_link_change(action)) is Precheck.IN_PROGRESS  # the executor waits, never re-sends
    emulator.advance(600)
    assert ops.precheck(_link_change(action)) is Precheck.DONE
    assert len(_writes(emulator, method)) == 1


def test_apply_converges_when_a_link_answers_500_after_azure_accepted_it(
    emulator: Any, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: the link PUT of law1 reaches Azure, the link starts, the answer is a 500. The apply
    re-reads the link instead of re-sending it, finds it done, and converges with one PUT per workspace;
    the journal counts law1's link once (rule W3)."""
    from controller.state.sqlite_store import SqliteHistoryStore

    seed_estate(emulator)
    spec = write_spec(tmp_path / "spec", with_key=True)
    emulator.fault(method="PUT", path=LINK_PATH, status=500, after_accept=True, count=1)
    clients = AzureClients()
    try:
        code = apply_cmd.run(None, [str(spec)], auto_approve=True, state=str(tmp_path / "state"),
                             clients=clients)
    finally:
        clients.close()
    assert code == 0, capsys.readouterr()
    assert [r["status"] for r in _writes(emulator, "PUT") if "/law1/" in r["path"]] == [500]
    assert len([r for r in _writes(emulator, "PUT") if "/law2/" in r["path"]]) == 1
    link = emulator.arm("GET", workspace_id("law1") + "/linkedServices/cluster").json()
    assert link["properties"]["writeAccessResourceId"].lower() == cluster_id().lower()
    store = SqliteHistoryStore(tmp_path / "state")
    try:
        counted = [o.workspace_key for o in store.load().link_operations]
    finally:
        store.close()
    assert sorted(counted) == sorted(workspace_id(w).lower() for w in ("law1", "law2"))
    assert emulator.events() == []


def test_small_apply_converges_and_then_plans_nothing(
    emulator: Any, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: a CMK cluster (user-assigned identity, key at creation, rule C5) and two linked
    workspaces from nothing; the second apply has no changes and sends no write."""
    seed_estate(emulator)
    spec = write_spec(tmp_path / "spec", with_key=True)

    def apply() -> int:
        clients = AzureClients()
        try:
            return apply_cmd.run(
                None, [str(spec)], auto_approve=True, state=str(tmp_path / "state"), clients=clients
            )
        finally:
            clients.close()

    assert apply() == 0, capsys.readouterr()
    out = capsys.readouterr()
    assert "0 failed" in out.out
    live = emulator.arm("GET", f"/subscriptions/{SUB}/resourceGroups/{RG}/providers"
                        f"/Microsoft.OperationalInsights/clusters/{CLUSTER}").json()
    assert live["properties"]["keyVaultProperties"]["keyName"] == "cmk"
    for ws in ("law1", "law2"):
        link = emulator.arm("GET", workspace_id(ws) + "/linkedServices/cluster").json()
        assert link["properties"]["writeAccessResourceId"].lower() == cluster_id().lower()

    emulator.clear_requests()
    assert apply() == 0
    assert "No changes" in capsys.readouterr().out
    assert [r for r in emulator.requests() if r["method"] != "GET"] == []
    assert emulator.events() == []
