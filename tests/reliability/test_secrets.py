"""Secrets: a sentinel Azure token from the credential and a git credential in the source URL
never appear in logs (DEBUG included), printed output, plan files, the SQLite journal, the state
directory or the controller's /status."""

from __future__ import annotations

import base64
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from reliability_support import apply, estate_for, record, write_spec

from controller.azure.clients import AzureClients
from controller.service.snapshot import snapshot

ARM_SENTINEL = "SENTINEL-ARM-TOKEN-5b0c9e"  # a marker to search for, not a secret
GIT_SENTINEL = "SENTINEL-GIT-PAT-91d2aa"


class SentinelCredential:
    """A credential whose token is the sentinel; counts calls so the test knows it was used."""

    def __init__(self) -> None:
        self.calls = 0

    def get_token(self, *scopes: str, **kw: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.calls += 1
        return AccessToken(ARM_SENTINEL, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, **kw: Any) -> Any:
        from azure.core.credentials import AccessTokenInfo

        self.calls += 1
        return AccessTokenInfo(ARM_SENTINEL, int(time.time()) + 3600)


def _files_containing(root: Path, needle: str) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            hits.append(str(path))
    return hits


def test_azure_token_never_leaves_the_credential(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in {**emulator.env, "CMKCTL_POLLING_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(name, value)
    estate = estate_for("create")
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    cred = SentinelCredential()
    caplog.set_level(logging.DEBUG)  # the SDK's HTTP logging policy included
    clients = AzureClients(credential=cred)
    try:
        store = _store(state)
        plan = snapshot([str(spec)], clients=clients, journal=store.load()).plan
        store.close()
        planfile = tmp_path / "plan.json"
        planfile.write_text(plan.model_dump_json(), encoding="utf-8")
        emulator.fault(method="PUT", path=r"/linkedServices/cluster$", status=500, count=5)  # error paths too
        run = apply(spec, state, clients=clients)
        again = apply(spec, state, clients=clients)
    finally:
        clients.close()
    assert cred.calls > 0, "the sentinel credential was not used"
    assert run.rc in (0, 1) and again.rc == 0, run.text + again.text
    leaks = {
        "output": ARM_SENTINEL in run.text + again.text,
        "logs": ARM_SENTINEL in caplog.text,
        "plan file": ARM_SENTINEL in planfile.read_text(),
        "state dir": bool(_files_containing(state, ARM_SENTINEL)),
        "repr": ARM_SENTINEL in repr(clients.__dict__),
    }
    record("secrets", check="arm-token", places=sorted(leaks), leaks=sum(leaks.values()))
    assert not any(leaks.values()), leaks
    assert "emulator-token" not in caplog.text  # the SDK redacts Authorization; nothing prints a token


def _store(state: Path) -> Any:
    from controller.state.sqlite_store import SqliteHistoryStore

    return SqliteHistoryStore(state)


class _GitServer(BaseHTTPRequestHandler):
    """Asks for Basic auth, then fails: git sends the URL's credential, the controller must hide it."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        if auth:
            _GitServer.seen.append(base64.b64decode(auth.split()[-1]).decode())
            self.send_response(500)
            self.end_headers()
            self.wfile.write(f"server error for {self.path} {auth}".encode())
            return
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def git_server() -> Iterator[int]:
    _GitServer.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_git_credential_never_in_logs_status_or_state(emulator: Any, git_server: int, tmp_path: Path) -> None:
    port = _free_port()
    state = tmp_path / "state"
    source = f"http://cmkbot:{GIT_SENTINEL}@127.0.0.1:{git_server}/estate.git"
    env = {
        **os.environ,
        **emulator.env,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(tmp_path),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "controller",
            "--source",
            source,
            "--state",
            f"local:{state}",
            "--interval",
            "1h",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    status = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/status", timeout=5)
                if r.ok and r.json().get("passes"):
                    status = r.text + requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert status, "the controller never reported a pass on /status\n" + err
    assert any(GIT_SENTINEL in s for s in _GitServer.seen), "git never sent the credential"
    assert "SourceUnavailable" in status  # the failure is reported, just without the secret
    leaks = {
        "stdout": GIT_SENTINEL in out,
        "stderr/logs": GIT_SENTINEL in err,
        "/status+/metrics": GIT_SENTINEL in status,
        "state dir": bool(_files_containing(state, GIT_SENTINEL)),
    }
    record("secrets", check="git-credential", places=sorted(leaks), leaks=sum(leaks.values()))
    assert not any(leaks.values()), leaks
    assert "Traceback" not in err
