"""Concurrency: two applies, and an apply against the controller, on one state: exactly one
writer; the other exits 1 naming the holder and sends nothing. On the local backend (flock) and the
azureblob backend (blob lease, Azurite). A saved plan made before someone else changed Azure is refused.

The winner is kept busy by a cluster create that Azure never finishes (a stuck operation) until its
CMKCTL_OPERATION_TIMEOUT; so the race window is seconds wide, not milliseconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_support import (
    CLUSTER_PATH,
    LINK_PATH,
    cluster_id,
    estate_for,
    record,
    workspace_id,
    write_spec,
    writes,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "azure"))
from azurite import KEY, Azurite, AzuriteUnavailable  # tests/azure's Azurite runner


def _env(emulator: Any, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **emulator.env,
        "CMKCTL_POLLING_INTERVAL": "0.05",
        "CMKCTL_RETRY_BACKOFF": "0.01",
        "CMKCTL_OPERATION_TIMEOUT": "3",
        "AZURE_STORAGE_KEY": KEY,
        **extra,
    }


def _apply(spec: Path, state: str, env: dict[str, str]) -> subprocess.Popen[str]:
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
            state,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _race(emulator: Any, spec: Path, state: str, env: dict[str, str], backend: str) -> None:
    """Start two applies at the same instant; exactly one may write."""
    emulator.fault(method="PUT", path=CLUSTER_PATH, stick_operation=3600, count=1)
    procs = [_apply(spec, state, env), _apply(spec, state, env)]
    outs = [p.communicate(timeout=120) for p in procs]
    by_pid = {p.pid: (p.returncode, o, e) for p, (o, e) in zip(procs, outs, strict=True)}
    held = ("locked by", "holds the lock")  # flock and blob-lease wording
    losers = [pid for pid, (_, _, err) in by_pid.items() if any(h in err for h in held)]
    assert len(losers) == 1, by_pid
    loser = losers[0]
    winner = next(pid for pid in by_pid if pid != loser)
    rc, _, err = by_pid[loser]
    assert rc == 1 and f"pid {winner}" in err, err  # names the holder
    assert "Traceback" not in err + by_pid[winner][2]
    puts = [r for r in writes(emulator.requests(), "PUT", CLUSTER_PATH) if r["status"] < 300]
    assert len(puts) == 1, puts  # one writer, one create
    assert writes(emulator.requests(), "PUT", LINK_PATH) == []  # W4: never linked to a creating cluster
    assert emulator.events() == []
    record("concurrency", race=f"apply vs apply ({backend})", writers=1, loser_named_holder=True)


def test_two_applies_local_backend(emulator: Any, tmp_path: Path) -> None:
    estate = estate_for("create")
    emulator.seed(estate.seed)
    spec = write_spec(tmp_path / "spec", estate)
    _race(emulator, spec, str(tmp_path / "state"), _env(emulator), "local")


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    try:
        server = Azurite()
    except AzuriteUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


def test_two_applies_azureblob_backend(emulator: Any, azurite: Azurite, tmp_path: Path) -> None:
    estate = estate_for("create")
    emulator.seed(estate.seed)
    spec = write_spec(tmp_path / "spec", estate)
    url = f"azureblob://127.0.0.1:{azurite.port}/devstoreaccount1/r{uuid.uuid4().hex[:12]}/prod/history.json"
    _race(emulator, spec, url, _env(emulator), "azureblob")


@pytest.mark.parametrize("backend", ["local", "azureblob"])
def test_apply_vs_controller_one_writer(
    emulator: Any, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """An apply holds the lock; the controller's pass on the same state reports LockHeld naming the
    apply, writes nothing, and exits 1. Once the apply is gone the controller converges the estate.
    On azureblob both share the blob journal and lease (the controller's own files stay local)."""
    estate = estate_for("create")
    emulator.seed(estate.seed)
    spec = write_spec(tmp_path / "spec", estate)
    state = tmp_path / "state"
    env = _env(emulator, CMKCTL_STATE=str(tmp_path / "controller-local"))
    if backend == "azureblob":
        blob: Azurite = request.getfixturevalue("azurite")
        apply_state = controller_state = (
            f"azureblob://127.0.0.1:{blob.port}/devstoreaccount1/c{uuid.uuid4().hex[:12]}/prod/history.json"
        )
    else:
        apply_state, controller_state = str(state), f"local:{state}"
    emulator.fault(method="PUT", path=CLUSTER_PATH, stick_operation=3600, count=1)
    # the holder waits for its create until the test releases it (not a short timeout: on a loaded
    # machine the controller's start alone can take longer than a few seconds)
    holder = _apply(spec, apply_state, {**env, "CMKCTL_OPERATION_TIMEOUT": "120"})
    deadline = time.monotonic() + 60
    while not writes(emulator.requests(), "PUT", CLUSTER_PATH):
        assert time.monotonic() < deadline and holder.poll() is None, "the apply never sent its create"
        time.sleep(0.05)

    def controller() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "controller.cli",
                "controller",
                "--source",
                str(spec.parent),
                "--state",
                controller_state,
                "--once",
                "--listen",
                "127.0.0.1:0",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    busy = controller()
    writes_while_held = len([r for r in emulator.requests() if r["method"] != "GET"])
    emulator.advance(3700)  # the stuck create finishes, and with it the holder's apply
    holder.communicate(timeout=120)
    assert busy.returncode == 1, busy.stdout + busy.stderr
    assert "LockHeld" in busy.stdout and f"pid {holder.pid}" in busy.stdout, busy.stdout + busy.stderr
    assert "Traceback" not in busy.stderr
    assert writes_while_held == 1  # only the apply's create

    for _ in range(3):  # a pass that resumes the create leaves the W4-deferred link to the next pass
        done = controller()
        assert done.returncode == 0, done.stdout + done.stderr
        if writes(emulator.requests(), "PUT", LINK_PATH):
            break
    assert len([r for r in writes(emulator.requests(), "PUT", CLUSTER_PATH) if r["status"] < 300]) == 1
    assert len(writes(emulator.requests(), "PUT", LINK_PATH)) == 1
    assert workspace_id("law1").lower() in {w.lower() for w in _linked(emulator)}
    assert emulator.events() == []
    record("concurrency", race=f"apply vs controller ({backend})", writers=1, loser_named_holder=True)


def _linked(emulator: Any) -> list[str]:
    with emulator.state.lock:
        return [w.arm_id for w in emulator.state.workspaces.values() if w.cluster]


def test_stale_saved_plan_is_refused(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plan saved for review, then someone links the workspace by hand: applying the saved plan is
    refused (exit 1, 'stale', names the workspace) and nothing is written."""
    from controller.azure.clients import AzureClients
    from controller.cli import apply_cmd
    from controller.state.sqlite_store import SqliteHistoryStore

    for name, value in _env(emulator).items():
        monkeypatch.setenv(name, value)
    estate = estate_for("link")
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "plan",
            "-f",
            str(spec),
            "--out",
            str(tmp_path / "plan.json"),
            "--state",
            str(state),
        ],
        env=_env(emulator),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode in (0, 2), made.stderr
    resp = emulator.arm(
        "PUT",
        workspace_id("law1") + "/linkedServices/cluster",
        {"properties": {"writeAccessResourceId": cluster_id()}},
    )
    assert resp.status_code < 300, resp.text
    emulator.clear_requests()
    clients = AzureClients()
    try:
        rc = apply_cmd.run(str(tmp_path / "plan.json"), [], state=str(state), clients=clients)
    finally:
        clients.close()
    assert rc == 1
    err = capsys.readouterr().err
    assert "stale" in err and "law1" in err, err
    assert [r for r in emulator.requests() if r["method"] != "GET"] == []
    store = SqliteHistoryStore(state)
    try:
        assert store.load().in_flight == ()
    finally:
        store.close()
    record("concurrency", race="stale saved plan", writers=0, loser_named_holder=False, refused=True)
