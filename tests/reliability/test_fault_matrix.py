"""Fault matrix: every step kind x every fault the emulator can inject.

A cell passes when apply either converges in that run, or stops that branch with a clear one-line
error (never a traceback) and converges on a later run once the fault is gone (a stuck operation is
let finish by moving the emulator's clock). In every cell: zero harm events (W4 dropped data, K1
revocation, B2 saved searches), no guarded write, the journal has nothing left in flight, link and
unlink operations that reached Azure are journaled exactly once (rule W3) and never more than the
spec needs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_support import (
    BYOS_PATH,
    CLUSTER_PATH,
    KEY_PATH,
    LINK_PATH,
    apply,
    converged,
    estate_for,
    guard_violations,
    journal_in_flight,
    journal_link_ops,
    link_ops_in_azure,
    record,
    write_spec,
)

RETRIES = 3  # CMKCTL_AZURE_RETRY_TOTAL under the emulator: faults beyond it reach our own retry

# step kind -> (method, path regex) of the request the fault hits
TARGETS: dict[str, tuple[str, str]] = {
    "create": ("PUT", CLUSTER_PATH),
    "capacity": ("PATCH", CLUSTER_PATH),
    "set_key": ("PATCH", CLUSTER_PATH),
    "link": ("PUT", LINK_PATH),
    "unlink": ("DELETE", LINK_PATH),
    "byos": ("PUT", BYOS_PATH),
    "key_read": ("GET", KEY_PATH),
}
ASYNC = {"create", "set_key", "link", "unlink"}  # rules C6/W5 (capacity updates: sync)

# fault name -> emulator fault spec (method/path added per cell)
FAULTS: dict[str, dict[str, Any]] = {
    "429-retry-after": {"status": 429, "retry_after": 1, "count": 2, "code": "TooManyRequests"},
    "500": {"status": 500, "count": RETRIES + 2},
    "503": {"status": 503, "count": RETRIES + 2, "code": "ServiceUnavailable"},
    "conn-reset": {"reset": True, "count": 2},
    "read-timeout": {"delay": 2.5, "count": 1},
    "op-failed": {"fail_operation": True, "count": 1},
    "op-stuck": {"stick_operation": 3600, "count": 1},
    "kv-403": {"status": 403, "code": "Forbidden", "message": "Access denied (injected)."},
    "kv-500": {"status": 500, "count": RETRIES + 2},
}


def _cells() -> list[tuple[str, str]]:
    cells = []
    for kind in TARGETS:
        for fault in FAULTS:
            if fault.startswith("op-") and kind not in ASYNC:
                continue  # BYOS links and key reads are synchronous: no operation to fail or stick
            if fault.startswith("kv-") and kind not in ("key_read", "set_key"):
                continue
            cells.append((kind, fault))
    return cells


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    values = {
        **emulator.env,
        "CMKCTL_RETRY_BACKOFF": "0.01",
        "CMKCTL_POLLING_INTERVAL": "0.05",
        "CMKCTL_AZURE_TIMEOUT": "1",  # the read-timeout cells delay 2.5 s
        "CMKCTL_OPERATION_TIMEOUT": "2",  # an operation stuck past this stops the branch
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield


@pytest.mark.parametrize(("kind", "fault"), _cells(), ids=[f"{k}-{f}" for k, f in _cells()])
def test_fault_cell(emulator: Any, env: None, tmp_path: Path, kind: str, fault: str) -> None:
    estate = estate_for(kind)
    emulator.seed(estate.seed)
    spec, state = write_spec(tmp_path / "spec", estate), tmp_path / "state"
    method, path = TARGETS[kind]
    if fault.startswith("kv-"):
        method, path = "GET", KEY_PATH  # Key Vault answers the key reads (observe, rule C7 checks)
    emulator.fault(method=method, path=path, **FAULTS[fault])
    started = time.monotonic()

    runs = [apply(spec, state)]
    first = runs[0]
    assert "Traceback" not in first.text, first.text
    if first.rc != 0:
        # a clean stop: one "error:" line that names the resource or the Azure error
        assert "error:" in first.text, first.text
    if fault == "op-stuck":
        # stopped waiting, not failed: the operation stays journaled as sent, to be resumed, not re-sent
        assert first.rc == 3 and "still running" in first.text, first.text
        assert [o.phase for o in journal_in_flight(state)] == ["sent"]
    if fault == "read-timeout":
        # the client gave up after CMKCTL_AZURE_TIMEOUT, Azure still acts on the request: let it land
        # in this cell, not in the next one's world
        time.sleep(max(0.0, started + FAULTS[fault]["delay"] + 0.5 - time.monotonic()))
    emulator.clear_faults()
    emulator.advance(3700)  # a stuck operation finishes while nobody watches
    while not converged(runs[-1]) and len(runs) < 4:
        emulator.clear_requests()
        runs.append(apply(spec, state))
        assert "Traceback" not in runs[-1].text, runs[-1].text
    if converged(runs[-1]):
        outcome = "converged" if first.rc == 0 else "stopped cleanly, converged on re-run"
    else:
        # the branch stays stopped (e.g. a cluster left Failed by Azure): each re-run must say why, in a
        # line that names the rule, and send nothing
        last = runs[-1]
        assert first.rc != 0 and "error:" in first.text, first.text
        assert "[C6]" in last.text or "rule C6" in last.text, last.text
        assert [r for r in emulator.requests() if r["method"] != "GET"] == [], last.text
        outcome = "stopped cleanly"
    reqs = emulator.requests()
    assert guard_violations(emulator, reqs) == []
    assert journal_in_flight(state) == ()
    for ws in ("law1", "law2"):
        in_azure = link_ops_in_azure(emulator, ws)
        assert journal_link_ops(state, ws) == in_azure, ws  # rule W3: counted once
    failed_ops = 1 if fault == "op-failed" and kind in ("link", "unlink") else 0  # Azure ran it and it failed
    assert sum(link_ops_in_azure(emulator, w) for w in ("law1", "law2")) <= estate.links_needed + failed_ops
    creates = [r for r in reqs if r["method"] == "PUT" and r["status"] in (200, 201, 202)]
    assert len([r for r in creates if r["path"].lower().endswith("/clusters/relcluster01")]) <= 1
    record(
        "fault",
        cell=f"{kind}/{fault}",
        outcome=outcome,
        runs=len(runs),
        first_rc=first.rc,
        seconds=round(time.monotonic() - started, 2),
        harm_events=len(emulator.events()),
    )
