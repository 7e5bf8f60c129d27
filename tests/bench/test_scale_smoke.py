"""Small-scale smoke of the scale benchmark: the same code paths as `make bench`, on a fleet
of 1 subscription x 2 regions x 2 clusters and 200 workspaces, so `make test` notices when the
benchmark breaks or a plan stops being list-based (P1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import fleet, scale
from controller.loading import load

SMALL = fleet.Shape(subscriptions=1, workspaces=200, byos_links=10)


def test_generated_spec_and_estate_match_the_requested_shape(tmp_path: Path) -> None:
    """Scenario: the generator writes a spec tree that loads, with every cluster, workspace and BYOS
    link of the shape, and an applied estate that links every workspace to its cluster."""
    f = fleet.generate(SMALL)
    desired = load([str(fleet.write_spec(f, tmp_path / "spec"))])
    assert len(desired.clusters) == SMALL.clusters == 4
    entries = desired.workspace_entries()
    assert len(entries) == 200
    links = [(e.byos.query is not None) + (e.byos.alerts is not None) for e in entries.values() if e.byos]
    assert sum(links) == 10
    applied = fleet.estate(f, applied=True)
    assert {w["cluster"] for w in applied["workspaces"]} == {c.arm_id for c in f.clusters}
    empty = fleet.estate(f, applied=False)
    assert empty["clusters"] == [] and all("cluster" not in w for w in empty["workspaces"])


def test_critical_path_is_the_longest_weighted_chain() -> None:
    """Scenario: create (2 h) -> set_key (5 min) -> link (90 min) beats a lone create -> link chain,
    and BYOS steps weigh nothing."""
    dag = [
        {"id": "c1", "action": "create", "depends_on": []},
        {"id": "k1", "action": "set_key", "depends_on": ["c1"]},
        {"id": "l1", "action": "link", "depends_on": ["c1", "k1"]},
        {"id": "c2", "action": "create", "depends_on": []},
        {"id": "l2", "action": "link", "depends_on": ["c2"]},
        {"id": "b2", "action": "byos_link", "depends_on": ["l2"]},
    ]
    seconds, chain = scale.critical_path(dag, scale.DURATIONS)
    assert seconds == 7200 + 300 + 5400
    assert chain == ["create", "set_key", "link"]


@pytest.mark.timeout(120)
def test_small_fleet_plan_is_list_based_and_the_benchmark_completes(tmp_path: Path) -> None:
    """Scenario: against the applied small fleet, one plan makes no more ARM requests than the list
    minimum (P1 <= 1.1), changes nothing, and the per-resource baseline and a no-op reconcile run."""
    f = fleet.generate(SMALL)
    spec = fleet.write_spec(f, tmp_path / "spec")
    res = scale.measure_plan_side(f, spec, tmp_path, runs=1, baseline_runs=1, log=lambda s: None)
    # clusters, workspaces, Activity Log, vaults + BYOS reads + one principal read per identity (rule C7)
    assert res["P1"]["minimum"] == 3 + 1 + 10 + 4
    assert res["P1"]["ratio"] <= 1.1, res["P1"]
    assert res["P1"]["plan_changes"] == 0 and res["P1"]["reads_only"]
    assert res["P2"]["baseline_gets"] == 4 + 2 * 200  # one GET per cluster, workspace, linked service
    assert res["P4"]["exit_codes"] == [0]
    assert 0 < res["P4"]["peak_rss_mb_median"] < 300


@pytest.mark.timeout(120)
def test_tiny_apply_from_empty_converges_no_faster_than_its_critical_path(tmp_path: Path) -> None:
    """Scenario: one cluster and two workspaces applied from empty with real durations at a high time
    scale and ARM throttling on: apply succeeds without harm, its makespan is at least the DAG's
    critical path (create 2 h + link 90 min) and its lower bound, no request is throttled into a
    storm, and P3 reports what its figures need: reads against the budget, peak RSS, threads."""
    tiny = fleet.Shape(subscriptions=1, regions=1, clusters_per_region=1, workspaces=2, byos_links=1)
    f = fleet.generate(tiny)
    spec = fleet.write_spec(f, tmp_path / "spec")
    res = scale.measure_apply(
        f, spec, tmp_path, time_scale=36_000, parallelism=10, runs=1, log=lambda s: None
    )
    run = res["runs"][0]
    assert run["exit_code"] == 0, run["summary"]
    assert run["harm_events"] == 0
    assert run["critical_path_s"] == 7200 + 5400
    assert run["makespan_s"] >= run["critical_path_s"] * 0.99  # time-stamp granularity only
    assert run["max_429_on_one_path"] <= 3
    assert run["lower_bound_s"] >= run["critical_path_s"]
    assert res["ratio_to_lower_bound"] is not None and res["ratio_to_lower_bound"] >= 0.99
    assert res["links"] == 2 and not res["storm"]
    assert 0 < run["max_reads_one_subscription"] <= run["read_budget_one_subscription"]
    assert run["reads_by_kind"]["operation_status"] >= 1  # the watch read the operations' status
    assert 0 < res["peak_rss_mb"] < 500
    assert run["max_threads"] < 50  # no thread per in-flight operation
