"""Crash-restart: `cmkctl apply` in a subprocess is SIGKILLed at seeded random points while
the emulator (a separate process, real time) runs its create and links; re-runs must converge with no
duplicate cluster create, link operations no more than the spec needs, an empty journal in-flight list
and zero harm events.

Trials run a few at a time against one emulator, each in its own subscription (rule C2 counts
clusters per subscription and region), so the trials fit in about a minute of wall time.
CMKCTL_RELIABILITY_TRIALS sets the count (`make test` runs 12, `make reliability` 50);
CMKCTL_RELIABILITY_SEED the seed.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from reliability_support import env_int, record

from controller.state.sqlite_store import SqliteHistoryStore

TRIALS = env_int("CMKCTL_RELIABILITY_TRIALS", 12)
SEED = env_int("CMKCTL_RELIABILITY_SEED", 8)
CONCURRENT = 4
DURATIONS = {"cluster_create": 1.5, "cluster_update": 0.5, "link": 0.8, "unlink": 0.8, "workspace_create": 0}
WORKSPACES = ("law1", "law2")


@dataclass
class Emu:
    env: dict[str, str]
    url: str
    ca: str

    def admin(self, method: str, what: str, body: Any = None) -> Any:
        r = requests.request(method, f"{self.url}/_emulator/{what}", json=body, verify=self.ca, timeout=30)
        r.raise_for_status()
        return r.json()


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emu]:
    """The emulator as its own process, in real time (time-scale 1) with short operations."""
    work = tmp_path_factory.mktemp("emu")
    env_file = work / "emulator.env"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "--env-file",
            str(env_file),
            "--time-scale",
            "1",
            "--clock",
            "2026-11-30T06:00:00Z",
            "--durations",
            json.dumps(DURATIONS),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not env_file.exists() or "CMKCTL_CA_BUNDLE" not in env_file.read_text():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "emulator did not start"
            time.sleep(0.05)
        env: dict[str, str] = {}
        for line in env_file.read_text().splitlines():
            m = re.match(r"^(?:export\s+)?([A-Z_]+)=['\"]?([^'\"]*)['\"]?$", line.strip())
            if m:
                env[m.group(1)] = m.group(2)
        yield Emu(env, env["CMKCTL_EMULATOR"], env["CMKCTL_CA_BUNDLE"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _sub(trial: int) -> str:
    return f"00000000-0000-4000-8000-{trial + 1:012d}"


def _estate(trial: int, directory: Path) -> tuple[dict[str, Any], Path]:
    """An empty subscription with a granted key; the spec wants a CMK cluster and two links."""
    sub, rg, vault = _sub(trial), "rg-x", f"kvcrash{trial}"
    uai = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity"
    uai += "/userAssignedIdentities/id-crash"
    principal = f"31111111-2222-4333-8444-{trial + 1:012d}"
    seed = {
        "resource_groups": [{"subscription": sub, "name": rg, "location": "westeurope"}],
        "identities": [{"id": uai, "principal_id": principal}],
        "vaults": [
            {
                "name": vault,
                "subscription": sub,
                "resourceGroup": rg,
                "location": "westeurope",
                "softDelete": True,
                "purgeProtection": True,
                "accessPolicies": [{"objectId": principal, "keys": ["get", "wrapKey", "unwrapKey"]}],
                "keys": [{"name": "cmk", "versions": [{"version": "0" * 31 + "1"}]}],
            }
        ],
        "workspaces": [
            {"subscription": sub, "resource_group": rg, "name": w, "location": "westeurope"}
            for w in WORKSPACES
        ],
    }
    ws_ids = [
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{w}"
        for w in WORKSPACES
    ]
    docs = [
        {
            "apiVersion": "cmk.azure.io/v1",
            "kind": "Cluster",
            "metadata": {"name": "crashcluster"},
            "spec": {
                "subscription": sub,
                "resourceGroup": rg,
                "location": "westeurope",
                "identity": {"type": "UserAssigned", "userAssignedIdentity": uai, "keyAccessGranted": True},
                "capacity": 1000,
                "key": {"vaultUri": f"https://{vault}.vault.azure.net/", "name": "cmk"},
            },
        },
        {
            "apiVersion": "cmk.azure.io/v1",
            "kind": "WorkspaceSet",
            "metadata": {"name": "apps"},
            "spec": {"cluster": "crashcluster", "workspaces": ws_ids},
        },
    ]
    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / "spec.yaml"
    spec.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return seed, spec


def _apply_cmd(spec: Path, state: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "controller.cli",
        "apply",
        "-f",
        str(spec),
        "--auto-approve",
        "--state",
        str(state),
    ]


def _child_env(emu: Emu) -> dict[str, str]:
    return {
        **os.environ,
        **emu.env,
        "CMKCTL_POLLING_INTERVAL": "0.1",
        "CMKCTL_RETRY_BACKOFF": "0.05",
        "CMKCTL_BUSY_TIMEOUT": "30",
    }


def _trial(emu: Emu, root: Path, trial: int, kill_after: float) -> dict[str, Any]:
    seed, spec = _estate(trial, root / f"t{trial}")
    emu.admin("POST", "seed", seed)
    state = root / f"t{trial}" / "state"
    proc = subprocess.Popen(
        _apply_cmd(spec, state), env=_child_env(emu), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        proc.wait(timeout=kill_after)
        killed = False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        killed = True
    reruns, outputs = 0, []
    converged = False
    while reruns < 5 and not converged:
        reruns += 1
        done = subprocess.run(
            _apply_cmd(spec, state),
            env=_child_env(emu),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        outputs.append(done.stdout + done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        converged = done.returncode == 0 and "No changes. Azure matches the spec." in done.stdout
    sub = _sub(trial).lower()
    mine = [r for r in emu.admin("GET", "requests")["requests"] if sub in r["path"].lower()]
    creates = [
        r
        for r in mine
        if r["method"] == "PUT" and r["path"].lower().endswith("/clusters/crashcluster") and r["status"] < 300
    ]
    links = [
        r
        for r in mine
        if r["method"] == "PUT"
        and r["path"].lower().endswith("/linkedservices/cluster")
        and r["status"] < 300
    ]
    store = SqliteHistoryStore(state)
    try:
        journal = store.load()
    finally:
        store.close()
    harm = [e for e in emu.admin("GET", "events")["events"] if sub in json.dumps(e).lower()]
    return {
        "trial": trial,
        "kill_after": round(kill_after, 2),
        "killed": killed,
        "reruns": reruns,
        "converged": converged,
        "cluster_creates": len(creates),
        "link_puts": len(links),
        "journal_links": len(journal.link_operations),
        "in_flight": len(journal.in_flight),
        "harm_events": len(harm),
        "last_output": outputs[-1][-2000:] if outputs else "",
    }


@pytest.mark.timeout(900)  # each trial is a real process start, apply and resume
def test_sigkill_at_random_points_always_converges(emu: Emu, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    # calibrate: how long an uninterrupted apply takes here, so kill points spread over all of it
    started = time.monotonic()
    seed, spec = _estate(TRIALS, tmp_path / "timing")
    emu.admin("POST", "seed", seed)
    done = subprocess.run(
        _apply_cmd(spec, tmp_path / "timing" / "state"),
        env=_child_env(emu),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    full = time.monotonic() - started
    kills = [rng.uniform(0.1, 1.0) * full for _ in range(TRIALS)]
    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        results = list(pool.map(lambda a: _trial(emu, tmp_path, *a), enumerate(kills)))
    for r in results:
        record("crash", **{k: v for k, v in r.items() if k != "last_output"})
    bad = [
        r
        for r in results
        if not (
            r["converged"]
            and r["cluster_creates"] <= 1
            and r["link_puts"] <= len(WORKSPACES)
            and r["journal_links"] == r["link_puts"]
            and r["in_flight"] == 0
            and r["harm_events"] == 0
        )
    ]
    assert bad == [], json.dumps(bad, indent=1)
    assert sum(r["killed"] for r in results) >= TRIALS // 2, "most trials must really be killed mid-apply"
    record(
        "crash_summary",
        trials=TRIALS,
        full_apply_seconds=round(full, 2),
        seconds=round(time.monotonic() - started, 1),
    )
