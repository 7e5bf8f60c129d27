"""`python -m bench.reliability` (`make reliability`): the reliability figures in one table.

Runs the reliability suite (tests/reliability) at full size (50 crash trials, 500 hypothesis inputs),
with the controller's recovery and shutdown tests and the blob journal's loss test (HARDENING_EXTRA),
ruff's security rules over the product, and the packaging tests' hadolint/checkov checks; collects the
figures every scenario records (CMKCTL_RELIABILITY_OUT) and the pass/fail of every test (JUnit XML),
prints the table and writes it to bench/reliability.json. The hardening cases are counted by category
(`hardening_category`): tampering, W3 accounting, malformed observations, controller recovery; each
must have cases and 0 violations (a failed case is a violation). Exit 0 only when every figure is clean.

Options: --trials N (crash-restart trials, default 50), --examples N (hypothesis inputs, default 500),
--quick (the `make test` sizes: 20 trials, 150 inputs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree  # our own pytest's JUnit XML, not untrusted input

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "reliability.json"
VENV_BIN = Path(sys.executable).parent


def _records(directory: Path, suite: str) -> list[dict[str, Any]]:
    path = directory / f"{suite}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _junit(path: Path) -> dict[str, Counter[str]]:
    """Outcome counts per test module: passed / failed / skipped."""
    per: dict[str, Counter[str]] = {}
    for module, _name, outcome in _junit_cases(path):
        per.setdefault(module, Counter())[outcome] += 1
    return per


# Run with tests/reliability: the controller's recovery and shutdown, and the blob journal's loss test
HARDENING_EXTRA = (
    "tests/reconcile/test_controller_outcomes.py",
    "tests/reconcile/test_controller_shutdown.py",
    "tests/azure/test_blob_state.py::test_lost_journal_blob_is_refused_and_rebuilt_from_azure",
)
CATEGORIES = {
    "tampering": "tampering cases",
    "w3_accounting": "W3 accounting cases",
    "malformed_observation": "malformed observation cases",
    "controller_recovery": "controller recovery cases",
}


def hardening_category(module: str, name: str) -> str | None:
    """Which hardening category a test case belongs to (one at most), by its module and name."""
    lowered = name.lower()
    if module == "test_link_budget_recovery" or "w3" in lowered:
        return "w3_accounting"  # rule W3: every link/unlink counted once, across crashes and sources
    if module == "test_hardening" and any(k in lowered for k in ("unreadable", "read_timeout", "vault_host")):
        return "malformed_observation"  # an answer cmkctl cannot read or trust is never planned from
    if module in ("test_hardening", "test_state_damage") or "lost_journal_blob" in lowered:
        return "tampering"  # journal and state damage, rewritten tokens, hosts that are not Azure's
    if module in ("test_controller_outcomes", "test_controller_shutdown", "test_resume_stuck"):
        return "controller_recovery"
    return None


def _junit_cases(path: Path) -> list[tuple[str, str, str]]:
    """(module, test name, outcome) of every case in a JUnit XML file."""
    if not path.exists():
        return []
    out: list[tuple[str, str, str]] = []
    tree = ElementTree.parse(path)  # noqa: S314 - our own pytest output, not untrusted input
    for case in tree.iter("testcase"):
        module = (case.get("classname") or "").rsplit(".", 1)[-1]
        outcome = "passed"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        out.append((module, case.get("name") or "", outcome))
    return out


def hardening_counts(cases: Sequence[tuple[str, str, str]]) -> dict[str, dict[str, Any]]:
    """Counts per category; a failed case is a violation."""
    out: dict[str, dict[str, Any]] = {
        key: {"cases": 0, "passed": 0, "failed": 0, "skipped": 0, "violations": 0, "tests": []}
        for key in CATEGORIES
    }
    for module, name, outcome in cases:
        key = hardening_category(module, name)
        if key is None:
            continue
        entry = out[key]
        entry[outcome] += 1
        entry["cases"] += outcome != "skipped"
        entry["violations"] += outcome == "failed"
        entry["tests"].append(f"{module}::{name}: {outcome}")
    return out


def _pytest(args: Sequence[str], env: dict[str, str], junit: Path) -> int:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode


def _ruff_security() -> dict[str, Any]:
    ruff = VENV_BIN / "ruff"
    done = subprocess.run(
        [str(ruff), "check", "--select", "S", "--output-format", "json", "controller", "emulator"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        findings = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        return {"findings": None, "error": done.stderr.strip()[-300:]}
    return {"findings": len(findings), "rules": sorted({f["code"] for f in findings})}


def _row(name: str, value: str, ok: bool) -> tuple[str, str, str]:
    return (name, value, "ok" if ok else "FAIL")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--examples", type=int, default=500)
    ap.add_argument("--quick", action="store_true", help="the `make test` sizes (20 trials, 150 inputs)")
    args = ap.parse_args(list(argv) if argv is not None else None)
    trials, examples = (20, 150) if args.quick else (args.trials, args.examples)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cmkctl-reliability-") as tmp:
        figures = Path(tmp) / "figures"
        env = {
            **os.environ,
            "CMKCTL_RELIABILITY_OUT": str(figures),
            "CMKCTL_RELIABILITY_TRIALS": str(trials),
            "CMKCTL_RELIABILITY_EXAMPLES": str(examples),
        }
        junit = Path(tmp) / "reliability.xml"
        suite_rc = _pytest(["tests/reliability", *HARDENING_EXTRA], env, junit)
        outcomes = _junit(junit)
        categories = hardening_counts(_junit_cases(junit))
        pk_junit = Path(tmp) / "packaging.xml"
        _pytest(
            [
                "tests/packaging/test_dockerfile.py",
                "tests/packaging/test_helm_chart.py",
                "-k",
                "hadolint or checkov",
            ],
            dict(os.environ),
            pk_junit,
        )
        packaging = _junit(pk_junit)
        fault = _records(figures, "fault")
        crash = _records(figures, "crash")
        crash_summary = _records(figures, "crash_summary")
        concurrency = _records(figures, "concurrency")
        races = [r for r in concurrency if r["writers"] >= 1]
        stale = [r for r in concurrency if r not in races]
        hostile = _records(figures, "hostile")
        secrets = _records(figures, "secrets")
        guards = _records(figures, "guards")
        hardening = _records(figures, "hardening")
    ruff = _ruff_security()

    fm = outcomes.get("test_fault_matrix", Counter())
    cells_total = sum(fm.values())
    by_outcome = Counter(r["outcome"] for r in fault)
    crash_ok = [r for r in crash if r["converged"] and r["cluster_creates"] <= 1 and r["in_flight"] == 0]
    hostile_inputs = len(hostile)  # one record per hypothesis input and per named attack x command
    harm = sum(r.get("harm_events", 0) for r in fault + crash)
    pk = Counter[str]()
    for counts in packaging.values():
        pk.update(counts)
    result: dict[str, Any] = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
        "suite_exit_code": suite_rc,
        "tests": {k: dict(v) for k, v in outcomes.items()},
        "fault_matrix": {
            "cells": cells_total,
            "passed": len(fault),
            "outcomes": dict(by_outcome),
            "cells_detail": fault,
        },
        "crash_restart": {
            "trials": len(crash),
            "requested": trials,
            "converged": len(crash_ok),
            "killed_mid_apply": sum(1 for r in crash if r["killed"]),
            "duplicate_creates": sum(1 for r in crash if r["cluster_creates"] > 1),
            "max_link_puts": max((r["link_puts"] for r in crash), default=0),
            "links_required": 2,
            "max_reruns": max((r["reruns"] for r in crash), default=0),
            "summary": crash_summary[-1] if crash_summary else {},
        },
        "concurrency": {
            "races": len(races),
            "one_writer": sum(1 for r in races if r["writers"] == 1),
            "stale_plans_refused": sum(1 for r in stale if r.get("refused")),
            "detail": races + stale,
        },
        "hostile_input": {
            "inputs": hostile_inputs,
            "tracebacks": sum(r.get("tracebacks", 0) for r in hostile),
            "max_seconds": max((r.get("seconds", 0.0) for r in hostile), default=0.0),
        },
        "secrets": {"checks": len(secrets), "leaks": sum(r["leaks"] for r in secrets)},
        "guards": {"checks": len(guards), "violations": sum(r["violations"] for r in guards)},
        "hostile_state": {
            "cases": len(hardening),
            "passed": outcomes.get("test_hardening", Counter())["passed"],
            "failed": outcomes.get("test_hardening", Counter())["failed"],
            "detail": hardening,
        },
        "hardening": categories,
        "harm_events": harm,
        "ruff_security": ruff,
        "packaging_checks": dict(pk),
    }
    cr = result["crash_restart"]
    rows = [
        _row(
            "fault matrix cells",
            f"{len(fault)}/{cells_total} ({dict(by_outcome)})",
            cells_total > 0 and len(fault) == cells_total,
        ),
        _row(
            "crash-restart trials",
            f"{cr['converged']}/{cr['requested']} converged, {cr['killed_mid_apply']} killed mid-apply, "
            f"{cr['duplicate_creates']} duplicate creates, "
            f"max link PUTs {cr['max_link_puts']}/{cr['links_required']}",
            cr["converged"] == cr["requested"] and cr["duplicate_creates"] == 0 and cr["max_link_puts"] <= 2,
        ),
        _row(
            "concurrency races",
            f"{result['concurrency']['one_writer']}/{len(races)} with exactly one writer, "
            f"{result['concurrency']['stale_plans_refused']}/{len(stale)} stale saved plans refused",
            bool(races)
            and result["concurrency"]["one_writer"] == len(races)
            and result["concurrency"]["stale_plans_refused"] == len(stale),
        ),
        _row(
            "hostile inputs",
            f"{hostile_inputs} tried, {result['hostile_input']['tracebacks']} tracebacks, "
            f"max {result['hostile_input']['max_seconds']}s",
            hostile_inputs > 0 and outcomes.get("test_hostile_input", Counter())["failed"] == 0,
        ),
        _row(
            "secret leaks",
            f"{result['secrets']['leaks']} in {len(secrets)} checks",
            bool(secrets) and result["secrets"]["leaks"] == 0,
        ),
        _row(
            "guard violations",
            f"{result['guards']['violations']} in {len(guards)} checks",
            bool(guards) and result["guards"]["violations"] == 0,
        ),
        _row(
            "hostile state and answers",
            f"{result['hostile_state']['passed']} passed, {result['hostile_state']['failed']} failed "
            "(journal tokens, foreign hosts, unreadable lists and fields, damaged journal)",
            result["hostile_state"]["passed"] > 0 and result["hostile_state"]["failed"] == 0,
        ),
        *[
            _row(
                label,
                f"{categories[key]['cases']} cases, {categories[key]['violations']} violations"
                + (f", {categories[key]['skipped']} skipped" if categories[key]["skipped"] else ""),
                categories[key]["cases"] > 0 and categories[key]["violations"] == 0,
            )
            for key, label in CATEGORIES.items()
        ],
        _row("harm events", str(harm), harm == 0),
        _row("ruff security (S)", f"{ruff.get('findings')} findings", ruff.get("findings") == 0),
        _row(
            "hadolint + checkov",
            ", ".join(f"{n} {k}" for k, n in sorted(pk.items())) or "not run",
            pk["failed"] == 0,
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nReliability, {result['seconds']}s")
    for name, value, ok in rows:
        print(f"  {name:<{width}}  {ok:<4}  {value}")
    result["table"] = [{"figure": n, "value": v, "status": s} for n, v, s in rows]
    OUT.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"written to {OUT.relative_to(ROOT)}")
    return 0 if suite_rc == 0 and all(s == "ok" for _, _, s in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
