"""`cmkctl emulator` for a new user: seed what a spec assumes (`--seed-from-spec`), short operations
(`--fast`), key access for a new cluster identity (`grant`, rule C7), and no server left behind.

Every command runs as the real CLI in a subprocess; the emulator is the one `cmkctl emulator` starts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

SUB = "5a3c1d2e-0f4b-4c6d-9e8f-112233445566"
RG = "rg-try"
UAI = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity"
    "/userAssignedIdentities/id-cmk"
)
STORAGE = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/sttryquery"
VAULT = "https://kvtryhand.vault.azure.net/"
HSM = "https://hsmtryhand.managedhsm.azure.net/"


def workspace(name: str) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/workspaces/{name}"
    )


def _cluster(name: str, identity: dict[str, Any], vault: str) -> dict[str, Any]:
    return {
        "apiVersion": "cmk.azure.io/v1",
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {
            "subscription": SUB,
            "resourceGroup": RG,
            "location": "westeurope",
            "identity": identity,
            "capacity": 1000,
            "key": {"vaultUri": vault, "name": "cmk"},
        },
    }


def _workspaces(name: str, cluster: str, items: list[Any]) -> dict[str, Any]:
    return {
        "apiVersion": "cmk.azure.io/v1",
        "kind": "WorkspaceSet",
        "metadata": {"name": name},
        "spec": {"cluster": cluster, "workspaces": items},
    }


def write_spec(directory: Path) -> Path:
    """A SystemAssigned cluster on a Managed HSM key, a UserAssigned one on a vault key granted up
    front, three workspaces, one with a BYOS account."""
    docs = [
        _cluster("hsmsys01", {"type": "SystemAssigned"}, HSM),
        _cluster(
            "vaultuai01",
            {"type": "UserAssigned", "userAssignedIdentity": UAI, "keyAccessGranted": True},
            VAULT,
        ),
        _workspaces("hsm-apps", "hsmsys01", [workspace("law-hsm1")]),
        _workspaces(
            "vault-apps",
            "vaultuai01",
            [
                workspace("law-kv1"),
                {"id": workspace("law-kv2"), "byos": {"query": STORAGE, "allowSavedSearchLoss": True}},
            ],
        ),
    ]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Started:
    process: subprocess.Popen[str]
    env: dict[str, str]
    port: int

    def admin(self, method: str, what: str) -> Any:
        resp = requests.request(
            method,
            f"{self.env['CMKCTL_EMULATOR']}/_emulator/{what}",
            verify=self.env["CMKCTL_CA_BUNDLE"],
            timeout=30,
        )
        resp.raise_for_status()
        return resp.json()


def start_emulator(*args: str, env_file: Path) -> Started:
    """`cmkctl emulator ARGS --env-file F` in the background; returns once F exists (seeded)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "emulator", *args, "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 90
    while not env_file.exists():
        if process.poll() is not None:
            raise AssertionError(f"cmkctl emulator exited {process.returncode}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("cmkctl emulator did not write its env file")
        time.sleep(0.1)
    env = {}
    for line in env_file.read_text(encoding="utf-8").splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value
    port = int(env["CMKCTL_EMULATOR"].rsplit(":", 1)[1])
    return Started(process, env, port)


def stop(started: Started) -> None:
    if started.process.poll() is None:
        started.process.send_signal(signal.SIGTERM)
        try:
            started.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            started.process.kill()
            started.process.wait()


def cmkctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Started, Path, dict[str, str]]]:
    spec = write_spec(tmp_path / "spec")
    started = start_emulator("--seed-from-spec", str(spec), "--fast", env_file=tmp_path / "emu.env")
    try:
        yield started, spec, {**started.env, "CMKCTL_STATE": str(tmp_path / "state"), "NO_COLOR": "1"}
    finally:
        stop(started)


