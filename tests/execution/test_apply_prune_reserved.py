"""Rules C2/C11 across two runs against the emulator: clusters deleted by a prune keep their region
slots reserved for the retention period, so the next plan's creates count them (`current` limits
profile: 5 active, 7 active + soft-deleted per region and subscription)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from estate import RG, SUB, cluster_id, seed_estate

from controller.azure.clients import AzureClients
from controller.cli import apply_cmd
from controller.cli.app import main
from controller.model.limits import CURRENT
from controller.state.sqlite_store import SqliteHistoryStore

KEPT = ("cmkkeep1", "cmkkeep2")
PRUNED = ("cmkold1", "cmkold2", "cmkold3")
NEW = ("cmknew1", "cmknew2", "cmknew3")


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    values = {**emulator.env, "CMKCTL_RETRY_BACKOFF": "0.01", "CMKCTL_POLLING_INTERVAL": "0.05"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield


def _spec(path: Path, clusters: tuple[str, ...]) -> Path:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "cmk.azure.io/v1", "kind": "Settings", "metadata": {"name": "settings"},
         "spec": {"limitsProfile": "current", "prune": {"clusters": True}}},
        *({"apiVersion": "cmk.azure.io/v1", "kind": "Cluster", "metadata": {"name": name},
           "spec": {"subscription": SUB, "resourceGroup": RG, "location": "westeurope", "capacity": 1000,
                    "identity": {"type": "SystemAssigned"}}} for name in clusters),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


def _plan(spec: Path, state: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    code = main(["plan", "-f", str(spec), "--format", "json", "--detailed-exitcode", "--state", str(state)])
    assert code == 2, capsys.readouterr().err
    return dict(json.loads(capsys.readouterr().out))


def test_pruned_clusters_stay_reserved_in_their_region(
    emulator: Any, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_estate(emulator, workspaces=())
    emulator.seed({"clusters": [
        # created by this scope (its ownership tag): prune deletes only those
        {"subscription": SUB, "resource_group": RG, "name": name, "location": "westeurope",
         "tags": {"cmkctl-scope": "settings"}}
        for name in KEPT + PRUNED]})
    state = tmp_path / "state"
    spec = _spec(tmp_path / "spec" / "spec.yaml", KEPT)

    plan = _plan(spec, state, capsys)
    assert sorted(c["address"] for c in plan["changes"] if c["action"] == "delete") == [
        f"cluster.{n}" for n in PRUNED]
    clients = AzureClients()
    try:
        assert apply_cmd.run(None, [str(spec)], auto_approve=True, state=str(state), clients=clients) == 0
    finally:
        clients.close()
    for name in PRUNED:
        assert emulator.arm("GET", cluster_id(name)).status_code == 404

    deletions = SqliteHistoryStore(str(state)).load().cluster_deletions  # the journal keeps the region
    assert sorted((d.name, d.location) for d in deletions) == [(n, "westeurope") for n in PRUNED]

    # 2 active + 3 soft-deleted: two more creates fit in the 7 reserved slots, the third waits (C11)
    plan = _plan(_spec(tmp_path / "spec" / "spec.yaml", KEPT + NEW), state, capsys)
    assert sorted(c["address"] for c in plan["changes"] if c["action"] == "create") == [
        "cluster.cmknew1", "cluster.cmknew2"]
    (waiting,) = [d for d in plan["deferred"] if d["action"] == "create"]
    assert waiting["address"] == "cluster.cmknew3" and waiting["rule"] == "C11"
    deleted_at = min(d.at for d in deletions)
    # the first reserved slot frees when the earliest deletion's retention ends
    assert datetime.fromisoformat(waiting["not_before"]) == deleted_at + CURRENT.soft_delete_retention
