"""`make reliability` reports the hardening cases by category (tampering, W3 accounting, malformed
observations, controller recovery): every case the reliability run executes falls in the category it
tests, each category has cases, and a failed case is a violation that turns its row FAIL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench import reliability

ROOT = Path(__file__).resolve().parents[2]


def _collected() -> list[tuple[str, str]]:
    """(module, test name) of every case `make reliability` runs, as pytest collects them."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/reliability", *reliability.HARDENING_EXTRA],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = []
    for line in done.stdout.splitlines():
        if "::" not in line:
            continue
        path, _, name = line.partition("::")
        out.append((Path(path).stem, name))
    return out


def test_every_hardening_case_the_run_executes_has_its_category() -> None:
    cases = _collected()
    by_key: dict[str, set[str]] = {key: set() for key in reliability.CATEGORIES}
    for module, name in cases:
        key = reliability.hardening_category(module, name)
        if key is not None:
            by_key[key].add(f"{module}::{name.split('[')[0]}")
    assert all(by_key.values()), by_key
    expected = {
        "tampering": [
            "test_hardening::test_rewritten_resume_token_never_sends_the_arm_token_elsewhere",
            "test_hardening::test_foreign_host_in_an_lro_header_is_never_called",
            "test_state_damage::test_journal_that_lost_entries_is_refused_not_read_as_complete",
            "test_state_damage::test_read_only_state_directory_plans_but_apply_refuses_with_the_remedy",
            "test_blob_state::test_lost_journal_blob_is_refused_and_rebuilt_from_azure",
        ],
        "w3_accounting": [
            "test_link_budget_recovery::test_w3_an_unlink_in_flight_when_apply_died_is_counted_on_restart",
            "test_controller_outcomes::test_a_w3_refusal_is_deferred_to_the_end_of_its_window_not_stalled",
        ],
        "malformed_observation": [
            "test_hardening::test_unreadable_cluster_list_fails_instead_of_planning_creates",
            "test_hardening::test_unreadable_live_field_is_unknown_not_a_difference",
        ],
        "controller_recovery": [
            "test_controller_shutdown::"
            "test_sigterm_while_azure_runs_an_operation_exits_quickly_and_the_next_start_resumes",
            "test_controller_outcomes::"
            "test_consecutive_transient_failures_back_off_exponentially_up_to_a_cap_then_reset",
            "test_resume_stuck::test_stuck_operations_are_resumed_side_by_side",
        ],
    }
    for key, names in expected.items():
        assert set(names) <= by_key[key], (key, set(names) - by_key[key])
    # the crash, fault-matrix and hostile-input suites have rows of their own
    assert reliability.hardening_category("test_crash_restart", "test_crash_restart_converges") is None


def test_a_failed_case_is_a_violation_of_its_category() -> None:
    counts = reliability.hardening_counts(
        [
            ("test_state_damage", "test_full_disk_names_the_journal_and_the_remedy", "passed"),
            ("test_hardening", "test_unreadable_live_field_is_unknown_not_a_difference[x]", "failed"),
            ("test_resume_stuck", "test_stuck_operations_are_resumed_side_by_side", "skipped"),
        ]
    )
    assert (counts["tampering"]["cases"], counts["tampering"]["violations"]) == (1, 0)
    assert (counts["malformed_observation"]["cases"], counts["malformed_observation"]["violations"]) == (1, 1)
    assert (counts["controller_recovery"]["cases"], counts["controller_recovery"]["skipped"]) == (0, 1)
    assert counts["w3_accounting"]["cases"] == 0
