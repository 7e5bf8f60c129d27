"""UserAssigned → SystemAssigned on a cluster with a customer-managed key, end to end against the
emulator: plan → apply → grant → apply → a plan with nothing left. The documented four steps: clear the
key (rule C13: empty strings, never `{}`), switch the identity, grant the new principal, set the key
again (rules C5, C7); identity and key never change in one call, and no data is revoked on the way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from estate import CLUSTER, RG, SUB, UAI, UAI_PRINCIPAL, VAULT, cluster_id, seed_estate, workspace_id

from controller.azure.clients import AzureClients
from controller.cli import apply_cmd
from controller.cli.app import main


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    values = {**emulator.env, "CMKCTL_RETRY_BACKOFF": "0.01", "CMKCTL_POLLING_INTERVAL": "0.05"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield


def _seed(emulator: Any) -> None:
    """A CMK cluster on a user-assigned identity (granted in the vault) with law1 linked to it."""
    seed_estate(emulator, workspaces=())
    emulator.seed({
        "clusters": [{
            "subscription": SUB, "resource_group": RG, "name": CLUSTER, "location": "westeurope",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}},
            "principal_id": UAI_PRINCIPAL,
            "key": {"keyVaultUri": VAULT, "keyName": "cmk", "keyVersion": ""},
        }],
        "workspaces": [{"subscription": SUB, "resource_group": RG, "name": "law1", "location": "westeurope",
                        "cluster": CLUSTER}],
    })


def _spec(directory: Path) -> Path:
    docs = [
        {"apiVersion": "cmk.azure.io/v1", "kind": "Cluster", "metadata": {"name": CLUSTER},
         "spec": {"subscription": SUB, "resourceGroup": RG, "location": "westeurope",
                  "identity": {"type": "SystemAssigned"}, "capacity": 1000,
                  "key": {"vaultUri": VAULT, "name": "cmk"}}},
        {"apiVersion": "cmk.azure.io/v1", "kind": "WorkspaceSet", "metadata": {"name": "apps"},
         "spec": {"cluster": CLUSTER, "workspaces": [workspace_id("law1")]}},
    ]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


def _plan(spec: Path, state: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["plan", "-f", str(spec), "--format", "json", "--detailed-exitcode", "--state", str(state)])
    out = capsys.readouterr().out
    return code, json.loads(out) if code in (0, 2, 3) else {}


def _apply(spec: Path, state: Path) -> int:
    clients = AzureClients()
    try:
        return apply_cmd.run(None, [str(spec)], auto_approve=True, state=str(state), clients=clients)
    finally:
        clients.close()


def _live(emulator: Any) -> dict[str, Any]:
    return dict(emulator.arm("GET", cluster_id()).json())


def _patches(emulator: Any) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r["method"] == "PATCH" and r["path"].endswith(f"/{CLUSTER}")]


def test_user_assigned_to_system_assigned_runs_end_to_end(
    emulator: Any, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(emulator)
    spec, state = _spec(tmp_path / "spec"), tmp_path / "state"

    code, plan = _plan(spec, state, capsys)
    assert code == 2
    assert [(c["action"], c["parameters"].get("key", "-")) for c in plan["changes"]] == [
        ("set_key", None), ("update", "-")]  # step 1 clears the key, step 2 switches the identity
    assert [(d["action"], d["rule"]) for d in plan["deferred"]] == [("set_key", "C7")]  # step 4 waits

    emulator.clear_requests()
    assert _apply(spec, state) == 0, capsys.readouterr()
    assert len(_patches(emulator)) == 2  # two calls: identity and key never change together
    live = _live(emulator)
    assert live["identity"]["type"] == "SystemAssigned"
    principal = live["identity"]["principalId"]
    assert principal and principal != UAI_PRINCIPAL
    assert live["properties"]["keyVaultProperties"] == {}  # rule C13: the key really went
    assert emulator.events() == []  # the old identity's key was never left on the new identity

    code, plan = _plan(spec, state, capsys)  # step 3 is the user's: the plan says whom to grant
    assert plan["changes"] == [] and plan["complete"] is False
    (blocked,) = plan["blocked"]
    assert blocked["action"] == "set_key" and blocked["rule"] == "C7"
    assert principal in blocked["remedy"]

    emulator.state.vaults.principal_grant(VAULT, principal, ["get", "wrapKey", "unwrapKey"])
    code, plan = _plan(spec, state, capsys)
    assert code == 2 and [c["action"] for c in plan["changes"]] == ["set_key"]  # step 4
    assert _apply(spec, state) == 0, capsys.readouterr()
    kvp = _live(emulator)["properties"]["keyVaultProperties"]
    assert (kvp["keyVaultUri"], kvp["keyName"]) == (VAULT, "cmk")

    code, plan = _plan(spec, state, capsys)  # converged
    assert code == 0 and plan["complete"] is True, plan
    assert plan["changes"] == [] and plan["deferred"] == [] and plan["blocked"] == []
    assert plan["drift"] == []
    link = emulator.arm("GET", workspace_id("law1") + "/linkedServices/cluster").json()
    assert link["properties"]["writeAccessResourceId"].lower() == cluster_id().lower()  # never unlinked
    assert emulator.events() == []


UAI2 = UAI.rsplit("/", 1)[0] + "/id-cmk-2"
UAI2_PRINCIPAL = "22222222-3333-4444-8555-666666666666"


def test_switch_to_another_user_assigned_identity_is_sent_and_converges(
    emulator: Any, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rule C5: a cluster on one user-assigned identity declared on another one ends on that one alone,
    and the next plan is empty (precheck must not take the same identity type for "already done")."""
    seed_estate(emulator, workspaces=())
    emulator.seed({
        "identities": [{"id": UAI2, "principal_id": UAI2_PRINCIPAL}],
        "clusters": [{
            "subscription": SUB, "resource_group": RG, "name": CLUSTER, "location": "westeurope",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}},
            "principal_id": UAI_PRINCIPAL,
        }],
    })
    spec = tmp_path / "spec" / "spec.yaml"
    spec.parent.mkdir()
    spec.write_text(yaml.safe_dump({
        "apiVersion": "cmk.azure.io/v1", "kind": "Cluster", "metadata": {"name": CLUSTER},
        "spec": {"subscription": SUB, "resourceGroup": RG, "location": "westeurope", "capacity": 1000,
                 "identity": {"type": "UserAssigned", "userAssignedIdentity": UAI2}}}), encoding="utf-8")
    state = tmp_path / "state"

    code, plan = _plan(spec, state, capsys)
    assert code == 2 and [c["action"] for c in plan["changes"]] == ["update"]

    emulator.clear_requests()
    assert _apply(spec, state) == 0, capsys.readouterr()
    assert len(_patches(emulator)) == 1  # the switch was sent, not skipped as "already done"
    identity = _live(emulator)["identity"]
    assert identity["type"] == "UserAssigned"
    assert [k.lower() for k in identity["userAssignedIdentities"]] == [UAI2.lower()]  # the old one went

    code, plan = _plan(spec, state, capsys)
    assert code == 0 and plan["changes"] == [] and plan["drift"] == [], plan
