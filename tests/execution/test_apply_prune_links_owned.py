"""`prune.workspaceLinks` unlinks only links that are ours (rule W6), through the CLI and the emulator.

A link is ours when cmkctl made it (its journal records the apply that linked it) or when the cluster
carries this scope's ownership tag (cmkctl created it). A link someone made by hand to a cluster
cmkctl adopted is reported (`prune-not-owned`), never unlinked: its new data would silently move to
Microsoft keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from estate import CLUSTER, RG, SUB, UAI, cluster_id, cmkctl_with_state, seed_estate, workspace_id


def _spec(directory: Path, workspaces: tuple[str, ...]) -> Path:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "cmk.azure.io/v1", "kind": "Settings", "metadata": {"name": "settings"},
         "spec": {"prune": {"workspaceLinks": True}}},
        {"apiVersion": "cmk.azure.io/v1", "kind": "Cluster", "metadata": {"name": CLUSTER},
         "spec": {"subscription": SUB, "resourceGroup": RG, "location": "westeurope", "capacity": 1000,
                  "identity": {"type": "UserAssigned", "userAssignedIdentity": UAI,
                               "keyAccessGranted": True}}},
        {"apiVersion": "cmk.azure.io/v1", "kind": "WorkspaceSet", "metadata": {"name": "apps"},
         "spec": {"cluster": CLUSTER, "workspaces": [workspace_id(w) for w in workspaces]}},
    ]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


def _linked(emulator: Any, name: str) -> str | None:
    body = emulator.arm("GET", workspace_id(name)).json()
    value = (body.get("properties", {}).get("features") or {}).get("clusterResourceId")
    return str(value) if value else None


def _seed_adopted_cluster(emulator: Any, tags: dict[str, str]) -> None:
    """A cluster made outside cmkctl (or by it: `tags`), with law3 linked to it by hand."""
    seed_estate(emulator, workspaces=("law1", "law2"))
    emulator.seed({
        "clusters": [{"subscription": SUB, "resource_group": RG, "name": CLUSTER, "location": "westeurope",
                      "identity": {"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}},
                      "capacity": 1000, "tags": tags}],
        "workspaces": [{"subscription": SUB, "resource_group": RG, "name": "law3", "location": "westeurope",
                        "cluster": cluster_id(), "linked_at": "2026-10-01T00:00:00Z"}],
    })


def test_prune_unlinks_what_cmkctl_linked_and_reports_a_foreign_link(emulator: Any, tmp_path: Path) -> None:
    """Rule W6: on a cluster cmkctl did not create, law2 (linked by an apply, in the journal) is
    unlinked once the spec drops it; law3 (linked by hand) is reported and stays linked."""
    _seed_adopted_cluster(emulator, tags={})
    state = tmp_path / "state"
    spec = _spec(tmp_path / "v1", ("law1", "law2"))
    first = cmkctl_with_state(emulator.env, state, "apply", "-f", str(spec), "--auto-approve")
    assert first.returncode == 0, first.stdout + first.stderr
    assert _linked(emulator, "law2") is not None
    assert "unlink" not in first.stdout  # law3 is foreign from the start

    spec = _spec(tmp_path / "v2", ("law1",))
    planned = cmkctl_with_state(emulator.env, state, "plan", "-f", str(spec), "--format", "json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert [(c["action"], c["address"]) for c in plan["changes"]] == [("unlink", "workspace.law2")]
    foreign = [w for w in plan["warnings"] if w["code"] == "prune-not-owned"]
    assert [(w["address"], w["rule"]) for w in foreign] == [("workspace.law3", "W6")]

    text = cmkctl_with_state(emulator.env, state, "plan", "-f", str(spec))
    assert "workspace.law3 is linked to" in text.stdout and "prune leaves it linked" in text.stdout

    applied = cmkctl_with_state(emulator.env, state, "apply", "-f", str(spec), "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert _linked(emulator, "law2") is None
    assert _linked(emulator, "law3") is not None  # never unlinked
    assert not [r for r in emulator.requests() if r["method"] == "DELETE" and "/law3/" in r["path"]]


def test_prune_unlinks_links_on_a_cluster_cmkctl_created(emulator: Any, tmp_path: Path) -> None:
    """Rule W6: the cluster carries this scope's ownership tag, so its links are ours, even one no
    apply of ours made (an empty journal)."""
    _seed_adopted_cluster(emulator, tags={"cmkctl-scope": "settings"})
    spec, state = _spec(tmp_path / "spec", ()), tmp_path / "state"
    planned = cmkctl_with_state(emulator.env, state, "plan", "-f", str(spec), "--format", "json")
    plan = json.loads(planned.stdout)
    assert [(c["action"], c["address"]) for c in plan["changes"]] == [("unlink", "workspace.law3")]
    assert not [w for w in plan["warnings"] if w["code"] == "prune-not-owned"]
    applied = cmkctl_with_state(emulator.env, state, "apply", "-f", str(spec), "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert _linked(emulator, "law3") is None
