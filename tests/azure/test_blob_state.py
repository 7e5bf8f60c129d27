"""`--state azureblob://...`: cmkctl apply/plan keep their journal and writer lock in a blob (Azurite here),
so CI runners and controllers on different machines share one W3 budget and one writer at a time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azurite import KEY, Azurite, AzuriteUnavailable

from controller.azure.blob_store import BlobLease, container_client, open_state, parse_state_url
from controller.azure.clients import AzureClients
from controller.cli import apply_cmd, plan_cmd
from controller.errors import CmkError
from controller.model.history import InFlightOperation
from controller.service.state import parse_state

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "execution"))
from estate import CLUSTER, seed_estate, write_spec  # noqa: E402


def test_state_urls_name_account_container_and_blob() -> None:
    real = parse_state_url("azureblob://stcmkstate/cmkctl/prod/history.json")
    assert real.account_url == "https://stcmkstate.blob.core.windows.net"
    assert (real.container, real.blob) == ("cmkctl", "prod/history.json")
    assert real.lock_blob == "prod/history.json.lock"
    gov = parse_state_url("azureblob://st1.blob.core.usgovcloudapi.net/journal")
    assert gov.account_url == "https://st1.blob.core.usgovcloudapi.net" and gov.blob == "cmkctl/history.json"
    local = parse_state_url("azureblob://127.0.0.1:10000/devstoreaccount1/journal/a.json")
    assert local.account_url == "http://127.0.0.1:10000/devstoreaccount1"
    assert local.account_name == "devstoreaccount1"
    for bad in ("azureblob://onlyaccount", "azureblob://acct/Bad_Container", "azureblob://127.0.0.1:1/acct"):
        with pytest.raises(CmkError, match="--state"):
            parse_state_url(bad)


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    try:
        server = Azurite()
    except AzuriteUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def state_url(azurite: Azurite, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh container per test; the product reaches Azure (emulator) and the blob (Azurite) by env."""
    for name, value in {**emulator.env, "CMKCTL_RETRY_BACKOFF": "0.01", "AZURE_STORAGE_KEY": KEY}.items():
        monkeypatch.setenv(name, value)
    return f"azureblob://127.0.0.1:{azurite.port}/devstoreaccount1/s{uuid.uuid4().hex[:12]}/prod/history.json"


def _apply(spec: Path, state: str, lock_timeout: float = 0.0) -> int:
    clients = AzureClients()
    try:
        return apply_cmd.run(
            None, [str(spec)], auto_approve=True, state=state, lock_timeout=lock_timeout, clients=clients
        )
    finally:
        clients.close()


def test_apply_journals_in_the_blob_and_plan_reads_it(
    emulator: Any, state_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: an apply on the azureblob backend links two workspaces; the link operations (rule W3
    budget) are in the blob, where `cmkctl plan --state` on another machine finds them."""
    seed_estate(emulator)
    spec = write_spec(tmp_path / "spec")
    assert _apply(spec, state_url) == 0, capsys.readouterr()
    history = parse_state(state_url).read_history()
    assert sorted(op.kind for op in history.link_operations) == ["link", "link"]
    assert history.in_flight == ()
    assert plan_cmd.run([str(spec)], state=state_url, detailed_exitcode=True) == 0


def test_the_blob_journal_keeps_the_sent_operation_handle(state_url: str) -> None:
    """Scenario: the executor journals an LRO's continuation token before waiting; after a crash the
    next apply reads it back from the blob and resumes instead of re-sending (phase 'sent')."""
    lock, make_store = open_state(state_url, command="cmkctl apply test")
    lock.acquire(timeout=0)
    try:
        store = make_store()
        store.begin_operation(InFlightOperation("op1", "link", "/ws/1", None, datetime.now(UTC)))
        store.record_operation_sent("op1", status_url="https://status/1", continuation_token="tok-1")
        (op,) = make_store().load().in_flight
        assert (op.phase, op.continuation_token, op.status_url) == ("sent", "tok-1", "https://status/1")
        store.end_operation("op1", "done")
        assert make_store().load().in_flight == ()
    finally:
        lock.release()


def test_second_apply_on_the_same_blob_waits_then_names_the_holder(
    emulator: Any, azurite: Azurite, state_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: two runners apply on the same azureblob state at once. The first holds the blob lease
    (stuck on a long cluster create); the second waits --lock-timeout, exits 1 naming the first (command
    and pid), and sends nothing to Azure."""
    seed_estate(emulator)
    spec = write_spec(tmp_path / "spec")
    emulator.fault(method="PUT", path=f"/clusters/{CLUSTER}$", stick_operation=3600, count=1)
    first = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "apply", "-f", str(spec), "--auto-approve",
         "--state", state_url],
        env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    where = parse_state_url(state_url)
    clients = AzureClients(env={})
    try:
        lease = BlobLease(
            container_client(clients, where.account_url, where.container,
                             {"account_name": where.account_name, "account_key": KEY}),
            "observer", blob_name=where.lock_blob,
        )
        deadline = time.monotonic() + 30
        while not any(r["method"] == "PUT" and CLUSTER in r["path"] for r in emulator.requests()):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first apply never sent its create"
            time.sleep(0.1)
        assert f"pid {first.pid}" in (lease.current_holder() or "")
        writes = len([r for r in emulator.requests() if r["method"] != "GET"])
        started = time.monotonic()
        assert _apply(spec, state_url, lock_timeout=1.0) == 1
        assert time.monotonic() - started >= 1.0
        err = capsys.readouterr().err
        assert f"pid {first.pid}" in err and "cmkctl apply" in err
        assert len([r for r in emulator.requests() if r["method"] != "GET"]) == writes
        assert first.poll() is None  # the holder is still at work
    finally:
        first.kill()
        first.communicate(timeout=30)
        clients.close()


