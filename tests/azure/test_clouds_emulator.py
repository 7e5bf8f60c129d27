"""Sovereign clouds end to end: plan and apply against an emulator playing each cloud.

Each Azure cloud is a separate Azure with its own host names. The emulator plays one cloud per
instance; the product, told which cloud by `--cloud` (plan) or AZURE_CLOUD (apply), must call only
that cloud's Resource Manager and Key Vault hosts, ask the credential for that cloud's token scopes,
and accept that cloud's vault URIs in the spec.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from azure.core.exceptions import HttpResponseError

from controller.azure import blob_store
from controller.azure.clients import AzureClients
from controller.cli import plan_cmd
from controller.cli.app import main
from controller.model import clouds
from emulator.server import RunningEmulator, start

SUB = "0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a41"
RG = "rg-monitoring"
PROVIDERS = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers"
UAI = f"{PROVIDERS}/Microsoft.ManagedIdentity/userAssignedIdentities/id-cmk"
UAI_PRINCIPAL = "11111111-2222-4333-8444-555555555555"
START = datetime(2026, 11, 30, 6, 0, 0, tzinfo=UTC)
KINDS = ("cluster_create", "cluster_update", "cluster_delete", "link", "unlink", "workspace_create")
ZERO = dict.fromkeys(KINDS, 0.0)


def workspace_id(name: str) -> str:
    return f"{PROVIDERS}/Microsoft.OperationalInsights/workspaces/{name}"


@pytest.fixture(params=list(clouds.NAMES))
def played(request: pytest.FixtureRequest) -> Iterator[tuple[clouds.Cloud, RunningEmulator]]:
    """An emulator playing one cloud, seeded like examples/minimal (vault, key, identity, workspaces)."""
    cloud = clouds.cloud_named(request.param)
    running = start(clock=START, time_scale=0.0, durations=ZERO, cloud=cloud.name)
    estate = {
        "resource_groups": [{"subscription": SUB, "name": RG, "location": "westeurope"}],
        "identities": [{"id": UAI, "principal_id": UAI_PRINCIPAL}],
        "vaults": [
            {
                "name": "kv-cmkdemo01",
                "subscription": SUB,
                "resourceGroup": RG,
                "location": "westeurope",
                "purgeProtection": True,
                "accessPolicies": [{"objectId": UAI_PRINCIPAL, "keys": ["get", "wrapKey", "unwrapKey"]}],
                "keys": [{"name": "cmk-logs", "versions": [{"version": "0" * 31 + "1"}]}],
            },
            {
                "name": "hsm-cmk01",
                "subscription": SUB,
                "resourceGroup": RG,
                "location": "westeurope",
                "managedHsm": True,
                "keys": [{"name": "cmk-hsm", "versions": [{"version": "0" * 31 + "2"}]}],
            },
        ],
        "workspaces": [
            {"subscription": SUB, "resource_group": RG, "name": w, "location": "westeurope"}
            for w in ("law-app1", "law-app2")
        ],
    }
    answer = requests.post(f"{running.url}/_emulator/seed", json=estate, verify=running.ca_file, timeout=30)
    answer.raise_for_status()
    yield cloud, running
    running.stop()


def write_spec(directory: Path, cloud: clouds.Cloud) -> Path:
    """examples/minimal, with the key in this cloud's Key Vault (and a user-assigned identity, so the
    key is set at creation, rule C5)."""
    directory.mkdir(parents=True, exist_ok=True)
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "cmk.azure.io/v1",
            "kind": "Cluster",
            "metadata": {"name": "cmkdemo01"},
            "spec": {
                "subscription": SUB,
                "resourceGroup": RG,
                "location": "westeurope",
                "identity": {"type": "UserAssigned", "userAssignedIdentity": UAI, "keyAccessGranted": True},
                "capacity": 1000,
                "key": {"vaultUri": f"https://kv-cmkdemo01.{cloud.vault_suffix}/", "name": "cmk-logs"},
            },
        },
        {
            "apiVersion": "cmk.azure.io/v1",
            "kind": "WorkspaceSet",
            "metadata": {"name": "demo-workspaces"},
            "spec": {
                "cluster": "cmkdemo01",
                "workspaces": [workspace_id("law-app1"), workspace_id("law-app2")],
            },
        },
    ]
    path = directory / "cluster.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


def emulated(running: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in running.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(clouds.ENV_VAR, raising=False)


def hosts(running: RunningEmulator) -> set[str]:
    log = requests.get(f"{running.url}/_emulator/requests", verify=running.ca_file, timeout=30).json()
    return {r["host"] for r in log["requests"]}


def test_plan_and_apply_in_each_cloud(
    played: tuple[clouds.Cloud, RunningEmulator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Scenario: the same spec, with the key in that cloud's vault, is planned with `--cloud NAME` and
    applied with AZURE_CLOUD=NAME; only that cloud's hosts are called, and Azure ends with the cluster
    on the key and both workspaces linked. A second plan has nothing to do."""
    cloud, running = played
    emulated(running, monkeypatch)
    spec, state = write_spec(tmp_path / "spec", cloud), str(tmp_path / "state")

    code = main(["plan", "-f", str(spec), "--cloud", cloud.name, "--state", state, "--detailed-exitcode"])
    out = capsys.readouterr()
    assert code == 2, out.err
    assert "cmkdemo01" in out.out and "Traceback" not in out.err

    monkeypatch.setenv(clouds.ENV_VAR, cloud.name)
    code = main(["apply", "-f", str(spec), "--auto-approve", "--state", state])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err

    assert hosts(running) == {cloud.arm_host, f"kv-cmkdemo01.{cloud.vault_suffix}"}
    em = running.state
    [cluster] = em.clusters.values()
    assert cluster.key is not None
    assert cluster.key["keyVaultUri"].rstrip("/") == f"https://kv-cmkdemo01.{cloud.vault_suffix}"
    assert {w.name for w in em.workspaces.values() if w.cluster} == {"law-app1", "law-app2"}

    monkeypatch.delenv(clouds.ENV_VAR)
    clients = AzureClients(cloud=cloud)
    try:
        assert plan_cmd.run([str(spec)], state=state, clients=clients, detailed_exitcode=True) == 0
        # what a real credential would be asked for: this cloud's Resource Manager and Key Vault
        assert clients.credential().scopes == {cloud.arm_scope, cloud.vault_scope()}
    finally:
        clients.close()


