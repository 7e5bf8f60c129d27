"""`cmkctl drift` and `cmkctl controller` as a user runs them: exit codes, output, SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from gitops_repo import CLUSTER_PATH, GitRepo, seed, spec_docs

from controller.cli.app import main


def _write(directory: Path, docs: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "estate.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return directory


def test_drift_exit_codes_and_json(
    emulator: Any, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(emulator)
    spec = _write(tmp_path / "spec", spec_docs(tags={"team": "obs"}))
    state = tmp_path / "state"
    assert main(["apply", "-f", str(spec), "--auto-approve", "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["drift", "-f", str(spec), "--state", str(state)]) == 0
    assert "No drift" in capsys.readouterr().out

    emulator.arm("PATCH", CLUSTER_PATH, {"tags": {"team": "other"}})
    emulator.clear_requests()
    assert main(["drift", "-f", str(spec), "--state", str(state), "--format", "json"]) == 2
    body = json.loads(capsys.readouterr().out)
    assert body["drifted"] == 1
    assert {"field": "tags", "desired": {"team": "obs"}, "live": {"team": "other"}}.items() <= body["drift"][
        0
    ].items()
    assert [r for r in emulator.requests() if r["method"] != "GET"] == []  # drift never writes

    assert main(["drift", "-f", str(spec), "--state", str(state)]) == 2
    assert "tags: spec {team: obs}, live {team: other}" in capsys.readouterr().out  # YAML, not Python


def test_drift_on_a_missing_file_is_one_line_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["drift", "-f", str(tmp_path / "nope.yaml")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "nope.yaml" in err


def test_controller_once_prints_the_status(
    emulator: Any, env: dict[str, str], repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(emulator)
    head = repo.commit_spec(spec_docs(), "cluster")
    code = main(
        [
            "controller",
            "--source",
            repo.url,
            "--path",
            "specs",
            "--once",
            "--state",
            f"local:{tmp_path / 'state'}",
        ]
    )
    status = json.loads(capsys.readouterr().out)
    assert code == 0
    assert status["lastAppliedRevision"] == head


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "soon"], "--interval 'soon' is not a duration"),
        (["--state", "azureblob:https://acct.blob.core.windows.net/c"], "an azureblob state starts with"),
        (["--path", "../x"], "relative path"),
    ],
)
def test_controller_bad_options_are_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "specs").mkdir()
    assert main(["controller", "--source", str(tmp_path), "--once", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_stops_the_controller_cleanly(emulator: Any, env: dict[str, str], tmp_path: Path) -> None:
    seed(emulator)
    spec = _write(tmp_path / "src" / "specs", spec_docs())
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "controller",
            "--source",
            str(spec.parent),
            "--path",
            "specs",
            "--interval",
            "1h",
            "--listen",
            f"127.0.0.1:{port}",
            "--state",
            str(tmp_path / "state"),
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        session = requests.Session()
        session.trust_env = False
        deadline = time.monotonic() + 60
        ready = False
        while time.monotonic() < deadline and not ready:
            with contextlib.suppress(requests.ConnectionError):
                ready = session.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            if not ready:
                time.sleep(0.1)
        assert ready, "controller never became ready"
        status = session.get(f"http://127.0.0.1:{port}/status", timeout=5).json()
        assert status["passes"][0]["result"] == "applied"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert events[0] == "controller.started" and events[-2:] == ["controller.stopping", "controller.stopped"]
    assert "Traceback" not in err


def test_controller_on_a_lost_journal_reports_the_rebuild_and_writes_nothing(
    emulator: Any, env: dict[str, str], repo: GitRepo, tmp_path: Path
) -> None:
    """A controller whose journal is gone (the marker beside it remains): the pass is refused, its status
    says how to rebuild the journal (not "internal error"), and nothing is sent to Azure."""
    seed(emulator)
    repo.commit_spec(spec_docs(), "cluster")
    state = tmp_path / "state"
    state.mkdir()
    (state / "history.sqlite.written").write_text('{"entries": 4}', encoding="utf-8")
    emulator.clear_requests()
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli", "controller", "--source", repo.url, "--path", "specs",
         "--once", "--state", f"local:{state}"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    status = json.loads(done.stdout)
    messages = " ".join(c["message"] for c in status["conditions"])
    assert "the journal is missing or empty" in messages and "cmkctl state rebuild" in messages, status
    assert "internal error" not in messages and "Traceback" not in done.stderr, status
    assert [r for r in emulator.requests() if r["method"] != "GET"] == []
    assert not (state / "history.sqlite").exists()