def test_unreachable_state_account_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: the storage account of --state cannot be reached: apply stops before touching Azure,
    with one line that says which container and why, and never prints the account key."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AZURE_STORAGE_KEY", KEY)
    monkeypatch.setenv("CMKCTL_AZURE_RETRY_TOTAL", "0")
    spec = write_spec(tmp_path / "spec")
    url = f"azureblob://127.0.0.1:{port}/devstoreaccount1/journal"
    assert apply_cmd.run(None, [str(spec)], auto_approve=True, state=url) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "journal" in err and "could not reach" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert KEY not in captured.out + captured.err


def _cmkctl(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it; the environment (emulator, AZURE_STORAGE_KEY) is the test's."""
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        env={**os.environ, "NO_COLOR": "1"}, capture_output=True, text=True, timeout=180, check=False,
    )


@pytest.mark.parametrize("damage", ["deleted", "emptied"])
def test_lost_journal_blob_is_refused_and_rebuilt_from_azure(
    emulator: Any, state_url: str, tmp_path: Path, damage: str
) -> None:
    """Scenario: the journal blob an apply wrote is deleted or emptied. The container's metadata still
    marks it, so plan and apply refuse (naming `cmkctl state rebuild`) instead of starting empty and
    losing the W3 link history; the rebuild reads that history back from the Activity Log."""
    seed_estate(emulator)
    spec = write_spec(tmp_path / "spec")
    assert _cmkctl("apply", "-f", str(spec), "--auto-approve", "--state", state_url).returncode == 0
    where = parse_state_url(state_url)
    clients = AzureClients(env={})
    try:
        container = container_client(clients, where.account_url, where.container,
                                     {"account_name": where.account_name, "account_key": KEY})
        marked = container.get_container_properties().metadata
        assert any(k.startswith("cmkctljournal") for k in marked), marked
        journal = container.get_blob_client(where.blob)
        if damage == "deleted":
            journal.delete_blob()
        else:
            journal.upload_blob(b"", overwrite=True)
        emulator.clear_requests()

        for argv in (["plan"], ["apply", "--auto-approve"]):
            run = _cmkctl(*argv, "-f", str(spec), "--state", state_url)
            text = run.stdout + run.stderr
            assert run.returncode == 1, text
            assert "Traceback" not in text and "internal error" not in text, text
            assert f"the journal blob {where.blob} in container {where.container} is" in text, text
            assert f"cmkctl state rebuild -f SPEC --state {state_url}" in text, text
        assert [r for r in emulator.requests() if r["method"] != "GET"] == []

        rebuilt = _cmkctl("state", "rebuild", "-f", str(spec), "--state", state_url)
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        assert "2 link/unlink operation(s) (rule W3)" in rebuilt.stdout, rebuilt.stdout
        assert "not known: which operations were running" in rebuilt.stdout, rebuilt.stdout
        history = parse_state(state_url).read_history()
        assert sorted((op.kind, op.source) for op in history.link_operations) == [("link", "activityLog")] * 2
        again = _cmkctl("apply", "-f", str(spec), "--auto-approve", "--state", state_url)
        assert again.returncode == 0 and "Azure matches the spec" in again.stdout, again.stdout + again.stderr
        whole = _cmkctl("state", "rebuild", "-f", str(spec), "--state", state_url)
        assert whole.returncode == 1 and f"the journal blob {where.blob} is whole" in whole.stderr
    finally:
        clients.close()
