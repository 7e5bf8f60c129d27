"""Scenario tests for workspace links: W1 (1000 per cluster), W2 (moves), W3 (2 ops / 30 days),
W4 (link after the cluster is ready), W5 (one op at a time), C8 (region), prune (W6)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from plan_builders import (
    NOW,
    SUB,
    by_id,
    cluster,
    cpath,
    desired,
    ids_of,
    obs_cluster,
    obs_ws,
    observed,
    plan,
    ws_id,
    wsset,
)

from controller.model import ids
from controller.model.compare import OWNER_TAG
from controller.model.history import AppliedResource, History, LinkOperation
from controller.model.limits import SEED
from controller.planning.held import workspace_record_key
from controller.planning.plan import Action, UnlinkParams

A, B = cluster("clA"), cluster("clB")


def _ops(ws: str, *days_ago: int) -> History:
    return History(link_operations=tuple(
        LinkOperation(workspace_key=ids.id_key(ws_id(ws)), kind="link" if i % 2 == 0 else "unlink",
                      at=NOW - timedelta(days=d)) for i, d in enumerate(days_ago)))


@pytest.mark.parametrize(
    ("days_ago", "expect_deferred_until"),
    [
        ((), None),                      # fresh workspace: link now
        ((40, 35), None),                # old operations have left the window
        ((20,), None),                   # one op in the window, a link needs one
        ((20, 5), NOW + timedelta(days=10)),  # two in the window: wait until the oldest leaves
    ],
)
def test_new_link_respects_the_w3_window(days_ago: tuple[int, ...], expect_deferred_until: object) -> None:
    p = plan(desired([A], [wsset("t", "clA", [ws_id("wks1")])]),
             observed([obs_cluster(A)], [obs_ws("wks1")]), history=_ops("wks1", *days_ago))
    if expect_deferred_until is None:
        assert [c.action for c in p.changes] == [Action.LINK]
    else:
        (d,) = p.deferred
        assert d.rule == "W3" and d.not_before == expect_deferred_until
        assert p.changes == ()


def test_move_is_unlink_then_link_when_two_operations_fit() -> None:
    p = plan(desired([A, B], [wsset("t", "clB", [ws_id("wks1")])]),
             observed([obs_cluster(A), obs_cluster(B)], [obs_ws("wks1", cluster_id=A.arm_id)]))
    unlink, link = f"unlink:{SUB}/rg-ws/wks1@clA", f"link:{SUB}/rg-ws/wks1@clB"
    assert ids_of(p.changes) == [unlink, link]
    assert unlink in by_id(p, link).depends_on
    assert by_id(p, unlink).parameters == UnlinkParams(workspace_id=ws_id("wks1"), cluster_id=A.arm_id)
    assert by_id(p, unlink).cluster_id == A.arm_id and by_id(p, link).cluster_id == B.arm_id


def test_move_that_cannot_finish_is_not_started() -> None:
    # one op 10 days ago: an unlink would fit, its relink would not -> both wait (W3, W6)
    p = plan(desired([A, B], [wsset("t", "clB", [ws_id("wks1")])]),
             observed([obs_cluster(A), obs_cluster(B)], [obs_ws("wks1", cluster_id=A.arm_id)]),
             history=_ops("wks1", 10))
    assert p.changes == ()
    assert {d.action for d in p.deferred} == {Action.LINK, Action.UNLINK}
    assert all(d.rule == "W3" and d.not_before == NOW + timedelta(days=20) for d in p.deferred)


def test_associate_date_counts_as_a_link_operation() -> None:
    live_a = obs_cluster(A, associated_workspaces={ids.id_key(ws_id("wks1")): NOW - timedelta(days=5)})
    p = plan(desired([A, B], [wsset("t", "clB", [ws_id("wks1")])]),
             observed([live_a, obs_cluster(B)], [obs_ws("wks1", cluster_id=A.arm_id)]))
    assert p.changes == ()
    assert {d.not_before for d in p.deferred} == {NOW + timedelta(days=25)}


def test_journal_and_associate_date_of_the_same_link_count_once() -> None:
    at = NOW - timedelta(days=5)
    live_a = obs_cluster(A, associated_workspaces={ids.id_key(ws_id("wks1")): at})
    hist = History(link_operations=(LinkOperation(workspace_key=ids.id_key(ws_id("wks1")), kind="link",
                                                  at=at + timedelta(minutes=3)),))
    # one op used -> a further single link (to a cluster it's not on) would fit; a move (2) doesn't
    p = plan(desired([A, B], [wsset("t", "clB", [ws_id("wks1")])]),
             observed([live_a, obs_cluster(B)], [obs_ws("wks1", cluster_id=A.arm_id)]), history=hist)
    assert {d.not_before for d in p.deferred} == {at + timedelta(days=30)}


def test_move_waits_for_a_target_cluster_still_being_created() -> None:
    p = plan(desired([A, B], [wsset("t", "clB", [ws_id("wks1")])]),
             observed([obs_cluster(A), obs_cluster(B, provisioning_state="Creating")],
                      [obs_ws("wks1", cluster_id=A.arm_id)]))
    assert p.changes == ()
    assert {(d.action, d.rule) for d in p.deferred} == {(Action.UNLINK, "W4"), (Action.LINK, "W4")}


def test_links_wait_for_a_key_update_in_progress() -> None:
    p = plan(desired([A], [wsset("t", "clA", [ws_id("wks1")])]),
             observed([obs_cluster(A, provisioning_state="Updating")], [obs_ws("wks1")]))
    (d,) = p.deferred
    assert d.rule == "W4" and d.not_before is None and "Updating" in d.reason


def test_link_in_progress_is_deferred_not_reissued() -> None:
    p = plan(desired([A], [wsset("t", "clA", [ws_id("wks1")])]),
             observed([obs_cluster(A)], [obs_ws("wks1", link_state="Updating")]))
    (d,) = p.deferred
    assert d.rule == "W5" and d.action == Action.LINK


def test_link_operation_of_ours_in_flight_is_deferred() -> None:
    from controller.model.history import InFlightOperation
    hist = History(in_flight=(InFlightOperation(op_id="link:x", action="link", target=ws_id("wks1").upper(),
                                                status_url=None, started=NOW),))
    p = plan(desired([A], [wsset("t", "clA", [ws_id("wks1")])]),
             observed([obs_cluster(A)], [obs_ws("wks1")]), history=hist)
    assert p.changes == () and [d.rule for d in p.deferred] == ["W5"]


def test_location_spelling_does_not_matter() -> None:
    p = plan(desired([A], [wsset("t", "clA", [ws_id("wks1")])]),
             observed([obs_cluster(A, location="West Europe")], [obs_ws("wks1", location="West Europe")]))
    assert [c.action for c in p.changes] == [Action.LINK] and p.blocked == ()


def test_workspace_in_another_region_is_blocked_c8() -> None:
    p = plan(desired([A], [wsset("t", "clA", [ws_id("wks1")])]),
             observed([obs_cluster(A)], [obs_ws("wks1", location="northeurope")]))
    (b,) = p.blocked
    assert b.rule == "C8" and "northeurope" in b.reason


def test_missing_workspace_is_blocked() -> None:
    p = plan(desired([A], [wsset("t", "clA", [ws_id("nope")])]), observed([obs_cluster(A)]))
    (b,) = p.blocked
    assert b.action == Action.LINK and "does not exist" in b.reason


def test_link_to_a_cluster_that_is_full_is_blocked_w1() -> None:
    limits = SEED.__class__(**{**{f: getattr(SEED, f) for f in SEED.__dataclass_fields__},
                               "workspaces_per_cluster": 2})
    live = [obs_ws("wsp1", cluster_id=A.arm_id), obs_ws("wsp2", cluster_id=A.arm_id), obs_ws("wsp3")]
    p = plan(desired([A], [wsset("t", "clA", [ws_id("wsp1"), ws_id("wsp2"), ws_id("wsp3")])]),
             observed([obs_cluster(A)], live), limits=limits)
    (b,) = p.blocked
    assert b.rule == "W1" and "wsp3" in b.id


def test_links_into_a_full_cluster_wait_for_the_unlinks_out_of_it() -> None:
    limits = SEED.__class__(**{**{f: getattr(SEED, f) for f in SEED.__dataclass_fields__},
                               "workspaces_per_cluster": 2})
    live = [obs_ws("wsp1", cluster_id=A.arm_id), obs_ws("wsp2", cluster_id=A.arm_id), obs_ws("wsp3")]
    d = desired([A, B], [wsset("a", "clA", [ws_id("wsp1"), ws_id("wsp3")]),
                         wsset("b", "clB", [ws_id("wsp2")])])
    p = plan(d, observed([obs_cluster(A), obs_cluster(B)], live), limits=limits)
    unlink = f"unlink:{SUB}/rg-ws/wsp2@clA"
    assert unlink in by_id(p, f"link:{SUB}/rg-ws/wsp3@clA").depends_on
    assert p.blocked == ()


def test_links_into_a_full_cluster_wait_while_the_unlinks_out_are_deferred() -> None:
    limits = SEED.__class__(**{**{f: getattr(SEED, f) for f in SEED.__dataclass_fields__},
                               "workspaces_per_cluster": 2})
    live = [obs_ws("wsp1", cluster_id=A.arm_id), obs_ws("wsp2", cluster_id=A.arm_id), obs_ws("wsp3")]
    d = desired([A, B], [wsset("a", "clA", [ws_id("wsp1"), ws_id("wsp3")]),
                         wsset("b", "clB", [ws_id("wsp2")])])
    # wsp2 can't move out yet (W3: two ops in the window), so wsp3 can't come in yet (W1)
    p = plan(d, observed([obs_cluster(A), obs_cluster(B)], live), limits=limits,
             history=_ops("wsp2", 3, 2))
    assert p.changes == ()
    rules = {x.id: x.rule for x in p.deferred}
    assert rules == {f"unlink:{SUB}/rg-ws/wsp2@clA": "W3", f"link:{SUB}/rg-ws/wsp2@clB": "W3",
                     f"link:{SUB}/rg-ws/wsp3@clA": "W1"}


OURS = {OWNER_TAG: "default"}  # the ownership tag of a cluster this scope created (no Settings: "default")


def test_prune_unlinks_only_with_opt_in() -> None:
    live = [obs_ws("wsp1", cluster_id=A.arm_id), obs_ws("stray", cluster_id=A.arm_id)]
    d_args = ([A], [wsset("a", "clA", [ws_id("wsp1")])])
    p = plan(desired(*d_args), observed([obs_cluster(A, tags=OURS)], live))
    assert p.changes == ()
    assert any(w.code == "prune-disabled" and "stray" in w.message for w in p.warnings)
    p = plan(desired(*d_args, prune={"workspaceLinks": True}), observed([obs_cluster(A, tags=OURS)], live))
    (ch,) = p.changes
    assert ch.action == Action.UNLINK and ch.destructive and "stray" in ch.id


def _ours_by_journal(how: str) -> History:
    if how == "applied":  # the last apply declared the workspace on clA
        return History(applied=(AppliedResource(key=workspace_record_key(ws_id("stray")), revision="r1",
                                                at=NOW - timedelta(days=3),
                                                intent={"cluster_id": ids.id_key(A.arm_id)}),))
    return History(link_operations=(  # an apply linked it into clA
        LinkOperation(workspace_key=ids.id_key(ws_id("stray")), kind="link", at=NOW - timedelta(days=40),
                      cluster_key=ids.id_key(A.arm_id), source="journal"),))


@pytest.mark.parametrize("how", ["applied", "link-operation"])
def test_prune_unlinks_a_link_the_journal_says_cmkctl_made(how: str) -> None:
    """Prune (W6) on a cluster cmkctl did not create: the link is ours when the journal records it."""
    live = [obs_ws("stray", cluster_id=A.arm_id)]
    d = desired([A], [], prune={"workspaceLinks": True})
    p = plan(d, observed([obs_cluster(A)], live), history=_ours_by_journal(how))
    assert [(c.action, c.address) for c in p.changes] == [(Action.UNLINK, "workspace.stray")]


def test_prune_reports_a_foreign_link_and_never_unlinks_it() -> None:
    """Rule W6: no journal record and a cluster without this scope's tag: reported, not unlinked. A
    record of another cluster, or a link into another cluster, does not make this link ours."""
    live = [obs_ws("stray", cluster_id=A.arm_id)]
    elsewhere = History(
        applied=(AppliedResource(key=workspace_record_key(ws_id("stray")), revision="r1", at=NOW,
                                 intent={"cluster_id": ids.id_key(B.arm_id)}),),
        link_operations=(LinkOperation(workspace_key=ids.id_key(ws_id("stray")), kind="link",
                                       at=NOW - timedelta(days=40), cluster_key=ids.id_key(B.arm_id)),))
    for tags in ({}, {OWNER_TAG: "another-scope"}):
        d = desired([A], [], prune={"workspaceLinks": True})
        p = plan(d, observed([obs_cluster(A, tags=tags)], live), history=elsewhere)
        assert p.changes == () and p.blocked == () and p.deferred == ()
        (w,) = [w for w in p.warnings if w.code == "prune-not-owned"]
        assert w.address == "workspace.stray" and w.rule == "W6" and "leaves it linked" in w.message
        assert any(d.address == "workspace.stray" and d.field == "cluster" for d in p.drift)


def test_prune_above_max_unlinks_is_blocked() -> None:
    live = [obs_ws(f"s{i}", cluster_id=A.arm_id) for i in range(3)]
    d = desired([A], [], prune={"workspaceLinks": True, "maxUnlinks": 2})
    p = plan(d, observed([obs_cluster(A, tags=OURS)], live))
    assert p.changes == ()
    assert len(p.blocked) == 3 and {b.rule for b in p.blocked} == {"W6"}


def test_workspace_in_a_set_without_cluster_is_not_pruned() -> None:
    live = [obs_ws("wsp1", cluster_id=A.arm_id)]
    p = plan(desired([A], [wsset("byos-only", None, [ws_id("wsp1")])], prune={"workspaceLinks": True}),
             observed([obs_cluster(A)], live))
    assert p.changes == ()


def test_every_link_of_a_new_cluster_waits_on_create_and_key() -> None:
    c = cluster("new1")
    names = [f"wsp{i}" for i in range(5)]
    p = plan(desired([c], [wsset("t", "new1", [ws_id(n) for n in names])]),
             observed([], [obs_ws(n) for n in names]))
    create, key = f"create:cluster:{cpath(c)}", f"set_key:cluster:{cpath(c)}"
    links = [ch for ch in p.changes if ch.action == Action.LINK]
    assert len(links) == 5 and all({create, key} <= set(ch.depends_on) for ch in links)
