"""`make demo` end to end, as a user runs it (`python -m demo`, the real CLI in subprocesses, the emulator
with scaled operation durations): the story must reach its end with the outcomes it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    """Scenario: first apply stops at the SystemAssigned keys (rule C7), the team grants access, the
    second apply converges, the next plan is empty, a hand-made change shows up as drift, and nothing
    was harmed on the way (W4, K1, B2)."""
    summary = tmp_path / "summary.json"
    env = {**os.environ, "CMKCTL_DEMO_SPEEDUP": "40000"}
    for name in ("CMKCTL_EMULATOR", "CMKCTL_CA_BUNDLE", "CMKCTL_STATE"):
        env.pop(name, None)  # the demo brings its own emulator and state
    done = subprocess.run(
        [sys.executable, "-m", "demo", "--summary", str(summary)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    outcome = json.loads(summary.read_text(encoding="utf-8"))
    assert outcome["first_apply_exit"] == 1  # the new identities cannot use their keys yet (C7)
    assert outcome["identities_granted"] == 2
    assert outcome["converged"] is True
    assert outcome["second_plan_empty"] is True
    assert outcome["drift_found"] is True
    assert outcome["harm_events"] == 0
    capacity = outcome["capacity_by_hand"]
    assert f"capacity: spec {capacity['spec']}, live {capacity['live']}" in out  # drift names the change
    assert "Traceback" not in out
    for heading in ("1. Validate", "Apply again", "Drift check", "Report", "done in"):
        assert heading in out


def test_a_failing_step_ends_the_demo_with_one_line(tmp_path: Path) -> None:
    """Scenario: the demo is pointed at a broken spec: it stops at the validate step with exit 1, the
    CLI's own problem list and a 'step failed' line, never a traceback, and starts no emulator."""
    spec = tmp_path / "bad.yaml"
    spec.write_text("apiVersion: cmk.azure.io/v1\nkind: Cluster\nmetadata: {name: x}\nspec: {}\n", "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "demo", "--spec", str(spec)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1
    assert "step failed" in out and "cmkctl validate exited 1" in out
    assert "bad.yaml" in out and "Start the Azure emulator" not in out
    assert "Traceback" not in out
