"""`cmkctl report` as a user runs it: formats, --out, and errors as one line (never a traceback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from report_runner import ReportRunner
from tests_azure_support import cluster_doc, estate, workspace_set_doc

SPEC = [cluster_doc(), workspace_set_doc(["wks1", "wks2"])]


def test_markdown_goes_to_stdout_with_findings_and_calendar(emulator: Any, report: ReportRunner) -> None:
    emulator.seed(estate())
    run = report(SPEC, fmt="markdown")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith("## Encryption coverage, 2026-11-30")
    assert "| WARNING | wks2 | expected on cluster clu01 but not linked" in run.stdout
    assert "| 2026-12-16 | capacity-lock-ends | clu01 |" in run.stdout


def test_out_writes_the_file_and_nothing_to_stdout(
    emulator: Any, report: ReportRunner, tmp_path: Path
) -> None:
    emulator.seed(estate())
    target = tmp_path / "coverage.json"
    run = report(SPEC, fmt="json", extra=["--out", str(target)])
    assert run.exit_code == 0 and run.stdout == ""
    assert f"report written to {target}" in run.stderr
    assert '"workspaces_expected_not_protected": 1' in target.read_text(encoding="utf-8")


def test_unwritable_out_is_one_line_error(emulator: Any, report: ReportRunner, tmp_path: Path) -> None:
    emulator.seed(estate())
    run = report(SPEC, fmt="html", extra=["--out", str(tmp_path / "missing" / "r.html")])
    assert run.exit_code == 1
    errors = [
        line
        for line in run.stderr.splitlines()
        if not line.startswith(("warning: ", "cmkctl: talking to the Azure emulator"))
    ]
    assert len(errors) == 1 and errors[0].startswith("error: cannot write the report"), run.stderr


def test_a_bad_spec_is_reported_like_plan_does(emulator: Any, report: ReportRunner) -> None:
    bad = cluster_doc()
    bad["spec"]["capacity"] = "lots"
    run = report([bad])
    assert run.exit_code == 1 and run.stdout == ""
    assert "capacity" in run.stderr and "Traceback" not in run.stderr


def test_unknown_format_is_a_usage_error(emulator: Any, report: ReportRunner) -> None:
    run = report(SPEC, fmt="pdf")
    assert run.exit_code == 2 and run.stdout == ""
    assert "Traceback" not in run.stderr
