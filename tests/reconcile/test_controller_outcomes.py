"""The controller's pass outcomes as a platform team sees them: a bad commit does not blind it, a
refusal that names a date is a deferral to it, transient failures back off, blocked items converge
once fixed outside without a commit, and the log says what a long pass is doing."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from typing import Any

from gitops_repo import CLUSTER_PATH, RG, SUB, UAI_PRINCIPAL, GitRepo, MakeReconciler, seed, spec_docs

from controller.reconcile.logs import JsonLog, LogProgress
from controller.reconcile.loop import Result

VAULT_PATH = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.KeyVault/vaults/kvgitops"
BAD = "apiVersion: cmk.azure.io/v1\nkind: Cluster\nmetadata: {name: x}\nspec: {}\n"


def _writes(emulator: Any) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"]) for r in emulator.requests() if r["method"] in ("PUT", "PATCH", "DELETE")
    ]


def _condition(rec: Any, type_: str) -> dict[str, Any]:
    return next(c for c in rec.status.snapshot()["conditions"] if c["type"] == type_)


def test_a_bad_commit_keeps_drift_reported_against_the_last_good_revision_even_after_a_restart(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    seed(emulator)
    good = repo.commit_spec(spec_docs(tags={"team": "obs"}), "cluster")
    rec = make_reconciler(repo.url)
    assert rec.run_pass().record.result == "applied"
    repo.commit_spec(BAD, "oops")
    emulator.arm("PATCH", CLUSTER_PATH, {"tags": {"team": "someone-else"}})
    emulator.clear_requests()

    for reconciler in (rec, make_reconciler(repo.url)):  # the running one, then a rescheduled pod
        out = reconciler.run_pass()
        assert out.outcome is not None and out.outcome.result is Result.STALLED
        stalled = _condition(reconciler, "Stalled")
        assert stalled["reason"] == "SpecInvalid" and f"last good revision {good[:12]}" in stalled["message"]
        assert "1 resource(s) differ" in stalled["message"]
        status = reconciler.status.snapshot()
        assert [(d["field"], d["live"]) for d in status["drift"]] == [("tags", {"team": "someone-else"})]
        assert any(o["path"] == "tags.team" for o in status["changedOutside"])
        assert _writes(emulator) == []


def test_a_w3_refusal_is_deferred_to_the_end_of_its_window_not_stalled(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    """Rule W3 refused by Azure (the planner could not see the link history, e.g. the Activity Log was
    unreadable): the link waits until the window the refusal names has passed; the controller
    requeues at that date, never re-sends before it and keeps Stalled False."""
    seed(emulator)
    repo.commit_spec(spec_docs(workspaces=("law1",)), "cluster")
    rec = make_reconciler(repo.url)
    assert rec.run_pass().record.result == "applied"
    emulator.fault(
        method="PUT",
        path="/workspaces/law2/linkedServices/cluster$",
        status=400,
        code="BadRequest",
        message="A maximum of two workspace link operations on particular workspace is allowed in "
        "30 day period.",
    )
    repo.commit_spec(spec_docs(workspaces=("law1", "law2")), "link law2")
    out = rec.run_pass()
    assert out.record.result == "deferred", out.record.message
    assert (
        _condition(rec, "Stalled")["status"] == "False" and _condition(rec, "Reconciling")["status"] == "True"
    )
    now = datetime.fromisoformat(emulator.now())
    when = datetime.fromisoformat(rec.status.snapshot()["nextNotBefore"])
    assert timedelta(days=29, hours=23) < when - now <= timedelta(days=30)
    assert "law2" in rec.status.snapshot()["deferred"][0]["address"]
    emulator.clear_faults()
    emulator.clear_requests()
    assert rec.run_pass().record.result == "deferred"
    assert _writes(emulator) == []  # not re-sent before the date
    emulator.advance((when - now).total_seconds() + 60)
    out = rec.run_pass()
    assert out.record.result == "applied", out.record.message
    assert any("/law2/" in p for _, p in _writes(emulator))


def test_consecutive_transient_failures_back_off_exponentially_up_to_a_cap_then_reset(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    seed(emulator)
    emulator.fault(method="PUT", path="/clusters/cmkgitops01$", status=503)
    repo.commit_spec(spec_docs(), "cluster")
    rec = make_reconciler(repo.url, busy_retry=5.0, max_backoff=30.0)
    waits = [rec.run_pass().requeue_after for _ in range(5)]
    assert waits == [5.0, 10.0, 20.0, 30.0, 30.0]
    assert rec.status.snapshot()["consecutiveFailures"] == 5
    emulator.clear_faults()
    assert rec.run_pass().record.result == "applied"
    assert rec.status.snapshot()["consecutiveFailures"] == 0


def test_forbidden_and_busy_answers_are_retried_with_backoff_not_stalled(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    """A 403 (a role granted minutes ago) and a 409 "another operation in progress" are transient."""
    seed(emulator)
    repo.commit_spec(spec_docs(), "cluster")
    rec = make_reconciler(repo.url, busy_retry=5.0, busy_timeout=0.2)
    for status, code, message in (
        (403, "AuthorizationFailed", "The client does not have authorization to perform action."),
        (409, "Conflict", "Another operation on this or dependent resource is in progress."),
    ):
        emulator.clear_faults()
        emulator.fault(method="PUT", path="/clusters/cmkgitops01$", status=status, code=code, message=message)
        out = rec.run_pass()
        assert out.outcome is not None and out.outcome.result is Result.RETRY, out.record.message
        assert _condition(rec, "Stalled")["status"] == "False"
        assert _condition(rec, "Ready")["reason"] == "RetryableFailure"
    assert out.requeue_after == 10.0  # the second failure in a row
    emulator.clear_faults()
    assert rec.run_pass().record.result == "applied"


def test_a_key_access_refusal_converges_once_access_is_granted_outside_without_a_new_commit(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    """Rule C7: the spec says the identity was granted, the vault's access policies say it was not: the
    plan blocks the key (nothing is sent) and names the grant. Someone grants it in the portal; the
    next pass sees the vault changed and applies, same commit."""
    seed(emulator)
    grant = {
        "properties": {
            "accessPolicies": [
                {"objectId": UAI_PRINCIPAL, "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]}}
            ]
        }
    }
    r = emulator.arm("PUT", f"{VAULT_PATH}/accessPolicies/remove", grant, api_version="2023-07-01")
    assert r.status_code == 200, r.text
    docs = spec_docs()
    docs[0]["spec"]["key"] = {"vaultUri": "https://kvgitops.vault.azure.net/", "name": "cmk"}
    repo.commit_spec(docs, "cluster with its key")
    rec = make_reconciler(repo.url)
    out = rec.run_pass()
    assert out.record.result == "stalled", out.record.message
    assert _condition(rec, "Stalled")["reason"] == "ChangesBlocked"
    assert "C7" in out.record.message
    before = emulator.arm("GET", CLUSTER_PATH)
    assert before.status_code == 404 or not (before.json()["properties"].get("keyVaultProperties") or {}).get(
        "keyName"
    )  # the key is never sent where the vault would refuse it

    r = emulator.arm("PUT", f"{VAULT_PATH}/accessPolicies/add", grant, api_version="2023-07-01")
    assert r.status_code == 200, r.text
    out = rec.run_pass()
    assert out.record.result == "applied", out.record.message
    cluster = emulator.arm("GET", CLUSTER_PATH).json()
    assert cluster["properties"]["keyVaultProperties"]["keyName"] == "cmk"
    assert _condition(rec, "Stalled")["status"] == "False"
    assert _condition(rec, "Ready")["reason"] == "ReconciliationSucceeded"  # this pass's, not the refusal's


def test_a_pass_logs_its_steps_and_each_operation_start(
    emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler
) -> None:
    seed(emulator)
    repo.commit_spec(spec_docs(), "cluster")
    rec = make_reconciler(repo.url)
    rec.run_pass()
    events = [r["event"] for r in rec.log.records]
    steps = [r["step"] for r in rec.log.records if r["event"] == "pass.step"]
    assert steps[:5] == ["fetch", "load", "observe", "lock", "apply"]
    assert "step.started" in events and "step.finished" in events
    assert events.index("step.started") < events.index("step.finished") < events.index("pass")
    (last,) = [r for r in rec.log.records if r["event"] == "pass"]
    assert last["outcome"] == "succeeded"


def test_a_long_operation_gets_a_heartbeat_line_until_it_finishes() -> None:
    stream = io.StringIO()
    clock = [100.0]
    progress = LogProgress(JsonLog(stream=stream), heartbeat=0, monotonic=lambda: clock[0])
    progress.step_started("create:cluster:x", "cluster.x: create", 7200, "~2h")
    clock[0] += 2400
    progress.heartbeat_now()
    progress.step_finished("create:cluster:x", "done")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["step.started", "step.heartbeat", "step.finished"]
    assert lines[1]["running_seconds"] == 2400 and lines[1]["step"] == "cluster.x: create"
    progress.heartbeat_now()  # nothing runs: no line
    assert len(stream.getvalue().splitlines()) == 3
