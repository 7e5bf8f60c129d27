"""Rule C7 on a Managed HSM through `cmkctl plan` / `apply` against the emulator: plan reads the
principal's role assignments on the HSM (its local RBAC, through azure-keyvault-administration) and
blocks what apply would hit, with the `az keyvault role assignment create` command to run; once the
role is granted, the plan is clean and apply sets the key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

SUB = "00000000-0000-0000-0000-000000000001"
RG = "rg-hsm"
UAI = (f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity"
       "/userAssignedIdentities/id-hsm")
UAI_PRINCIPAL = "5a5a5a5a-1111-4222-8333-444444444444"
SYSTEM_PRINCIPAL = "6b6b6b6b-1111-4222-8333-444444444444"
HSM = "https://hsmcmktest.managedhsm.azure.net/"
ROLE = "Managed HSM Crypto Service Encryption User"


def _cmkctl(env: dict[str, str], state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args, "--state", str(state)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False,
    )


def _seed(emulator: Any, *, existing_system_assigned: bool = False) -> None:
    emulator.seed({
        "resource_groups": [{"subscription": SUB, "name": RG, "location": "westeurope"}],
        "identities": [{"id": UAI, "principal_id": UAI_PRINCIPAL}],
        "vaults": [{"name": "hsmcmktest", "managedHsm": True, "location": "westeurope",
                    "purgeProtection": True, "keys": [{"name": "cmk", "kty": "RSA-HSM"}]}],
        "clusters": [{"subscription": SUB, "resource_group": RG, "name": "hsmc01", "location": "westeurope",
                      "identity": "SystemAssigned", "principal_id": SYSTEM_PRINCIPAL}]
        if existing_system_assigned else [],
    })


def _spec(directory: Path, identity: dict[str, Any]) -> Path:
    doc = {"apiVersion": "cmk.azure.io/v1", "kind": "Cluster", "metadata": {"name": "hsmc01"},
           "spec": {"subscription": SUB, "resourceGroup": RG, "location": "westeurope", "capacity": 1000,
                    "identity": identity, "key": {"vaultUri": HSM, "name": "cmk"}}}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _command(principal: str) -> str:
    return (f'az keyvault role assignment create --hsm-name hsmcmktest --role "{ROLE}" '
            f"--assignee-object-id {principal} --scope /keys/cmk")


def _grant(emulator: Any, principal: str) -> None:
    emulator.admin("POST", "role-assignments", {"vault": HSM, "principal_id": principal, "role": ROLE,
                                                 "scope": "/keys/cmk"})


def test_a_user_assigned_identity_without_the_hsm_role_is_blocked_until_granted(
    emulator: Any, tmp_path: Path
) -> None:
    _seed(emulator)
    spec, state = _spec(tmp_path / "spec", {"type": "UserAssigned", "userAssignedIdentity": UAI,
                                            "keyAccessGranted": True}), tmp_path / "state"
    blocked = _cmkctl(emulator.env, state, "plan", "-f", str(spec), "--detailed-exitcode", "--format", "json")
    assert blocked.returncode == 3, blocked.stdout + blocked.stderr
    (item,) = json.loads(blocked.stdout)["blocked"]
    assert item["rule"] == "C7" and item["address"] == "cluster.hsmc01"
    assert _command(UAI_PRINCIPAL) in item["remedy"]
    reads = [r for r in emulator.requests() if "roleAssignments" in r["path"]]
    assert reads and all(r["host"] == "hsmcmktest.managedhsm.azure.net" for r in reads)

    _grant(emulator, UAI_PRINCIPAL)
    ready = _cmkctl(emulator.env, state, "plan", "-f", str(spec), "--detailed-exitcode", "--format", "json")
    assert ready.returncode == 2, ready.stdout + ready.stderr
    plan = json.loads(ready.stdout)
    assert plan["blocked"] == []
    (create,) = plan["changes"]
    assert create["action"] == "create" and create["parameters"]["key"]["name"] == "cmk"  # rule C5
    applied = _cmkctl(emulator.env, state, "apply", "-f", str(spec), "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr  # Azure takes the key: plan was right


def test_an_existing_system_assigned_cluster_is_checked_with_its_principal(
    emulator: Any, tmp_path: Path
) -> None:
    """The cluster exists, so its system-assigned principal is known: checked like any other (C7)."""
    _seed(emulator, existing_system_assigned=True)
    spec, state = _spec(tmp_path / "spec", {"type": "SystemAssigned"}), tmp_path / "state"
    blocked = _cmkctl(emulator.env, state, "plan", "-f", str(spec), "--detailed-exitcode")
    assert blocked.returncode == 3, blocked.stdout + blocked.stderr
    assert "set_key" in blocked.stdout and _command(SYSTEM_PRINCIPAL) in blocked.stdout

    _grant(emulator, SYSTEM_PRINCIPAL)
    applied = _cmkctl(emulator.env, state, "apply", "-f", str(spec), "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = _cmkctl(emulator.env, state, "plan", "-f", str(spec), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_new_system_assigned_cluster_keeps_the_warning(emulator: Any, tmp_path: Path) -> None:
    """Its principal exists only once the cluster does: the plan says what it will need, and blocks
    nothing it cannot know."""
    _seed(emulator)
    spec, state = _spec(tmp_path / "spec", {"type": "SystemAssigned"}), tmp_path / "state"
    planned = _cmkctl(emulator.env, state, "plan", "-f", str(spec), "--detailed-exitcode", "--format", "json")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["blocked"] == []
    assert [r for r in emulator.requests() if "roleAssignments" in r["path"]] == []
    (set_key,) = [c for c in plan["changes"] if c["action"] == "set_key"]
    assert any("system-assigned principal (known once it is created)" in w
               and _command("<principal id>") in w for w in set_key["warnings"])
