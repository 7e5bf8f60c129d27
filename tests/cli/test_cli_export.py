"""`cmkctl export` adopts an estate built by hand: the files it writes validate, plan to no changes
(`plan --detailed-exitcode` exits 0) and `apply` sends no write to Azure.

The estate is seeded out of band in the emulator (clusters with keys, linked workspaces across two
subscriptions, BYOS accounts); every cmkctl command runs as the real CLI in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

SUB = "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9"
SUB2 = "1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b"
RG = "rg-estate"
VAULT = "kvadopt"
UAI = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity"
    "/userAssignedIdentities/id-adopt"
)
UAI_PRINCIPAL = "2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901"
SYS_PRINCIPAL = "3c4d5e6f-7081-4293-a4b5-c6d7e8f90a12"
PINNED = "a" * 32


def storage(sub: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/{name}"


def _vault(principals: list[str]) -> dict[str, Any]:
    return {
        "name": VAULT,
        "subscription": SUB,
        "resourceGroup": RG,
        "location": "westeurope",
        "softDelete": True,
        "purgeProtection": True,
        "accessPolicies": [{"objectId": p, "keys": ["get", "wrapKey", "unwrapKey"]} for p in principals],
        "keys": [{"name": "cmk-a", "versions": [{}]}, {"name": "cmk-b", "versions": [{"version": PINNED}]}],
    }


def _cluster(name: str, rg: str, identity: Any, key: dict[str, str] | None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "subscription": SUB,
        "resource_group": rg,
        "name": name,
        "location": "westeurope",
        "capacity": 1000,
        "identity": identity,
        "created": "2026-01-05T10:00:00Z",
        **extra,
    }
    if key is not None:
        doc["key"] = {"keyVaultUri": f"https://{VAULT}.vault.azure.net/", **key}
    return doc


def _workspace(sub: str, name: str, cluster: str | None = None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"subscription": sub, "resource_group": RG, "name": name, "location": "westeurope"}
    if cluster:
        doc["cluster"] = (
            f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/clusters/{cluster}"
        )
        doc["linked_at"] = "2026-02-01T08:00:00Z"
    doc.update(extra)
    return doc


def seed_hand_built_estate(emulator: Any) -> None:
    """Two clusters (UserAssigned with a versionless key and tags; SystemAssigned with a pinned key and
    billing by workspaces), a third in another resource group, workspaces linked from two subscriptions,
    BYOS on a linked workspace and on an unlinked one, and a workspace nobody manages."""
    emulator.seed(
        {
            "resource_groups": [
                {"subscription": SUB, "name": RG, "location": "westeurope"},
                {"subscription": SUB, "name": "rg-other", "location": "westeurope"},
                {"subscription": SUB2, "name": RG, "location": "westeurope"},
            ],
            "identities": [{"id": UAI, "principal_id": UAI_PRINCIPAL}],
            "storage_accounts": [
                {"id": storage(SUB, "stquery"), "location": "westeurope"},
                {"id": storage(SUB, "stalerts"), "location": "westeurope"},
                {"id": storage(SUB2, "stquery2"), "location": "westeurope"},
            ],
            "vaults": [_vault([UAI_PRINCIPAL, SYS_PRINCIPAL])],
            "clusters": [
                _cluster(
                    "adopta",
                    RG,
                    {"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}},
                    {"keyName": "cmk-a"},
                    tags={"team": "platform", "cost-center": "42"},
                ),
                _cluster(
                    "adoptb",
                    RG,
                    "SystemAssigned",
                    {"keyName": "cmk-b", "keyVersion": PINNED},
                    principal_id=SYS_PRINCIPAL,
                    billing_type="Workspaces",
                    double_encryption=False,
                ),
                _cluster("adoptc", "rg-other", "SystemAssigned", None),
            ],
            "workspaces": [
                _workspace(SUB, "law-a1", "adopta"),
                _workspace(SUB, "law-a2", "adopta"),
                _workspace(SUB2, "law-a3", "adopta"),
                _workspace(
                    SUB,
                    "law-b1",
                    "adoptb",
                    storage={"Query": [storage(SUB, "stquery")], "Alerts": [storage(SUB, "stalerts")]},
                ),
                _workspace(SUB2, "law-byos", storage={"Query": [storage(SUB2, "stquery2")]}),
                _workspace(SUB, "law-unmanaged"),
            ],
        }
    )


def cmkctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _env(emulator: Any, tmp_path: Path) -> dict[str, str]:
    return {**emulator.env, "CMKCTL_STATE": str(tmp_path / "state"), "NO_COLOR": "1"}


def _writes(emulator: Any) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r["method"] not in ("GET", "HEAD")]


def adopt_and_check(
    emulator: Any,
    env: dict[str, str],
    out: Path,
    *subscriptions: str,
    timings: dict[str, float] | None = None,
) -> None:
    """Export, then: the files validate, plan to nothing (exit 0), and apply writes nothing."""
    clock = timings if timings is not None else {}

    def timed(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = cmkctl(env, *args)
        clock[name] = time.monotonic() - started
        assert done.returncode == 0, f"{name}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        return done

    timed("export", "export", *[a for s in subscriptions for a in ("--subscription", s)], "--out", str(out))
    timed("validate", "validate", str(out))
    timed("plan", "plan", "-f", str(out), "--detailed-exitcode")  # exit 0: nothing to do
    emulator.clear_requests()
    timed("apply", "apply", "-f", str(out), "--auto-approve")
    assert _writes(emulator) == []


def test_export_adopts_a_hand_built_estate(emulator: Any, tmp_path: Path) -> None:
    """One file per cluster with its WorkspaceSet (the schema comment on line 1), a BYOS-only file;
    keys as they are (versionless stays versionless, pinned stays pinned), and nothing to do after."""
    seed_hand_built_estate(emulator)
    env, out = _env(emulator, tmp_path), tmp_path / "adopted"

    adopt_and_check(emulator, env, out, SUB, SUB2)

    names = sorted(p.name for p in out.iterdir())
    assert names == ["adopta.yaml", "adoptb.yaml", "adoptc.yaml", "byos-only.yaml", "cmk-spec.schema.json"]
    for name in names[:-1]:
        first = (out / name).read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=cmk-spec.schema.json"
    a_cluster, a_set = list(yaml.safe_load_all((out / "adopta.yaml").read_text(encoding="utf-8")))
    assert a_cluster["spec"]["key"] == {"vaultUri": f"https://{VAULT}.vault.azure.net/", "name": "cmk-a"}
    assert a_cluster["spec"]["identity"] == {"type": "UserAssigned", "userAssignedIdentity": UAI}
    assert a_cluster["spec"]["tags"] == {"cost-center": "42", "team": "platform"}
    assert sorted(w.rsplit("/", 1)[1] for w in a_set["spec"]["workspaces"]) == ["law-a1", "law-a2", "law-a3"]
    b_cluster, b_set = list(yaml.safe_load_all((out / "adoptb.yaml").read_text(encoding="utf-8")))
    assert b_cluster["spec"]["key"]["version"] == PINNED
    assert b_cluster["spec"]["billingType"] == "Workspaces"
    assert b_set["spec"]["workspaces"][0]["byos"] == {
        "alerts": storage(SUB, "stalerts"),
        "query": storage(SUB, "stquery"),
    }
    [byos_only] = list(yaml.safe_load_all((out / "byos-only.yaml").read_text(encoding="utf-8")))
    assert "cluster" not in byos_only["spec"]
    assert [w["id"].rsplit("/", 1)[1] for w in byos_only["spec"]["workspaces"]] == ["law-byos"]
    everything = "".join(p.read_text(encoding="utf-8") for p in out.glob("*.yaml"))
    assert "law-unmanaged" not in everything


def test_export_one_resource_group_and_refuses_to_overwrite(emulator: Any, tmp_path: Path) -> None:
    """--resource-group keeps the clusters of that group only; a second export into the same directory
    is refused (exit 1, one line) unless --force."""
    seed_hand_built_estate(emulator)
    env, out = _env(emulator, tmp_path), tmp_path / "other"
    exported = cmkctl(env, "export", "--subscription", SUB, "--resource-group", "rg-other", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert sorted(p.name for p in out.glob("*.yaml")) == ["adoptc.yaml"]
    plan = cmkctl(env, "plan", "-f", str(out), "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    again = cmkctl(env, "export", "--subscription", SUB, "--resource-group", "rg-other", "--out", str(out))
    assert again.returncode == 1
    assert again.stderr.startswith("error: would overwrite"), again.stderr
    forced = cmkctl(
        env, "export", "--subscription", SUB, "--resource-group", "rg-other", "--out", str(out), "--force"
    )
    assert forced.returncode == 0, forced.stderr


def test_export_adopts_a_thousand_workspaces(emulator: Any, tmp_path: Path) -> None:
    """A generated estate at the W1 limit (1,000 workspaces linked to one cluster): the export plans to
    no changes and apply writes nothing."""
    workspaces = [_workspace(SUB, f"law-{i:04d}", "adopta") for i in range(1000)]
    emulator.seed(
        {
            "identities": [{"id": UAI, "principal_id": UAI_PRINCIPAL}],
            "vaults": [_vault([UAI_PRINCIPAL])],
            "clusters": [
                _cluster(
                    "adopta",
                    RG,
                    {"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}},
                    {"keyName": "cmk-a"},
                )
            ],
            "workspaces": workspaces,
        }
    )
    env, out = _env(emulator, tmp_path), tmp_path / "fleet"
    timings: dict[str, float] = {}
    started = time.monotonic()
    adopt_and_check(emulator, env, out, SUB, timings=timings)
    elapsed = time.monotonic() - started
    [cluster_file] = out.glob("*.yaml")
    _, ws_set = list(yaml.safe_load_all(cluster_file.read_text(encoding="utf-8")))
    assert len(ws_set["spec"]["workspaces"]) == 1000
    shown = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    print(f"1,000 workspaces adopted in {elapsed:.1f} s: {shown}")


def test_export_adopts_the_fleet_example(emulator: Any, tmp_path: Path) -> None:
    """The estate examples/fleet describes, built out of band: its export plans to nothing and applies
    nothing, in every subscription the example spans."""
    from controller.loading import load
    from tests.integration.fleet_estate import estate_for

    desired = load([Path(__file__).resolve().parents[2] / "examples" / "fleet"])
    emulator.seed(estate_for(desired, applied=True))
    subscriptions = sorted({c.spec.subscription for c in desired.clusters})
    assert len(subscriptions) > 1
    out = tmp_path / "fleet"
    adopt_and_check(emulator, _env(emulator, tmp_path), out, *subscriptions)
    exported = "".join(p.read_text(encoding="utf-8") for p in out.glob("*.yaml"))
    for cluster in desired.clusters:
        assert f"name: {cluster.azure_name}" in exported
