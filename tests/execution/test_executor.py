"""Executor behaviour a user notices: order, skips, retries, journal-before-wait, resume, summary."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from exec_fakes import T0, FakeAzure, cluster_step, create, link, plan_of, workspace_id

from controller.azure import errors
from controller.execution.executor import Executor, StepStatus, summarise
from controller.model.history import InFlightOperation
from controller.model.rules import Rule
from controller.planning.plan import Action, Blocked, Change, Deferred
from controller.state.sqlite_store import SqliteHistoryStore


def _executor(
    tmp_path: Path, azure: FakeAzure, **kw: object
) -> tuple[Executor, SqliteHistoryStore, list[float]]:
    store = SqliteHistoryStore(tmp_path)
    azure.store = store
    slept: list[float] = []
    ex = Executor(gateway=azure, store=store, sleep=slept.append, now=lambda: T0, **kw)  # type: ignore[arg-type]
    return ex, store, slept


def test_failed_step_skips_descendants_and_summary_names_root_cause_only(tmp_path: Path) -> None:
    """Scenario: cluster 'a' fails to create (rule C2); its link is skipped, not reported as an error;
    cluster 'b' and its link on an independent branch still converge."""
    azure = FakeAzure()
    azure.faults["create-a"].append(
        errors.RuleViolation(
            "Azure said 400 BadRequest: too many clusters in region", rule_id=Rule.C2, code="BadRequest"
        )
    )
    plan = plan_of(
        create("a"), link("w1", "a", deps=("create-a",)), create("b"), link("w2", "b", deps=("create-b",))
    )
    ex, store, _ = _executor(tmp_path, azure)

    result = ex.apply(plan)

    status = {s.id: s.status for s in result.steps}
    assert status == {
        "create-a": StepStatus.FAILED,
        "link-w1": StepStatus.SKIPPED_UPSTREAM,
        "create-b": StepStatus.DONE,
        "link-w2": StepStatus.DONE,
    }
    assert [s.id for s in result.failed] == ["create-a"]
    lines = list(summarise(result))
    assert "1 failed, 1 skipped" in lines[0]
    assert any("too many clusters in region" in line for line in lines)  # Azure's message verbatim
    assert any("skipped because of it: workspace.w1" in line for line in lines)
    assert "link-w1" not in azure.sent
    assert [o["outcome"] for o in store.operations() if o["op_id"] == "create-a"] == ["failed"]


def test_already_done_steps_are_skipped_without_sending(tmp_path: Path) -> None:
    """Scenario: re-running an apply whose work is done sends nothing (idempotency)."""
    azure = FakeAzure(done={"create-a", "link-w1"})
    ex, store, _ = _executor(tmp_path, azure)
    result = ex.apply(plan_of(create("a"), link("w1", "a", deps=("create-a",))))
    assert [s.status for s in result.steps] == [StepStatus.ALREADY_DONE, StepStatus.ALREADY_DONE]
    assert azure.sent == []
    assert store.load().link_operations == ()  # nothing sent: no W3 budget spent


def test_throttled_patch_is_retried_after_retry_after(tmp_path: Path) -> None:
    """Scenario: Azure answers 429 Retry-After 7 twice (azure-core does not retry 429 on PATCH);
    the step waits 7 s each time and then succeeds."""
    azure = FakeAzure()
    for _ in range(2):
        azure.faults["create-a"].append(errors.Transient("429 throttled", retry_after=7.0, status=429))
    ex, _, slept = _executor(tmp_path, azure)
    result = ex.apply(plan_of(create("a")))
    assert result.ok
    assert slept == [7.0, 7.0]
    assert azure.sent == ["create-a"] * 3


def test_server_errors_back_off_exponentially_then_give_up(tmp_path: Path) -> None:
    """Scenario: a persistent 500 is retried with growing waits, then reported (not retried forever)."""
    azure = FakeAzure()
    azure.faults["create-a"].extend(errors.Transient("Azure said 500", status=500) for _ in range(10))
    ex, _, slept = _executor(tmp_path, azure, max_attempts=4, backoff=1.0)
    result = ex.apply(plan_of(create("a")))
    assert [s.status for s in result.steps] == [StepStatus.FAILED]
    assert "Azure said 500" in result.steps[0].message
    assert slept == [1.0, 2.0, 4.0]


def test_link_with_lost_response_is_reobserved_not_resent(tmp_path: Path) -> None:
    """Scenario: the link PUT reached Azure but the response was lost (outcome unknown). The retry
    re-reads first, finds the link in effect and does not send a second one (rule W3 budget)."""
    azure = FakeAzure()
    azure.faults["link-w1"].append(errors.OutcomeUnknown("sent, no response"))
    azure.lost_responses.add("link-w1")
    ex, store, _ = _executor(tmp_path, azure)
    result = ex.apply(plan_of(link("w1", "a")))
    assert result.steps[0].status is StepStatus.ALREADY_DONE
    assert azure.sent == ["link-w1"]
    assert [o.kind for o in store.load().link_operations] == ["link"]  # it did spend W3 budget


def test_rule_violation_is_not_retried(tmp_path: Path) -> None:
    """Scenario: a W3 refusal is final for this apply: one request, Azure's words in the result."""
    azure = FakeAzure()
    azure.faults["link-w1"].append(
        errors.RuleViolation(
            "Azure said 400 BadRequest: Operation limit of 2 link operations per 30 days", rule_id=Rule.W3
        )
    )
    ex, _, slept = _executor(tmp_path, azure)
    result = ex.apply(plan_of(link("w1", "a")))
    assert azure.sent == ["link-w1"]
    assert slept == []
    assert "Operation limit of 2 link operations per 30 days" in result.steps[0].message


