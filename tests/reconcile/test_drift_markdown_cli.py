"""`cmkctl drift --format markdown`: the drift report as a PR or issue comment, through the real CLI
against the emulator, in the plan's markdown style (verdict first, collapsed tables, the spec's field
names, YAML values, empty sections left out)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from gitops_repo import ARM_RG, CLUSTER, CLUSTER_PATH, seed, spec_docs

from controller.cli.app import main

PYTHON_VALUES = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|\{'|\['")


def _drift(env: dict[str, str], spec: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", "drift", "-f", str(spec), "--state", str(state), *args],
        capture_output=True, text=True, timeout=120, check=False, env={**env, "PATH": "/usr/bin:/bin"},
    )


def test_drift_markdown_reads_like_the_plan_comment(
    emulator: Any, env: dict[str, str], tmp_path: Path
) -> None:
    seed(emulator)
    spec, state = tmp_path / "spec", tmp_path / "state"
    spec.mkdir()
    docs = spec_docs(workspaces=("law1", "law2"), capacity=2000)
    (spec / "estate.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    assert main(["apply", "-f", str(spec), "--auto-approve", "--state", str(state)]) == 0

    clean = _drift(env, spec, state, "--format", "markdown")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.splitlines()[0] == "### cmkctl drift: Azure matches the spec"
    assert "<details>" not in clean.stdout  # nothing to list: no empty tables

    # by hand: capacity lowered in the portal (after the C4 lock), law2 unlinked
    emulator.advance(31 * 86400)
    lowered = emulator.arm("PATCH", CLUSTER_PATH, {"sku": {"name": "CapacityReservation", "capacity": 1000}})
    assert lowered.status_code in (200, 202), lowered.text
    unlinked = emulator.arm(
        "DELETE", f"{ARM_RG}/Microsoft.OperationalInsights/workspaces/law2/linkedServices/cluster"
    )
    assert unlinked.status_code in (200, 202, 204), unlinked.text
    emulator.advance(3600)

    found = _drift(env, spec, state, "--format", "markdown")
    assert found.returncode == 2, found.stdout + found.stderr
    md = found.stdout
    assert md.splitlines()[0] == "### cmkctl drift: 2 resource(s) differ from the spec"
    assert "> 1 difference(s) were made outside cmkctl: reported, not reverted" in md
    assert md.count("<details>") == md.count("</details>") == 2
    assert "<details><summary>Drift (2)</summary>" in md
    assert (f"| warning | `cluster.{CLUSTER}` | capacity | 2000 | 1000 |  | "
            "changed outside cmkctl: reported, not reverted |") in md
    assert f"| warning | `workspace.law2` | cluster | {CLUSTER} | null |  |  |" in md
    assert "<details><summary>Changed outside cmkctl since the last apply (" in md
    assert f"| `cluster.{CLUSTER}` | capacity | 2000 | 1000 |" in md
    assert f"| `cluster.{CLUSTER}` | associatedWorkspaces.law2 | " in md  # ids shortened to names
    assert "sha256:" not in md and "last_sku_update" not in md  # no hashes, the spec's spelling
    assert not PYTHON_VALUES.search(md), md

    text = _drift(env, spec, state)  # the text report names and writes values the same way
    assert f"~ workspace.law2 cluster: spec {CLUSTER}, live null" in text.stdout, text.stdout
    assert not PYTHON_VALUES.search(text.stdout), text.stdout