def test_managed_hsm_host_of_each_cloud(
    played: tuple[clouds.Cloud, RunningEmulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator answers on the cloud's Managed HSM host, and the key client asks for that cloud's
    Managed HSM token scope (taken from the HSM's 401 challenge, checked against its domain)."""
    cloud, running = played
    emulated(running, monkeypatch)
    clients = AzureClients(cloud=cloud)
    try:
        key = clients.keys(f"https://hsm-cmk01.{cloud.hsm_suffix}/").get_key("cmk-hsm")
        assert key.id == f"https://hsm-cmk01.{cloud.hsm_suffix}/keys/cmk-hsm/{'0' * 31}2"
        assert clients.credential().scopes == {cloud.vault_scope(managed_hsm=True)}
    finally:
        clients.close()


def test_another_clouds_hosts_are_not_served(played: tuple[clouds.Cloud, RunningEmulator]) -> None:
    """One emulator plays one Azure: public Azure's Resource Manager is not there in US Government."""
    cloud, running = played
    others = [c for c in clouds.CLOUDS if c != cloud]
    session = requests.Session()
    for other in others:
        answer = session.get(
            f"{running.url}/subscriptions/{SUB}/resourceGroups?api-version=2021-04-01",
            headers={"Host": other.arm_host, "Authorization": "Bearer x"},
            verify=running.ca_file,
            timeout=30,
        )
        assert answer.status_code == 404 and "HostNotFound" in answer.text


def test_blob_state_is_an_account_of_the_selected_cloud(
    played: tuple[clouds.Cloud, RunningEmulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--state azureblob://ACCOUNT/CONTAINER` names a storage account of the selected cloud, and the
    credential is asked for a storage audience that cloud accepts (the default one is public Azure's)."""
    cloud, running = played
    emulated(running, monkeypatch)
    where = blob_store.parse_state_url("azureblob://stcmkstate/journal", cloud)
    assert where.account_url == f"https://stcmkstate.blob.{cloud.storage_suffix}"

    clients = AzureClients(cloud=cloud)
    try:
        container = blob_store.container_client(clients, where.account_url, where.container)
        with pytest.raises(HttpResponseError):  # the emulator plays no storage: the token is asked first
            container.get_container_properties()
        audience = "https://storage.azure.com" if cloud == clouds.DEFAULT else where.account_url
        assert clients.credential().scopes == {f"{audience}/.default"}
    finally:
        clients.close()
