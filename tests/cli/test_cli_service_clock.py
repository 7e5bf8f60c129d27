"""The planning clock is Azure's: ARM's `Date` header, not the machine's clock (rules W3, C4, C11).

A time-scaled emulator (or a skewed laptop) runs ahead of the local clock; counting Azure's 30-day
windows with the local clock would plan links Azure refuses, or hold back links Azure would take.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from controller.state.sqlite_store import SqliteHistoryStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "execution"))
from estate import CLUSTER, RG, SUB, UAI, UAI_PRINCIPAL, seed_estate, write_spec

AHEAD = timedelta(days=60)


def _cmkctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _emulator_ahead(emulator: Any) -> datetime:
    """Move the emulator's (frozen) clock 60 days past the local one; return its time."""
    ahead = (datetime.now(UTC) + AHEAD).replace(microsecond=0)
    emulator.set_clock(ahead.isoformat().replace("+00:00", "Z"))
    return ahead


def test_emulator_date_header_is_its_simulated_time(emulator: Any) -> None:
    """Every answer's `Date` is the simulated clock's, as Azure's front door stamps its own time."""
    ahead = _emulator_ahead(emulator)
    resp = emulator.arm("GET", f"/subscriptions/{SUB}/providers/Microsoft.OperationalInsights/clusters")
    assert parsedate_to_datetime(resp.headers["Date"]) == ahead


def test_plan_counts_link_budget_on_azures_clock(emulator: Any, tmp_path: Path) -> None:
    """Rule W3 counted on ARM's clock: the workspace was linked and unlinked 29 and 28 days ago in
    Azure's time, so a third operation must wait one day. Counted on the local clock (60 days behind,
    CMKCTL_NOW as a what-if) those operations lie in the future and the link looks free: the plan
    Azure would refuse."""
    ahead = _emulator_ahead(emulator)
    seed_estate(emulator, workspaces=())
    emulator.seed(
        {
            "clusters": [
                {
                    "subscription": SUB,
                    "resource_group": RG,
                    "name": CLUSTER,
                    "location": "westeurope",
                    "identity": {"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}},
                    "created": (ahead - timedelta(days=90)).isoformat(),
                }
            ],
            "identities": [{"id": UAI, "principal_id": UAI_PRINCIPAL}],
            "workspaces": [
                {
                    "subscription": SUB,
                    "resource_group": RG,
                    "name": "law1",
                    "location": "westeurope",
                    "link_ops": [
                        {"time": (ahead - timedelta(days=29)).isoformat(), "kind": "link"},
                        {"time": (ahead - timedelta(days=28)).isoformat(), "kind": "unlink"},
                    ],
                }
            ],
        }
    )
    spec = write_spec(tmp_path / "spec", workspaces=("law1",))
    env = {**emulator.env, "CMKCTL_STATE": str(tmp_path / "state")}

    out = _cmkctl(env, "plan", "-f", str(spec), "--format", "json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    generated = datetime.fromisoformat(plan["generated_at"])
    assert abs(generated - ahead) < timedelta(minutes=5), "the plan's now is the emulator's, not local"
    assert plan["changes"] == []
    [deferred] = plan["deferred"]
    assert (deferred["action"], deferred["rule"]) == ("link", "W3")
    wait = datetime.fromisoformat(deferred["not_before"]) - ahead
    assert timedelta(hours=23) < wait <= timedelta(days=1, hours=1)

    local = datetime.now(UTC).isoformat()
    what_if = _cmkctl({**env, "CMKCTL_NOW": local}, "plan", "-f", str(spec), "--format", "json")
    assert what_if.returncode == 0, what_if.stderr
    assert [c["action"] for c in json.loads(what_if.stdout)["changes"]] == ["link"]


def test_journal_times_are_azures(emulator: Any, tmp_path: Path) -> None:
    """The journal records what apply did at Azure's time (the W3 budget is counted from it): the
    link and the applied revision carry the emulator's time, not the local clock's."""
    ahead = _emulator_ahead(emulator)
    seed_estate(emulator, workspaces=("law1",))
    spec = write_spec(tmp_path / "spec", workspaces=("law1",))
    state = tmp_path / "state"
    out = _cmkctl({**emulator.env, "CMKCTL_STATE": str(state)}, "apply", "-f", str(spec), "--auto-approve")
    assert out.returncode == 0, out.stdout + out.stderr
    store = SqliteHistoryStore(state)
    try:
        links = store.load().link_operations
        revisions = store.revisions()
    finally:
        store.close()
    assert [op.kind for op in links] == ["link"]
    assert abs(links[0].at - ahead) < timedelta(minutes=5)
    assert revisions and abs(revisions[-1].applied_at - ahead) < timedelta(minutes=5)
