"""The GitHub Actions example: valid YAML, plan on pull requests, apply on main, and every cmkctl
flag it uses exists (a renamed option would otherwise break users' pipelines silently)."""

from __future__ import annotations

import re
from typing import Any

import yaml
from packaging_tools import ROOT
from typer.testing import CliRunner

from controller.cli.app import app

WORKFLOW = ROOT / "examples" / "ci" / "cmk-plan-apply.yml"


def _workflow() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_plan_runs_on_pull_requests_and_apply_on_main() -> None:
    wf = _workflow()
    triggers = wf[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    jobs = wf["jobs"]
    assert "pull_request" in jobs["plan"]["if"] and "refs/heads/main" in jobs["apply"]["if"]
    assert jobs["apply"]["concurrency"]["cancel-in-progress"] is False
    assert wf["permissions"]["id-token"] == "write"


def test_every_cmkctl_flag_in_the_workflow_exists() -> None:
    runs = [step["run"] for job in _workflow()["jobs"].values() for step in job["steps"] if "run" in step]
    calls = [
        line.strip() for run in runs for line in run.splitlines() if "cmkctl " in line and "pip" not in line
    ]
    assert len(calls) >= 4
    runner = CliRunner()
    for call in calls:
        words = call[call.index("cmkctl ") :].split()
        command = words[1]
        help_text = runner.invoke(app, [command, "--help"]).output
        assert "Usage" in help_text, command
        for flag in re.findall(r"(?<!\S)(--[a-z][a-z-]*|-f)(?=\s|$)", " ".join(words[2:])):
            assert flag in help_text, f"cmkctl {command} has no {flag}"


def test_the_plan_job_fails_on_blocked_items_after_posting_the_plan() -> None:
    """`plan --detailed-exitcode` exits 3 when something is blocked: the example fails the job on it,
    after the comment and the artefact so the reviewer sees the remedies."""
    steps = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]["plan"]["steps"]
    names = [s.get("name") or s.get("uses") for s in steps]
    gate = next(s for s in steps if "exitcode == '3'" in str(s.get("if", "")))
    assert "exit 1" in gate["run"]
    assert names.index(gate["name"]) > names.index("Comment the plan on the pull request")