def test_busy_cluster_is_waited_for_and_retried(tmp_path: Path) -> None:
    """Scenario: 'async operation in progress' (rule C6) makes the step wait and try again."""
    azure = FakeAzure()
    azure.faults["create-a"].append(
        errors.Busy("Azure said 400: async operation in progress", rule_id=Rule.C6)
    )
    ex, _, slept = _executor(tmp_path, azure)
    assert ex.apply(plan_of(create("a"))).ok
    assert len(slept) == 1
    assert azure.sent == ["create-a", "create-a"]


def test_token_is_journaled_before_waiting_and_link_time_recorded(tmp_path: Path) -> None:
    """Scenario: every LRO's token is in the journal before the wait begins (crash safety), and a
    completed link is recorded with its time for the W3 budget."""
    azure = FakeAzure()
    ex, store, _ = _executor(tmp_path, azure)
    assert ex.apply(plan_of(create("a"), link("w1", "a", deps=("create-a",)))).ok
    assert azure.journal_seen_before_wait == [True, True]
    (op,) = store.load().link_operations
    assert (op.kind, op.at) == ("link", T0)
    assert store.load().in_flight == ()


def test_links_into_one_cluster_run_in_parallel_one_per_workspace(tmp_path: Path) -> None:
    """Scenario: four links into cluster 'a' run side by side (each is its own workspace's operation,
    rule W5), while a link and a BYOS link on the same workspace w0 never overlap (W5)."""
    azure = FakeAzure(step_seconds=0.4)
    byos = Change(id="byos-w0", action=Action.BYOS_LINK, address="workspace.w0",
                  resource_id=workspace_id("w0"),
                  parameters={"workspace_id": workspace_id("w0"), "data_source_type": "Alerts",
                              "storage_account_id": "x"})
    changes = [link(f"w{i}", "a") for i in range(4)] + [byos]
    ex, _, _ = _executor(tmp_path, azure, parallelism=5)
    assert ex.apply(plan_of(*changes)).ok
    assert max(v for k, v in azure.max_active.items() if k.endswith("/a")) == 4
    first, second = sorted(("link-w0", "byos-w0"), key=lambda i: azure.timeline.index(("sent", i)))
    assert azure.timeline.index(("done", first)) < azure.timeline.index(("sent", second))  # W5


