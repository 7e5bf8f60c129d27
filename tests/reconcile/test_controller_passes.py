"""The controller against the emulator, with a real git repository as its source: commits are applied,
hand-made changes are reported or corrected under the spec's drift setting, deferred changes are picked
up when the simulated calendar allows (rule C4), terminal errors stall until the commit changes."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from gitops_repo import CLUSTER_PATH, GitRepo, MakeReconciler, seed, spec_docs, workspace_id

from controller.reconcile.loop import Mode
from controller.state.sqlite_store import SqliteHistoryStore

LINK_PUT = re.compile(r"/workspaces/law\d/linkedServices/cluster$", re.IGNORECASE)


def _writes(emulator: Any) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"]) for r in emulator.requests() if r["method"] in ("PUT", "PATCH", "DELETE")
    ]


def _cluster(emulator: Any) -> dict[str, Any]:
    r = emulator.arm("GET", CLUSTER_PATH)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _condition(rec: Any, type_: str) -> dict[str, Any]:
    return next(c for c in rec.status.snapshot()["conditions"] if c["type"] == type_)


def test_a_commit_is_applied_then_a_second_commit_then_nothing(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    seed(emulator)
    first = repo.commit_spec(spec_docs(workspaces=("law1",)), "cluster with law1")
    rec = make_reconciler(repo.url)

    out = rec.run_pass()
    assert out.record.result == "applied", out.record.message
    assert rec.status.last_applied_revision == first
    assert _condition(rec, "Ready")["status"] == "True"
    assert any(m == "PUT" and p.endswith(f"/clusters/{rec_cluster(p)}") for m, p in _writes(emulator))
    linked = [p for m, p in _writes(emulator) if m == "PUT" and LINK_PUT.search(p)]
    assert len(linked) == 1 and "/law1/" in linked[0]

    second = repo.commit_spec(spec_docs(workspaces=("law1", "law2")), "link law2 too")
    emulator.clear_requests()
    out = rec.run_pass()
    assert out.record.result == "applied"
    assert rec.status.last_applied_revision == second
    assert rec.status.last_attempted_revision == second
    writes = _writes(emulator)
    assert [p for m, p in writes if LINK_PUT.search(p)] == [
        p for p in [w[1] for w in writes] if "/law2/" in p and LINK_PUT.search(p)
    ]
    assert len(writes) == 1  # only law2's link: law1 and the cluster were already right

    emulator.clear_requests()
    out = rec.run_pass()
    assert out.record.result == "in-sync"
    assert _writes(emulator) == []
    passes = rec.status.snapshot()["passes"]
    assert [p["result"] for p in passes] == ["in-sync", "applied", "applied"]  # newest first
    rec.run_pass()
    journal = SqliteHistoryStore(rec.config.state_dir)
    try:  # the journal records each applied revision once, not every idle pass
        assert [r.revision for r in journal.revisions()] == [first, second]
    finally:
        journal.close()
    assert passes[-1]["revision"] == first


def rec_cluster(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def test_out_of_band_change_is_reported_in_report_mode_and_nothing_is_written(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler, tmp_path: Path
) -> None:
    seed(emulator)
    repo.commit_spec(spec_docs(tags={"team": "obs"}), "cluster")
    assert make_reconciler(repo.url).run_pass().record.result == "applied"
    r = emulator.arm("PATCH", CLUSTER_PATH, {"tags": {"team": "someone-else"}})
    assert r.status_code in (200, 202), r.text

    reporter = make_reconciler(repo.url, mode=Mode.REPORT, state=tmp_path / "state")
    emulator.clear_requests()
    out = reporter.run_pass()
    assert _writes(emulator) == []
    tags = [d for d in out.drift if d["field"] == "tags"]
    assert tags and tags[0]["desired"] == {"team": "obs"} and tags[0]["live"] == {"team": "someone-else"}
    assert tags[0]["cause"].startswith("changed outside cmkctl") and tags[0]["held"] is True
    status = reporter.status.snapshot()
    assert status["drift"] == out.drift
    outside = {(o["address"], o["path"]): o for o in status["changedOutside"]}  # vs. what the apply left
    team = outside[("cluster.cmkgitops01", "tags.team")]
    assert (team["before"], team["after"]) == ("obs", "someone-else")
    assert team["appliedRevision"] == repo.git("rev-parse", "HEAD")
    ready = _condition(reporter, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "DriftDetected"
    logged = [r for r in reporter.log.records if r["event"] == "drift"]
    assert any(r["field"] == "tags" for r in logged)
    assert _cluster(emulator)["tags"] == {"team": "someone-else"}


def test_out_of_band_change_is_corrected_in_apply_mode_when_the_spec_says_correct(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    seed(emulator)
    repo.commit_spec(spec_docs(tags={"team": "obs"}, drift="correct"), "cluster, drift corrected")
    rec = make_reconciler(repo.url)
    assert rec.run_pass().record.result == "applied"
    emulator.arm("PATCH", CLUSTER_PATH, {"tags": {"team": "someone-else"}})

    out = rec.run_pass()
    assert out.record.result == "applied", out.record.message
    assert any(d["field"] == "tags" for d in out.drift)  # reported, then corrected
    assert _cluster(emulator)["tags"] == {"team": "obs"}


def test_hand_made_change_is_only_reported_when_the_spec_keeps_the_default_drift_report(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    seed(emulator)
    repo.commit_spec(spec_docs(tags={"team": "obs"}), "cluster")
    rec = make_reconciler(repo.url)
    assert rec.run_pass().record.result == "applied"
    emulator.arm("PATCH", CLUSTER_PATH, {"tags": {"team": "someone-else"}})
    emulator.clear_requests()

    out = rec.run_pass()
    assert out.record.result == "drift"
    assert _writes(emulator) == []
    assert _cluster(emulator)["tags"] == {"team": "someone-else"}

    # an unrelated commit applies what it changed and still leaves the hand-made tag alone
    repo.commit_spec(spec_docs(tags={"team": "obs"}, workspaces=("law1", "law2")), "add law2")
    emulator.clear_requests()
    out = rec.run_pass()
    assert out.record.result == "drift", out.record.message
    assert [p for m, p in _writes(emulator)] and all(LINK_PUT.search(p) for m, p in _writes(emulator))
    assert _cluster(emulator)["tags"] == {"team": "someone-else"}

    # a commit that changes the tags themselves is intent for that field: it converges
    repo.commit_spec(spec_docs(tags={"team": "platform"}, workspaces=("law1", "law2")), "new owner")
    out = rec.run_pass()
    assert out.record.result == "applied", out.record.message
    assert _cluster(emulator)["tags"] == {"team": "platform"}


def test_deferred_decrease_is_applied_once_the_simulated_clock_passes_not_before(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    """Rule C4: a capacity decrease waits out the lock after the last SKU update; the controller requeues
    at that date rather than after its 10-minute interval, and applies it then."""
    seed(emulator)
    repo.commit_spec(spec_docs(capacity=2000), "cluster at 2000")
    rec = make_reconciler(repo.url, interval=600.0, jitter=0.0)
    assert rec.run_pass().record.result == "applied"
    repo.commit_spec(spec_docs(capacity=1000), "shrink to 1000")

    out = rec.run_pass()
    assert out.record.result == "deferred", out.record.message
    assert out.plan is not None and [d.rule for d in out.plan.deferred] == ["C4"]
    not_before = out.plan.deferred[0].not_before
    assert not_before is not None
    status = rec.status.snapshot()
    assert status["deferred"][0]["rule"] == "C4"
    assert datetime.fromisoformat(status["nextNotBefore"]) == not_before
    assert _condition(rec, "Reconciling")["status"] == "True"
    assert out.requeue_after == 600.0  # the interval is sooner than 30 days
    assert _cluster(emulator)["sku"]["capacity"] == 2000

    now = datetime.fromisoformat(emulator.now())
    emulator.advance((not_before - now).total_seconds() - 60)  # one minute before: still deferred
    out = rec.run_pass()
    assert out.record.result == "deferred"
    assert 1.0 <= out.requeue_after <= 60.0  # wakes at not_before, not after the interval
    emulator.advance(61)
    out = rec.run_pass()
    assert out.record.result == "applied", out.record.message
    assert _cluster(emulator)["sku"]["capacity"] == 1000
    assert rec.status.snapshot()["deferred"] == []


def test_invalid_spec_stalls_until_a_new_commit_fixes_it(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    seed(emulator)
    bad = repo.commit_spec(
        "apiVersion: cmk.azure.io/v1\nkind: Cluster\nmetadata: {name: x}\nspec: {}\n", "oops"
    )
    rec = make_reconciler(repo.url)
    out = rec.run_pass()
    assert out.record.result == "stalled"
    stalled = _condition(rec, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "SpecInvalid"
    assert "estate.yaml" in stalled["message"] and str(rec.config.state_dir) not in stalled["message"]
    assert rec.status.last_attempted_revision == bad and rec.status.last_applied_revision is None
    assert rec.run_pass().record.result == "stalled"  # same commit: still stalled
    assert _condition(rec, "Stalled")["message"] == stalled["message"]
    assert _condition(rec, "Stalled")["lastTransitionTime"] == stalled["lastTransitionTime"]
    assert _writes(emulator) == []

    good = repo.commit_spec(spec_docs(), "fixed")
    out = rec.run_pass()
    assert out.record.result == "applied", out.record.message
    assert rec.status.last_applied_revision == good
    assert _condition(rec, "Stalled")["status"] == "False"


def test_blocked_change_stalls_the_rest_is_applied_and_it_converges_once_fixed_without_a_commit(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    """A link to a workspace that does not exist can never run (the planner blocks it, rule W2)."""
    seed(emulator, workspaces=("law1",))
    repo.commit_spec(spec_docs(workspaces=("law1", "ghost")), "links a workspace that does not exist")
    rec = make_reconciler(repo.url)
    out = rec.run_pass()
    assert out.record.result == "stalled"
    stalled = _condition(rec, "Stalled")
    assert stalled["reason"] == "ChangesBlocked" and "workspace.ghost" in stalled["message"]
    assert any("/law1/" in p for _, p in _writes(emulator))  # what could run, ran
    emulator.clear_requests()
    assert rec.run_pass().record.result == "stalled"
    assert _writes(emulator) == []

    # the blocked item is re-evaluated every pass: once the workspace exists, the same commit links it
    seed(emulator, workspaces=("ghost",))
    out = rec.run_pass()
    assert out.record.result == "applied", out.record.message
    assert any(p.lower().endswith("/ghost/linkedservices/cluster") for _, p in _writes(emulator))
    assert _condition(rec, "Stalled")["status"] == "False"


def test_service_refusal_stalls_until_the_commit_changes(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    seed(emulator)
    emulator.fault(
        method="PUT",
        path="/clusters/cmkgitops01$",
        status=400,
        code="InvalidParameter",
        message="Injected refusal.",
    )
    repo.commit_spec(spec_docs(), "cluster")
    rec = make_reconciler(repo.url)
    out = rec.run_pass()
    assert out.record.result == "stalled", out.record.message
    assert _condition(rec, "Stalled")["reason"] == "ApplyFailed"
    assert "Injected refusal" in _condition(rec, "Stalled")["message"]
    emulator.clear_faults()
    emulator.clear_requests()
    assert rec.run_pass().record.result == "stalled"  # same commit: no new attempt
    assert _writes(emulator) == []
    repo.commit_spec(spec_docs(tags={"retry": "1"}), "try again")
    assert rec.run_pass().record.result == "applied"


def test_capacity_lock_refusal_is_a_deferral_to_the_date_azure_lifts_it_c4(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    """Azure's lock can outlast the profile's: the planner allows the decrease, Azure refuses it (rule
    C4, stating its own lock length). The controller defers it, without re-sending, to the date that
    refusal implies (not stalled until a commit), wakes then and applies the same commit once."""
    seed(emulator)
    repo.commit_spec(spec_docs(capacity=2000), "cluster")
    rec = make_reconciler(repo.url)
    assert rec.run_pass().record.result == "applied"
    emulator.advance(31 * 86400)  # past the profile's lock: the plan decreases now
    emulator.fault(
        method="PATCH",
        path="/clusters/cmkgitops01$",
        status=400,
        code="BadRequest",
        message="Capacity is locked for 45 days. Decreasing capacity is permitted 45 days after update.",
    )
    repo.commit_spec(spec_docs(capacity=1000), "decrease")
    out = rec.run_pass()
    assert out.record.result == "deferred", out.record.message
    assert "rule C4" in out.record.message
    assert _condition(rec, "Stalled")["status"] == "False"
    assert _condition(rec, "Reconciling")["status"] == "True"
    until = datetime.fromisoformat(rec.status.snapshot()["nextNotBefore"])
    assert round((until - datetime.fromisoformat(emulator.now())).total_seconds() / 86400) == 14
    assert [d["notBefore"] for d in rec.status.snapshot()["deferred"]] == [until.isoformat()]
    emulator.clear_faults()
    emulator.clear_requests()
    assert rec.run_pass().record.result == "deferred"  # before the date: nothing is sent
    assert _writes(emulator) == []
    emulator.advance(14 * 86400 + 60)
    assert rec.run_pass().record.result == "applied"
    assert _cluster(emulator)["sku"]["capacity"] == 1000


def test_transient_service_failure_retries_soon(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    seed(emulator)
    emulator.fault(method="PUT", path="/clusters/cmkgitops01$", status=503)
    repo.commit_spec(spec_docs(), "cluster")
    rec = make_reconciler(repo.url, busy_retry=5.0)
    out = rec.run_pass()
    assert out.record.result == "failed", out.record.message
    assert out.requeue_after == 5.0
    ready = _condition(rec, "Ready")
    assert ready["reason"] == "RetryableFailure" and _condition(rec, "Stalled")["status"] == "False"
    emulator.clear_faults()
    assert rec.run_pass().record.result == "applied"


def test_suspend_in_the_spec_repository_observes_and_changes_nothing(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    seed(emulator)
    repo.commit_spec(spec_docs(suspend=True), "suspended")
    rec = make_reconciler(repo.url)
    out = rec.run_pass()
    assert out.record.result == "suspended"
    assert _writes(emulator) == []
    assert any(d["field"] in ("create", "exists") or d["address"].startswith("cluster") for d in out.drift)
    assert rec.status.snapshot()["suspended"] is True
    assert _condition(rec, "Ready")["reason"] == "Suspended"


def test_lock_held_by_another_writer_means_retry_soon_not_failure(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler, tmp_path: Path
) -> None:
    from controller.state.file_lock import FileLock

    seed(emulator)
    repo.commit_spec(spec_docs(), "cluster")
    rec = make_reconciler(repo.url, busy_retry=7.0)
    with FileLock(tmp_path / "state", command="cmkctl apply -f ci"):
        out = rec.run_pass()
    assert out.record.result == "busy"
    assert out.requeue_after == 7.0
    assert "cmkctl apply -f ci" in _condition(rec, "Ready")["message"]
    assert _writes(emulator) == []
    assert rec.run_pass().record.result == "applied"


def test_workspace_ids_in_drift_name_the_missing_link(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    seed(emulator)
    repo.commit_spec(spec_docs(workspaces=("law1", "law3")), "two links")
    out = make_reconciler(repo.url, mode=Mode.REPORT).run_pass()
    ids = {d["resourceId"].lower() for d in out.drift}
    assert workspace_id("law3").lower() in ids or any("law3" in d["address"] for d in out.drift)


def test_a_restarted_controller_still_applies_a_deferred_change_when_its_date_comes(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    """With the default settings.drift: report, the pending C4 decrease is spec intent, not hand-made
    drift: a new controller process (same state volume) must still apply it at not_before."""
    seed(emulator)
    repo.commit_spec(spec_docs(capacity=2000), "cluster at 2000")
    assert make_reconciler(repo.url).run_pass().record.result == "applied"
    repo.commit_spec(spec_docs(capacity=1000), "shrink to 1000")
    out = make_reconciler(repo.url).run_pass()
    assert out.record.result == "deferred" and out.plan is not None
    not_before = out.plan.deferred[0].not_before
    assert not_before is not None
    emulator.advance((not_before - datetime.fromisoformat(emulator.now())).total_seconds() + 1)

    restarted = make_reconciler(repo.url)
    assert restarted.status.last_applied_revision == repo.git("rev-parse", "HEAD")
    out = restarted.run_pass()
    assert out.record.result == "applied", out.record.message
    assert _cluster(emulator)["sku"]["capacity"] == 1000


def test_stop_requested_before_a_step_starts_sends_nothing_and_leaves_no_open_operation(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler, tmp_path: Path
) -> None:
    from controller.state.sqlite_store import SqliteHistoryStore

    seed(emulator)
    repo.commit_spec(spec_docs(), "cluster")
    rec = make_reconciler(repo.url)
    rec.request_stop()  # SIGTERM arrived: the pass may observe, but must not start an operation
    out = rec.run_pass()
    assert out.record.result == "failed"
    assert _condition(rec, "Stalled")["status"] == "False"  # retried by the next pod, not stalled
    assert _condition(rec, "Ready")["reason"] == "ShuttingDown"
    assert _condition(rec, "Ready")["reason"] == "ShuttingDown"
    assert _writes(emulator) == []
    store = SqliteHistoryStore(tmp_path / "state")
    try:
        assert store.load().in_flight == ()
    finally:
        store.close()


def test_suspend_flag_changes_nothing_and_the_interval_is_jittered(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    import random

    seed(emulator)
    repo.commit_spec(spec_docs(), "cluster")
    rec = make_reconciler(repo.url, suspend=True, interval=600.0, jitter=0.1)
    rec.rng = random.Random(7)
    waits = {round(rec.run_pass().requeue_after, 3) for _ in range(6)}
    assert len(rec.status.snapshot()["passes"]) == 5  # /status keeps the last five
    assert _writes(emulator) == []
    assert rec.status.snapshot()["suspended"] is True
    assert len(waits) > 1 and all(540.0 <= w <= 660.0 for w in waits)  # replicas never align


def test_drift_from_a_new_commit_is_attributed_to_the_spec_not_to_the_live_side(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler, tmp_path: Path
) -> None:
    seed(emulator)
    repo.commit_spec(spec_docs(tags={"team": "obs"}), "cluster")
    assert make_reconciler(repo.url).run_pass().record.result == "applied"
    repo.commit_spec(spec_docs(tags={"team": "platform"}), "new owner")
    out = make_reconciler(repo.url, mode=Mode.REPORT, state=tmp_path / "state").run_pass()
    (tags,) = [d for d in out.drift if d["field"] == "tags"]
    assert tags["cause"].startswith("the spec changed")
    assert tags["desired"] == {"team": "platform"} and tags["live"] == {"team": "obs"}
