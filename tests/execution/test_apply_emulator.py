"""`cmkctl apply` against the emulator with the real SDK: convergence, crash/resume, lock, stale plan,
transient faults, failures that skip their descendants. Every scenario also checks that the emulator
recorded no harm event (W4 data dropped, K1 revocation, B2 saved searches lost)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from estate import CLUSTER, RG, SUB, cluster_id, seed_estate, workspace_id, write_spec

from controller.azure.clients import AzureClients
from controller.cli import apply_cmd
from controller.errors import CmkError
from controller.planning.plan import Action, DeleteParams
from controller.service.snapshot import snapshot
from controller.state.sqlite_store import SqliteHistoryStore

CLUSTER_PATH = f"/clusters/{CLUSTER}$"
LINK_PATH = r"/workspaces/[^/]+/linkedServices/cluster$"


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Point the product at the emulator through its environment only; retries don't really sleep."""
    values = {**emulator.env, "CMKCTL_RETRY_BACKOFF": "0.01", "CMKCTL_POLLING_INTERVAL": "0.05"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield values


def _apply(
    spec: Path | None, state: Path, *extra: str, planfile: Path | None = None, lock_timeout: float = 0.0
) -> int:
    clients = AzureClients()
    try:
        return apply_cmd.run(
            str(planfile) if planfile else None,
            [str(spec)] if spec else [],
            auto_approve=True,
            state=str(state),
            clients=clients,
            lock_timeout=lock_timeout,
        )
    finally:
        clients.close()


def _writes(emulator: Any, method: str, pattern: str) -> list[dict[str, Any]]:
    import re

    rx = re.compile(pattern, re.IGNORECASE)
    return [r for r in emulator.requests() if r["method"] == method and rx.search(r["path"])]


def _spawn_apply(spec: Path, state: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "apply",
            "-f",
            str(spec),
            "--auto-approve",
            "--state",
            str(state),
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _sent(state: Path, action: str) -> bool:
    """Read-only, as a second reader must be while the apply writes (it may be creating the journal)."""
    if not (state / "history.sqlite").exists():
        return False
    try:
        store = SqliteHistoryStore(state, read_only=True)
    except CmkError:  # not created to the end yet
        return False
    try:
        return any(o.action == action and o.phase == "sent" for o in store.load().in_flight)
    except (CmkError, sqlite3.Error):  # its tables not created yet
        return False
    finally:
        store.close()


def test_apply_converges_then_nothing_to_do(
    emulator: Any, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: an empty estate; apply creates the cluster and links both workspaces; a second apply
    finds nothing to do and writes nothing; the journal holds both link times (rule W3)."""
    seed_estate(emulator)
    spec, state = write_spec(tmp_path / "spec"), tmp_path / "state"

    assert _apply(spec, state) == 0
    out = capsys.readouterr().out
    assert "3 changed" in out
    assert len(_writes(emulator, "PUT", CLUSTER_PATH)) == 1
    assert len(_writes(emulator, "PUT", LINK_PATH)) == 2

    emulator.clear_requests()
    assert _apply(spec, state) == 0
    assert "No changes" in capsys.readouterr().out
    assert [r for r in emulator.requests() if r["method"] != "GET"] == []
    store = SqliteHistoryStore(state)
    assert sorted(o.workspace_key for o in store.load().link_operations) == sorted(
        workspace_id(w).lower() for w in ("law1", "law2")
    )
    assert emulator.events() == []


def test_sigkill_during_cluster_create_resumes_without_reissuing(
    emulator: Any, env: dict[str, str], tmp_path: Path
) -> None:
    """Scenario: the apply process is SIGKILLed while waiting for the cluster create (its token is in
    the journal). Azure finishes the create meanwhile. The next apply resumes the recorded operation,
    links the workspaces and converges: one cluster PUT in total, one link PUT per workspace."""
    seed_estate(emulator)
    spec, state = write_spec(tmp_path / "spec"), tmp_path / "state"
    emulator.fault(method="PUT", path=CLUSTER_PATH, stick_operation=3600, count=1)  # create takes 1 h

    proc = _spawn_apply(spec, state, env)
    try:
        _wait_for(lambda: _sent(state, "create"), "the create to be journaled as sent")
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    emulator.advance(3700)  # the create finishes while nobody watches

    assert _apply(spec, state) == 0
    assert len(_writes(emulator, "PUT", CLUSTER_PATH)) == 1
    assert len(_writes(emulator, "PUT", LINK_PATH)) == 2
    ops = SqliteHistoryStore(state).operations()
    assert any(o["action"] == "create" and o["detail"] == "resumed after restart" for o in ops)
    assert SqliteHistoryStore(state).load().in_flight == ()
    assert emulator.events() == []


def test_sigkill_during_link_does_not_send_a_second_link(
    emulator: Any, env: dict[str, str], tmp_path: Path
) -> None:
    """Scenario: the apply is SIGKILLed while a link is running (rule W3: each link costs budget). The
    rerun resumes it from the journal: no extra link PUT for that workspace, and it is counted once."""
    seed_estate(emulator, workspaces=("law1",))
    spec, state = write_spec(tmp_path / "spec", workspaces=("law1",)), tmp_path / "state"
    emulator.fault(method="PUT", path=LINK_PATH, stick_operation=3600, count=1)

    proc = _spawn_apply(spec, state, env)
    try:
        _wait_for(lambda: _sent(state, "link"), "the link to be journaled as sent")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    emulator.advance(3700)

    assert _apply(spec, state) == 0
    assert len(_writes(emulator, "PUT", LINK_PATH)) == 1
    assert len(_writes(emulator, "PUT", CLUSTER_PATH)) == 1
    assert [o.kind for o in SqliteHistoryStore(state).load().link_operations] == ["link"]
    assert emulator.events() == []


def test_second_apply_waits_then_names_the_holder(
    emulator: Any, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: a CI apply is running (stuck on a long create); a second apply on the same state waits
    --lock-timeout, exits 1 naming the first one's pid, and sends nothing."""
    seed_estate(emulator)
    spec, state = write_spec(tmp_path / "spec"), tmp_path / "state"
    emulator.fault(method="PUT", path=CLUSTER_PATH, stick_operation=3600, count=1)
    proc = _spawn_apply(spec, state, env)
    try:
        _wait_for(lambda: _sent(state, "create"), "the first apply to start")
        writes_before = len([r for r in emulator.requests() if r["method"] != "GET"])
        started = time.monotonic()
        assert _apply(spec, state, lock_timeout=0.5) == 1
        assert time.monotonic() - started >= 0.5
        err = capsys.readouterr().err
        assert "locked by" in err and f"pid {proc.pid}" in err and "cmkctl apply" in err
        assert len([r for r in emulator.requests() if r["method"] != "GET"]) == writes_before
    finally:
        proc.kill()
        proc.communicate(timeout=30)


@pytest.mark.parametrize("with_digests", [True, False], ids=["resource-digests", "plan-diff"])
def test_stale_saved_plan_is_refused_naming_what_changed(
    emulator: Any, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], with_digests: bool
) -> None:
    """Scenario: a plan is saved, then someone links law1 out of band; applying the saved plan is
    refused, the message names the workspace that changed, and nothing is written. Without per-resource
    digests in the plan file, the message names the steps that the live state no longer matches."""
    seed_estate(emulator)
    spec, state = write_spec(tmp_path / "spec"), tmp_path / "state"
    emulator.seed(
        {
            "clusters": [
                {
                    "subscription": emulator.subscription,
                    "resource_group": "rg-mon",
                    "name": "other01",
                    "location": "westeurope",
                }
            ]
        }
    )
    clients = AzureClients()
    store = SqliteHistoryStore(state)
    snap = snapshot([str(spec)], clients=clients, journal=store.load())
    plan, observed = snap.plan, snap.observed
    from controller.planning import fingerprint as fp

    planfile = tmp_path / "plan.json"
    planfile.write_text(
        plan.model_copy(
            update={
                "spec_paths": (str(spec),),
                "resource_digests": fp.resource_digests(observed) if with_digests else {},
            }
        ).model_dump_json()
    )
    resp = emulator.arm(
        "PUT",
        "/subscriptions/" + emulator.subscription + "/resourceGroups/rg-mon/providers/"
        "Microsoft.OperationalInsights/workspaces/law1/linkedServices/cluster",
        {"properties": {"writeAccessResourceId": cluster_id("other01")}},
    )
    assert resp.status_code < 300
    emulator.clear_requests()

    assert _apply(None, state, planfile=planfile) == 1
    err = capsys.readouterr().err
    assert "stale" in err and "law1" in err
    assert [r for r in emulator.requests() if r["method"] != "GET"] == []


def test_saved_plan_applies_when_nothing_changed(emulator: Any, env: dict[str, str], tmp_path: Path) -> None:
    """Scenario: plan --out, review, apply PLANFILE: exactly the reviewed plan runs and converges."""
    seed_estate(emulator)
    spec, state = write_spec(tmp_path / "spec"), tmp_path / "state"
    clients = AzureClients()
    plan = snapshot([str(spec)], clients=clients, journal=SqliteHistoryStore(state).load()).plan
    planfile = tmp_path / "plan.json"
    planfile.write_text(plan.model_copy(update={"spec_paths": (str(spec),)}).model_dump_json())
    assert _apply(None, state, planfile=planfile) == 0
    assert len(_writes(emulator, "PUT", LINK_PATH)) == 2
    assert _apply(spec, state) == 0


def test_transient_faults_are_retried(emulator: Any, env: dict[str, str], tmp_path: Path) -> None:
    """Scenario: the cluster PUT is throttled (429 Retry-After) and a link PUT gets 500s beyond what the
    SDK retries; the apply retries and converges with one successful write of each."""
    seed_estate(emulator, workspaces=("law1",))
    spec, state = write_spec(tmp_path / "spec", workspaces=("law1",)), tmp_path / "state"
    env_retry = AzureClients()._retry_total  # the SDK retries this many times itself
    emulator.fault(
        method="PUT",
        path=CLUSTER_PATH,
        status=429,
        retry_after=0,
        count=env_retry + 2,
        code="SubscriptionRequestsThrottled",
    )
    emulator.fault(method="PUT", path=LINK_PATH, status=500, count=env_retry + 2)

    assert _apply(spec, state) == 0
    puts = _writes(emulator, "PUT", CLUSTER_PATH)
    assert [r["status"] for r in puts].count(429) == env_retry + 2
    assert len([r for r in puts if r["status"] < 300]) == 1
    links = _writes(emulator, "PUT", LINK_PATH)
    assert len([r for r in links if r["status"] < 300]) == 1
    assert emulator.events() == []


def test_failed_create_skips_its_links(
    emulator: Any, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: the cluster create fails asynchronously with Azure's error; the links that depend on it
    are skipped (never sent: W4 would drop data), and the summary names only the root cause."""
    seed_estate(emulator)
    spec, state = write_spec(tmp_path / "spec"), tmp_path / "state"
    emulator.fault(method="PUT", path=CLUSTER_PATH, fail_operation=True, count=1)

    assert _apply(spec, state) == 1
    out = capsys.readouterr().out
    assert "1 failed, 2 skipped" in out
    assert "skipped because of it: workspace.law1, workspace.law2" in out
    assert _writes(emulator, "PUT", LINK_PATH) == []
    assert emulator.events() == []


def test_a_permanent_refusal_is_sent_once_and_not_retried(
    emulator: Any, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: Azure refuses a link with a 409 that is not "link or unlink operation in process" (W5);
    it will say the same in an hour, so the apply reports it after one request instead of retrying."""
    seed_estate(emulator, workspaces=("law1",))
    spec, state = write_spec(tmp_path / "spec", workspaces=("law1",)), tmp_path / "state"
    text = (
        "The link cannot be updated or deleted because it is linked to Update Management and/or "
        "ChangeTracking Solutions"
    )
    emulator.fault(method="PUT", path=LINK_PATH, status=409, code="Conflict", message=text)

    assert _apply(spec, state) == 1
    assert text in capsys.readouterr().out  # Azure's words, verbatim
    assert len(_writes(emulator, "PUT", LINK_PATH)) == 1


def test_an_edited_saved_plan_is_refused_and_nothing_runs(
    emulator: Any, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: someone edits a reviewed plan file, turning a link into a cluster delete. The live
    state is unchanged (the fingerprint still matches), but a fresh plan of the spec does not contain
    that delete: apply refuses, naming it, and sends nothing (the prune opt-in is never bypassed)."""
    seed_estate(emulator)
    spec, state = write_spec(tmp_path / "spec"), tmp_path / "state"
    clients = AzureClients()
    snap = snapshot([str(spec)], clients=clients, journal=SqliteHistoryStore(state).load())
    plan = snap.artefact([str(spec)])
    first = plan.changes[0]
    tampered = first.model_copy(
        update={"action": Action.DELETE, "address": f"cluster.{CLUSTER}", "resource_id": cluster_id(CLUSTER),
                "parameters": DeleteParams(subscription=SUB, resource_group=RG, name=CLUSTER,
                                           location="westeurope")}
    )
    edited = plan.model_copy(update={"changes": (tampered, *plan.changes[1:])})
    planfile = tmp_path / "plan.json"
    planfile.write_text(edited.model_dump_json())
    emulator.clear_requests()

    assert _apply(None, state, planfile=planfile) == 1
    err = capsys.readouterr().err
    assert "fresh plan" in err and f"delete cluster.{CLUSTER}" in err
    assert [r for r in emulator.requests() if r["method"] != "GET"] == []
