"""Rule W3 in the executor: only requests Azure accepted are journaled as spent; a request whose
outcome is unknown is (in doubt, spent); a refusal never is."""

from __future__ import annotations

from pathlib import Path

from exec_fakes import T0, FakeAzure, link, plan_of

from controller.azure import errors
from controller.execution.executor import Executor
from controller.state.sqlite_store import SqliteHistoryStore


def _apply(tmp_path: Path, azure: FakeAzure) -> SqliteHistoryStore:
    store = SqliteHistoryStore(tmp_path)
    azure.store = store
    ex = Executor(gateway=azure, store=store, sleep=lambda _s: None, now=lambda: T0)  # type: ignore[arg-type]
    assert ex.apply(plan_of(link("w1", "a"))).ok
    return store


def test_w3_a_refused_link_is_not_journaled_even_when_the_link_turns_out_done(tmp_path: Path) -> None:
    """Azure refuses our link with 409 (someone else's link of w1 is in process); by the retry w1 is
    linked. That operation was not ours: our journal must not spend w1's budget for it."""
    azure = FakeAzure()
    azure.faults["link-w1"].append(
        errors.Busy("Workspace link or unlink operation in process.", status=409, code="Conflict")
    )
    azure.lost_responses.add("link-w1")  # the other actor's link is in effect when we look again
    store = _apply(tmp_path, azure)
    assert store.load().link_operations == ()


def test_w3_a_link_whose_answer_was_lost_is_journaled_once_with_its_request_id(tmp_path: Path) -> None:
    """No answer: the link may have reached Azure. In doubt it counts, once, under the request id it
    was sent with (the Activity Log shows that id, so journal and Azure agree on one operation)."""
    azure = FakeAzure()
    azure.faults["link-w1"].append(errors.OutcomeUnknown("connection reset after sending"))
    azure.lost_responses.add("link-w1")
    store = _apply(tmp_path, azure)
    (op,) = store.load().link_operations
    assert op.kind == "link" and op.request_id
