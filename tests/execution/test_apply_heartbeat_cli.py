"""`cmkctl apply` in a CI log (stderr not a TTY): a long operation logs its start, a heartbeat while it
runs, and its end, with elapsed times on Azure's clock (here the emulator's, 20 simulated minutes a
second)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from estate import CLUSTER, seed_estate, write_spec

TIME_SCALE = 1200.0  # a 2-hour create takes 6 real seconds


def test_a_piped_apply_logs_start_heartbeats_and_end_of_a_long_create(
    emulator: Any, tmp_path: Path
) -> None:
    seed_estate(emulator, workspaces=("law1",))
    spec = write_spec(tmp_path / "spec", workspaces=("law1",))
    emulator.configure(durations={"cluster_create": 2 * 3600.0}, time_scale=TIME_SCALE)
    proc = subprocess.run(
        [sys.executable, "-m", "controller.cli", "apply", "-f", str(spec), "--auto-approve",
         "--state", str(tmp_path / "state")],
        capture_output=True, text=True, timeout=180, check=False,
        env={**emulator.env, "PATH": "/usr/bin:/bin", "CMKCTL_POLLING_INTERVAL": "0.25"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    label = f"cluster.{CLUSTER}: create"
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(label)]
    assert lines[0] == f"{label}: started (usually ~2h)", proc.stderr
    beats = [re.fullmatch(rf"{re.escape(label)}: still running \[(\S+) elapsed, usually ~2h\]", ln)
             for ln in lines[1:-1]]
    assert len(beats) >= 2 and all(beats), lines
    # elapsed on the service clock: simulated minutes, growing, not the few real seconds
    minutes = [_minutes(m.group(1)) for m in beats if m]
    assert minutes == sorted(minutes) and minutes[-1] >= 30, lines
    assert re.fullmatch(rf"{re.escape(label)}: done after (1h5\dm|2h\d\dm)", lines[-1]), lines


def _minutes(text: str) -> float:
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    assert m, text
    hours, minutes, seconds = (int(g or 0) for g in m.groups())
    return hours * 60 + minutes + seconds / 60