def test_accepted_operations_wait_without_holding_a_request_slot(tmp_path: Path) -> None:
    """Scenario: --parallelism 2 and six links of independent workspaces: at most two requests are
    being sent at once, but all six operations run in Azure together (a cluster's 1000 links take
    one link's time, not 500 waves of it)."""
    azure = FakeAzure(step_seconds=1.0, send_seconds=0.02)
    ex, _, _ = _executor(tmp_path, azure, parallelism=2)
    assert ex.apply(plan_of(*[link(f"w{i}", "a") for i in range(6)])).ok
    assert azure.max_sending == 2
    assert azure.max_total == 6


def test_cluster_operations_are_one_at_a_time(tmp_path: Path) -> None:
    """Scenario: a key step and a capacity update on cluster 'a' given no order between them still
    never overlap (rule C6), while cluster 'b' is created alongside."""
    azure = FakeAzure(step_seconds=0.05)
    key = cluster_step("a", Action.SET_KEY, "key-a")
    cap = cluster_step("a", Action.UPDATE, "cap-a")
    ex, _, _ = _executor(tmp_path, azure, parallelism=5)
    assert ex.apply(plan_of(key, cap, create("b"))).ok
    assert max(v for k, v in azure.max_active.items() if k.endswith("/a")) == 1
    assert azure.max_total == 2


def test_deferred_items_are_not_run_and_dates_are_repeated(tmp_path: Path) -> None:
    """Scenario: a capacity decrease deferred by rule C4 is not run; the summary repeats its date, and
    a change that depends on it is skipped."""
    when = T0 + timedelta(days=12)
    deferred = Deferred(
        id="update-a",
        action=Action.UPDATE,
        address="cluster.a",
        resource_id="x",
        rule="C4",
        reason="capacity decrease locked for 30 days",
        not_before=when,
    )
    azure = FakeAzure()
    ex, _, _ = _executor(tmp_path, azure)
    result = ex.apply(plan_of(create("b"), link("w1", "a", deps=("update-a",)), deferred=(deferred,)))
    assert azure.sent == ["create-b"]
    assert "skipped" in next(s.status for s in result.steps if s.id == "link-w1")
    assert any("rule C4" in line and "2026-12-12 05:00 UTC" in line for line in summarise(result))


def test_restart_resumes_recorded_operation_instead_of_reissuing(tmp_path: Path) -> None:
    """Scenario: a previous apply died while waiting for a cluster create and a link; the next apply
    resumes both from their journaled tokens, sends nothing new, and counts the link for W3."""
    store = SqliteHistoryStore(tmp_path)
    for op_id, action, target in (
        ("c", "create", create("a").resource_id),
        ("l", "link", workspace_id("w1")),
    ):
        store.begin_operation(InFlightOperation(op_id, action, target, None, T0))
        store.record_operation_sent(op_id, status_url="u", continuation_token=f"tok-{op_id}")
    azure = FakeAzure()
    ex, store, _ = _executor(tmp_path, azure)
    results = ex.resume_in_flight()
    assert [r.status for r in results] == [StepStatus.RESUMED, StepStatus.RESUMED]
    assert azure.resumed == [("create", "tok-c"), ("link", "tok-l")]
    assert azure.sent == []
    assert store.load().in_flight == ()
    assert [o.kind for o in store.load().link_operations] == ["link"]


