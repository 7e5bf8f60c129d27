"""SIGTERM ends `cmkctl controller` within the pod's grace period, whatever it is waiting for.

A pod gets terminationGracePeriodSeconds (the chart's default: 60 s) between SIGTERM and SIGKILL.
Operations Azure accepted are journaled with their resume data when sent, so the controller stops
waiting for them and the next start resumes them; a git command that hangs is killed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops_repo import CLUSTER_PATH, seed, spec_docs

from controller.reconcile.source import GitSource, SourceError
from controller.state.sqlite_store import FILENAME, SqliteHistoryStore

# the controller's bound after SIGTERM is 20 s (--shutdown-timeout); it must get there on its own,
# well before that backstop, so the test allows less
STOPPED_WITHIN = 12.0


def _write_spec(root: Path) -> Path:
    specs = root / "specs"
    specs.mkdir(parents=True)
    (specs / "estate.yaml").write_text(yaml.safe_dump_all(spec_docs(), sort_keys=False), encoding="utf-8")
    return root


def _controller(source: str, state: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "controller.cli", "controller",
            "--source", source, "--path", "specs", "--interval", "1h",
            "--listen", "127.0.0.1:0", "--state", str(state), *extra,
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _in_flight(state: Path) -> list[Any]:
    if not (state / FILENAME).exists():
        return []
    store = SqliteHistoryStore(state)
    try:
        return list(store.load().in_flight)
    finally:
        store.close()


def _stop(proc: subprocess.Popen[str]) -> tuple[float, str]:
    """SIGTERM, then the seconds until the process exited and what it logged."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return time.monotonic() - sent, err


def _events(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_sigterm_while_azure_runs_an_operation_exits_quickly_and_the_next_start_resumes(
    emulator: Any, env: dict[str, str], tmp_path: Path
) -> None:
    """An operation Azure keeps running (hours in real life) does not hold the pod past its grace period."""
    seed(emulator)
    source, state = _write_spec(tmp_path / "src"), tmp_path / "state"
    emulator.fault(method="PUT", path=CLUSTER_PATH, stick_operation=36000, count=1)
    proc = _controller(str(source), state, {**env, "CMKCTL_OPERATION_TIMEOUT": "3600"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not [op for op in _in_flight(state) if op.phase == "sent"]:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    [op] = [op for op in _in_flight(state) if op.phase == "sent"]
    assert op.continuation_token, "the resume data is journaled when the operation is sent"

    seconds, err = _stop(proc)

    assert proc.returncode == 0, err
    assert seconds < STOPPED_WITHIN, f"took {seconds:.1f}s to stop"
    assert "Traceback" not in err
    assert [o.op_id for o in _in_flight(state)] == [op.op_id], "the running operation stays journaled"
    assert any("the next start resumes" in str(e.get("message", "")) for e in _events(err)), err
    puts = [r for r in emulator.requests() if r["method"] == "PUT" and r["path"] == CLUSTER_PATH]

    emulator.advance(40000)  # Azure finishes the create while no controller runs
    again = subprocess.run(
        [
            sys.executable, "-m", "controller.cli", "controller", "--source", str(source),
            "--path", "specs", "--state", str(state), "--once",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert _in_flight(state) == []
    resumed = [e for e in _events(again.stderr) if e.get("event") == "step" and e.get("status") == "resumed"]
    assert [e["address"] for e in resumed], again.stderr
    after = [r for r in emulator.requests() if r["method"] == "PUT" and r["path"] == CLUSTER_PATH]
    assert len(after) == len(puts), "the create was resumed, never sent again"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An HTTP address that accepts connections and never answers (a hung git forge)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)  # read nothing, answer nothing
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/estate.git"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


def test_git_command_that_hangs_is_killed_after_its_timeout(silent_server: str, tmp_path: Path) -> None:
    source = GitSource(silent_server, workdir=tmp_path / "work", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(SourceError, match="timed out after 1s"):
        source.fetch()
    assert time.monotonic() - started < 5


def test_sigterm_during_a_hung_git_fetch_exits_quickly(
    silent_server: str, env: dict[str, str], tmp_path: Path
) -> None:
    proc = _controller(silent_server, tmp_path / "state", env)
    deadline = time.monotonic() + 60
    log = tmp_path / "state" / "source"
    while time.monotonic() < deadline and not log.exists():  # the first pass began its clone
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    time.sleep(1.0)

    seconds, err = _stop(proc)

    assert proc.returncode == 0, err
    assert seconds < STOPPED_WITHIN, f"took {seconds:.1f}s to stop"
    assert "Traceback" not in err
    passes = [e for e in _events(err) if e.get("event") == "pass"]
    assert passes and "stopping" in passes[-1]["message"], err


def test_the_charts_grace_period_outlasts_the_controllers_shutdown_bound() -> None:
    """Kubernetes SIGKILLs at terminationGracePeriodSeconds: the controller's own bound must come first."""
    import inspect

    from controller.cli import controller_cmd
    from controller.cli.apply_cmd import parse_duration

    chart = Path(__file__).resolve().parents[2] / "helm" / "cmk-controller" / "values.yaml"
    grace = yaml.safe_load(chart.read_text(encoding="utf-8"))["terminationGracePeriodSeconds"]
    bound = inspect.signature(controller_cmd.run).parameters["shutdown_timeout"].default
    assert parse_duration(bound) + 10 <= grace
