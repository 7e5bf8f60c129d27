"""`cmkctl plan --target` / `cmkctl apply --target` through the real CLI against the emulator.

A targeted plan keeps the targeted resources and what they depend on (a link needs its cluster),
says what it left out, text and JSON alike; a saved targeted plan applies only those changes; a
target that names nothing is an error naming it; a saved plan is never re-targeted at apply.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "execution"))
from estate import CLUSTER, cluster_id, cmkctl_with_state, seed_estate, workspace_id, write_spec


def _linked(emulator: Any, name: str) -> str | None:
    body = emulator.arm("GET", workspace_id(name), api_version="2025-07-01").json()
    value = (body.get("properties", {}).get("features") or {}).get("clusterResourceId")
    return str(value) if value else None


def test_plan_target_keeps_the_workspace_and_its_cluster_and_names_what_it_left_out(
    emulator: Any, tmp_path: Path
) -> None:
    seed_estate(emulator)
    spec, state, planfile = write_spec(tmp_path / "spec"), tmp_path / "state", tmp_path / "plan.json"

    text = cmkctl_with_state(emulator.env, state, "plan", "-f", str(spec), "--target", "workspace.law1")
    assert text.returncode == 0, text.stderr
    assert f"create      cluster.{CLUSTER}" in text.stdout  # the link needs its cluster
    assert "link        workspace.law1" in text.stdout
    assert "workspace.law2" not in text.stdout.split("Targeted (--target)")[0]
    assert "1 change left out by --target: link workspace.law2." in text.stdout

    made = cmkctl_with_state(emulator.env, state, "plan", "-f", str(spec), "--target", "workspace.law1",
                   "--format", "json", "--out", str(planfile))
    assert made.returncode == 0, made.stderr
    data = json.loads(planfile.read_text())
    assert json.loads(made.stdout)["targeting"] == data["targeting"]  # --out writes what it prints
    assert data["targeting"]["addresses"] == ["workspace.law1"]
    assert [(x["action"], x["address"], x["status"]) for x in data["targeting"]["left_out"]] == [
        ("link", "workspace.law2", "change")
    ]
    assert {c["address"] for c in data["changes"]} == {f"cluster.{CLUSTER}", "workspace.law1"}

    # a saved plan is applied as reviewed, never cut down again: refused, nothing sent
    emulator.clear_requests()
    refused = cmkctl_with_state(emulator.env, state, "apply", str(planfile), "--target", "workspace.law2")
    assert refused.returncode == 1
    assert "--target is not accepted with a saved plan" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert [r for r in emulator.requests() if r["method"] != "GET"] == []

    applied = cmkctl_with_state(emulator.env, state, "apply", str(planfile))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert _linked(emulator, "law1") is not None
    assert _linked(emulator, "law2") is None  # left out by --target: not linked

    rest = cmkctl_with_state(emulator.env, state, "plan", "-f", str(spec), "--format", "json")
    remaining = json.loads(rest.stdout)
    assert [(c["action"], c["address"]) for c in remaining["changes"]] == [("link", "workspace.law2")]
    assert remaining["targeting"] is None


def test_apply_target_cluster_creates_it_without_the_links(emulator: Any, tmp_path: Path) -> None:
    """Terraform's -target takes dependencies, not dependents: the cluster's links are left out."""
    seed_estate(emulator)
    spec, state = write_spec(tmp_path / "spec"), tmp_path / "state"
    applied = cmkctl_with_state(emulator.env, state, "apply", "-f", str(spec), "--auto-approve",
                      "--target", f"cluster.{CLUSTER}")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "2 changes left out by --target: link workspace.law1, link workspace.law2." in applied.stdout
    cluster = emulator.arm("GET", cluster_id(), api_version="2025-07-01")
    assert cluster.status_code == 200
    assert _linked(emulator, "law1") is None and _linked(emulator, "law2") is None


def test_an_unknown_target_is_an_error_naming_it_and_the_close_match(emulator: Any, tmp_path: Path) -> None:
    seed_estate(emulator)
    spec, state = write_spec(tmp_path / "spec"), tmp_path / "state"
    for command in (["plan"], ["apply", "--auto-approve"]):
        emulator.clear_requests()
        proc = cmkctl_with_state(emulator.env, state, *command, "-f", str(spec), "--target", "wrkspace.law1")
        assert proc.returncode == 1, proc.stdout
        assert "--target 'wrkspace.law1': no resource with this address" in proc.stderr
        assert "did you mean workspace.law1?" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert [r for r in emulator.requests() if r["method"] != "GET"] == []