def test_restart_reobserves_link_whose_outcome_is_unknown(tmp_path: Path) -> None:
    """Scenario: the apply died after journaling 'begin' of two links but before any token: one
    reached Azure (counts for W3), the other did not (costs nothing). Nothing is re-sent blindly."""
    store = SqliteHistoryStore(tmp_path)
    store.begin_operation(InFlightOperation("l1", "link", workspace_id("w1"), None, T0))
    store.begin_operation(InFlightOperation("l2", "link", workspace_id("w2"), None, T0))
    azure = FakeAzure(done={f"linked:{workspace_id('w1')}"})
    ex, store, _ = _executor(tmp_path, azure)
    ex.resume_in_flight()
    assert azure.sent == []
    assert [o.workspace_key for o in store.load().link_operations] == [workspace_id("w1").lower()]
    assert store.load().in_flight == ()


def test_blocked_items_are_repeated_with_their_remedy(tmp_path: Path) -> None:
    """Scenario: a key that can never be set as declared (rule C7) is not attempted; the summary says
    why and what the user must do."""
    blocked = Blocked(
        id="set_key-a",
        action=Action.SET_KEY,
        address="cluster.a",
        resource_id="x",
        rule="C7",
        reason="vault kv1 is not recoverable",
        remedy="enable purge protection on kv1",
    )
    azure = FakeAzure()
    ex, _, _ = _executor(tmp_path, azure)
    result = ex.apply(plan_of(blocked=(blocked,)))
    assert azure.sent == []
    expected = (
        "  blocked: cluster.a (rule C7): vault kv1 is not recoverable; to fix: enable purge protection on kv1"
    )
    assert expected in list(summarise(result))


def test_resumed_operation_that_failed_is_reported_and_left_to_the_replan(tmp_path: Path) -> None:
    """Scenario: the create a crashed apply was waiting for ended Failed. The restart reports Azure's
    error, closes the journal entry, and does not count it as this apply's failure: the re-plan that
    follows sees the live state and decides again."""
    store = SqliteHistoryStore(tmp_path)
    store.begin_operation(InFlightOperation("c", "create", create("a").resource_id, None, T0))
    store.record_operation_sent("c", status_url="u", continuation_token="tok-c")
    azure = FakeAzure(failed_operations={"tok-c"})
    ex, store, _ = _executor(tmp_path, azure)
    (res,) = ex.resume_in_flight()
    assert res.status is StepStatus.RESUME_FAILED
    assert "InternalError" in res.message
    assert store.load().in_flight == ()
    result = ex.apply(plan_of(create("a")))
    result.resumed = [res]
    assert result.ok
    assert azure.sent == ["create-a"]


def test_busy_cluster_does_not_tie_up_workers(tmp_path: Path) -> None:
    """Scenario: with two workers, four operations queue on cluster 'a' (one at a time, rule C6);
    cluster 'b', listed last, still starts at once instead of waiting behind them."""
    azure = FakeAzure(step_seconds=0.05)
    steps = [cluster_step("a", Action.UPDATE, f"upd{i}-a") for i in range(4)]
    ex, _, _ = _executor(tmp_path, azure, parallelism=2)
    assert ex.apply(plan_of(*steps, create("b"))).ok
    assert azure.finished.index("create-b") < 2


def test_skips_propagate_down_a_chain_in_any_order(tmp_path: Path) -> None:
    """Scenario: create fails; a key step depends on it and a link on the key step, the link listed
    first: both are skipped as upstream failures (never a false 'dependency cycle')."""
    azure = FakeAzure()
    azure.faults["create-a"].append(errors.Terminal("Azure said 400 BadRequest: nope"))
    key = cluster_step("a", Action.SET_KEY, "key-a", deps=("create-a",))
    ex, _, _ = _executor(tmp_path, azure)
    result = ex.apply(plan_of(link("w1", "a", deps=("key-a",)), key, create("a")))
    assert {s.id: s.status for s in result.steps} == {
        "link-w1": StepStatus.SKIPPED_UPSTREAM,
        "key-a": StepStatus.SKIPPED_UPSTREAM,
        "create-a": StepStatus.FAILED,
    }
    assert all(s.upstream == "create-a" for s in result.steps if s.status is StepStatus.SKIPPED_UPSTREAM)
