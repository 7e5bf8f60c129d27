"""`settings.drift: report` means the same for plan, apply, drift and the controller: a field changed
outside cmkctl since the last apply is reported, not planned and not reverted, until the spec itself
changes that field or the user opts in (`--correct-drift`, `settings.drift: correct`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops_repo import CLUSTER_PATH, seed, spec_docs

from controller.cli.app import main


def _write(directory: Path, docs: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "estate.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return directory


def _capacity(emulator: Any) -> int:
    return int(emulator.arm("GET", CLUSTER_PATH).json()["sku"]["capacity"])


def _lower_by_hand(emulator: Any, capacity: int) -> None:
    """Someone lowers the capacity in the portal, once the C4 lock of the last SKU update has passed."""
    emulator.advance(31 * 86400)
    r = emulator.arm("PATCH", CLUSTER_PATH, {"sku": {"name": "CapacityReservation", "capacity": capacity}})
    assert r.status_code in (200, 202), r.text
    emulator.advance(60)
    assert _capacity(emulator) == capacity


def _plan(spec: Path, state: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = main(
        ["plan", "-f", str(spec), "--state", str(state), "--format", "json", "--detailed-exitcode", *extra]
    )
    return code, json.loads(capsys.readouterr().out)


def test_hand_lowered_capacity_is_reported_not_planned_nor_reverted_until_the_spec_changes_it(
    emulator: Any, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(emulator)
    spec = _write(tmp_path / "spec", spec_docs(capacity=2000))
    state = tmp_path / "state"
    assert main(["apply", "-f", str(spec), "--auto-approve", "--state", str(state)]) == 0
    _lower_by_hand(emulator, 1000)

    code, plan = _plan(spec, state, capsys)
    assert code == 0 and plan["changes"] == []  # nothing to apply: the spec did not change capacity
    (held,) = [d for d in plan["drift"] if d["field"] == "capacity"]
    assert held["held"] is True and held["live"] == 1000 and held["desired"] == 2000

    assert main(["drift", "-f", str(spec), "--state", str(state)]) == 2
    text = capsys.readouterr().out
    assert "capacity: spec 2000, live 1000" in text and "not reverted" in text
    assert "Changed outside cmkctl since the last apply:" in text

    emulator.clear_requests()  # a CI apply of the same spec leaves the hand-made capacity alone
    assert main(["apply", "-f", str(spec), "--auto-approve", "--state", str(state)]) == 0
    assert [r for r in emulator.requests() if r["method"] in ("PUT", "PATCH", "DELETE")] == []
    assert _capacity(emulator) == 1000

    code, plan = _plan(spec, state, capsys, "--correct-drift")  # the user's explicit opt-in
    assert code == 2 and [(c["action"], c["after"]) for c in plan["changes"]] == [
        ("update", {"capacity": 2000})
    ]

    changed = _write(tmp_path / "spec", spec_docs(capacity=5000))  # the spec changes the field itself
    code, plan = _plan(changed, state, capsys)
    assert code == 2 and [c["after"] for c in plan["changes"]] == [{"capacity": 5000}]
    assert main(["apply", "-f", str(changed), "--auto-approve", "--state", str(state)]) == 0
    assert _capacity(emulator) == 5000
    code, plan = _plan(changed, state, capsys)
    assert code == 0 and plan["drift"] == []


def test_drift_correct_in_the_spec_plans_the_revert_for_every_command(
    emulator: Any, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(emulator)
    spec = _write(tmp_path / "spec", spec_docs(capacity=2000, drift="correct"))
    state = tmp_path / "state"
    assert main(["apply", "-f", str(spec), "--auto-approve", "--state", str(state)]) == 0
    _lower_by_hand(emulator, 1000)
    code, plan = _plan(spec, state, capsys)
    assert code == 2 and [c["after"] for c in plan["changes"]] == [{"capacity": 2000}]
    assert main(["apply", "-f", str(spec), "--auto-approve", "--state", str(state)]) == 0
    assert _capacity(emulator) == 2000


def test_drift_lists_every_field_changed_outside_cmkctl_managed_or_not(
    emulator: Any, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Like Terraform's "objects have changed outside": the last apply's live state vs now, from the
    journal, including what the spec does not manage (here the cluster's billing type is managed and
    left as the spec says; a tag the spec never named appears)."""
    seed(emulator)
    spec = _write(tmp_path / "spec", spec_docs(tags={"team": "obs"}))
    state = tmp_path / "state"
    assert main(["apply", "-f", str(spec), "--auto-approve", "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["drift", "-f", str(spec), "--state", str(state), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["changedOutside"] == []

    emulator.arm("PATCH", CLUSTER_PATH, {"tags": {"team": "obs", "costcentre": "42"}})
    assert main(["drift", "-f", str(spec), "--state", str(state), "--format", "json"]) == 2
    body = json.loads(capsys.readouterr().out)
    outside = {(o["address"], o["path"]): (o["before"], o["after"]) for o in body["changedOutside"]}
    assert outside[("cluster.cmkgitops01", "tags.costcentre")] == (None, "42")
    assert [d["held"] for d in body["drift"] if d["field"] == "tags"] == [True]