def test_seed_from_spec_fast_and_grant_converge(seeded: tuple[Started, Path, dict[str, str]]) -> None:
    """Rule C7 by hand: the seeded estate lets the UserAssigned cluster take its key at once; the
    SystemAssigned one on the Managed HSM is refused its key until `cmkctl emulator grant` gives its
    new principal the HSM role, then a second apply converges and the plan is empty."""
    started, spec, env = seeded
    config = started.admin("GET", "config")
    assert config["durations"]["cluster_create"] <= 10, "--fast makes a cluster create take seconds"
    assert env["CMKCTL_POLLING_INTERVAL"]

    first = cmkctl(env, "apply", "-f", str(spec), "--auto-approve")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "(rule C7)" in first.stdout + first.stderr
    assert "hsmsys01" in first.stdout + first.stderr

    granted = cmkctl(env, "emulator", "grant", "-f", str(spec), "--cluster", "hsmsys01")
    assert granted.returncode == 0, granted.stderr
    assert "Managed HSM Crypto Service Encryption User" in granted.stdout
    assert "hsmtryhand" in granted.stdout

    second = cmkctl(env, "apply", "-f", str(spec), "--auto-approve")
    assert second.returncode == 0, second.stdout + second.stderr
    plan = cmkctl(env, "plan", "-f", str(spec), "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert started.admin("GET", "events")["events"] == []


def test_grant_principal_adds_an_access_policy(seeded: tuple[Started, Path, dict[str, str]]) -> None:
    """`grant --principal --vault` is `az keyvault set-policy`: the vault's access policies (read back
    through Resource Manager) give that object id get, wrapKey and unwrapKey (rule C7)."""
    _, _, env = seeded
    principal = "0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a"
    out = cmkctl(
        env, "emulator", "grant", "--principal", principal, "--vault", "kvtryhand", "--subscription", SUB
    )
    assert out.returncode == 0, out.stderr
    assert "az keyvault set-policy -n kvtryhand" in out.stdout
    session = requests.Session()
    session.trust_env = False
    resp = session.get(
        f"{env['CMKCTL_EMULATOR']}/subscriptions/{SUB}/resourceGroups/rg-keys/providers/Microsoft.KeyVault"
        "/vaults/kvtryhand?api-version=2023-07-01",
        headers={"Host": "management.azure.com", "Authorization": "Bearer any"},
        verify=env["CMKCTL_CA_BUNDLE"],
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    policies = {p["objectId"]: p["permissions"]["keys"] for p in resp.json()["properties"]["accessPolicies"]}
    assert {k.lower() for k in policies[principal]} == {"get", "wrapkey", "unwrapkey"}


def test_grant_refuses_clearly(seeded: tuple[Started, Path, dict[str, str]], tmp_path: Path) -> None:
    """A cluster that does not exist yet, or no emulator in the environment: one error line, exit 1."""
    _, spec, env = seeded
    missing = cmkctl(env, "emulator", "grant", "-f", str(spec), "--cluster", "hsmsys01")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no cluster hsmsys01"), missing.stderr
    assert "Traceback" not in missing.stderr
    bare = {k: v for k, v in os.environ.items() if not k.startswith("CMKCTL_")}
    no_emulator = subprocess.run(
        [sys.executable, "-m", "controller.cli", "emulator", "grant", "--principal", "x", "--vault", "kv"],
        env=bare,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert no_emulator.returncode == 1
    assert "CMKCTL_EMULATOR is not set" in no_emulator.stderr


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_wrapper_stops_the_server(tmp_path: Path, sig: signal.Signals) -> None:
    """A signal to `cmkctl emulator` (and only to it, as a service manager sends it) stops the server
    too: the wrapper exits and nothing listens on the port any more."""
    started = start_emulator(env_file=tmp_path / "emu.env")
    try:
        assert _listening(started.port)
        started.process.send_signal(sig)
        started.process.wait(timeout=20)
        deadline = time.monotonic() + 10
        while _listening(started.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _listening(started.port), "the emulator outlived cmkctl emulator"
    finally:
        stop(started)
