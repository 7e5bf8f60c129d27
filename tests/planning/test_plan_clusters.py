"""Scenario tests for cluster planning: creation order (C5), adoption, capacity (C3, C4), slots (C2,
C11), fixed fields (C9, C10), identity (C12, the UserAssigned → SystemAssigned sequence), busy (C6)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from plan_builders import (
    LOC,
    NOW,
    PRINCIPAL,
    SUB,
    UAI,
    V1,
    VAULT,
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
from controller.model.history import ClusterDeletion, History, InFlightOperation
from controller.model.limits import CURRENT, SEED
from controller.planning.plan import Action, CreateParams, KeyParams, Severity, UpdateParams


def test_empty_estate_builds_in_order_create_then_key_then_links() -> None:
    c = cluster()
    p = plan(desired([c], [wsset("t", "prod1", [ws_id("wks1")])]), observed(workspaces=[obs_ws("wks1")]))
    create, set_key, link = (f"create:cluster:{cpath(c)}", f"set_key:cluster:{cpath(c)}",
                             f"link:{SUB}/rg-ws/wks1@prod1")
    assert ids_of(p.changes) == [create, set_key, link]
    assert by_id(p, set_key).depends_on == (create,)
    assert set(by_id(p, link).depends_on) == {create, set_key}
    # rule C5: SystemAssigned can't carry the key at creation
    assert by_id(p, create).parameters.key is None
    want = {"type": "SystemAssigned", "user_assigned_identity": None}
    assert by_id(p, create).parameters.identity.model_dump() == want
    assert by_id(p, set_key).parameters.key.name == "cmk"
    assert p.summary.by_action == {Action.CREATE: 1, Action.SET_KEY: 1, Action.LINK: 1}


def test_granted_user_assigned_identity_sets_key_at_creation() -> None:
    c = cluster(identity="UserAssigned", granted=True)
    p = plan(desired([c]), observed())
    assert [ch.action for ch in p.changes] == [Action.CREATE]  # rule C5: no separate set_key
    params = p.changes[0].parameters
    assert isinstance(params, CreateParams)
    assert params.key == KeyParams(vault_uri=VAULT, name="cmk", version=V1)
    assert params.identity.user_assigned_identity == UAI


def test_create_parameters_follow_the_executor_convention() -> None:
    p = plan(desired([cluster(capacity=2000, tags={"env": "prod"})]), observed())
    params = p.changes[0].parameters
    assert isinstance(params, CreateParams)
    assert params.capacity == 2000 and params.location == LOC
    assert params.tags == {"env": "prod", OWNER_TAG: "default"}  # the ownership tag prune relies on
    assert params.availability_zones is None  # rule C9: unset in the spec, Azure decides by region


def test_matching_cluster_is_adopted_without_changes() -> None:
    c = cluster(tags={"env": "prod"})
    live = obs_cluster(c, location="westeurope", tags={"ENV": "prod"},
                       key=ids.KeyRef(vault_uri="https://KV-CMK.vault.azure.net/", name="CMK",
                                      version="A" * 32))
    p = plan(desired([c]), observed([live]))
    assert p.changes == () and p.deferred == () and p.blocked == ()
    assert not [d for d in p.drift if d.field != "key.version_state"]


@pytest.mark.parametrize(
    ("live_capacity", "last_update_days_ago", "expect"),
    [
        (1000, 90, "update"),      # increase: always now
        (2000, 40, "update"),      # decrease after the lock: now
        (2000, 10, "deferred"),    # decrease inside the lock: deferred to lastSkuUpdate + 31d (C4)
    ],
)
def test_capacity_change_respects_the_lock(live_capacity: int, last_update_days_ago: int,
                                          expect: str) -> None:
    c = cluster(capacity=1000 if live_capacity == 2000 else 2000)
    last = NOW - timedelta(days=last_update_days_ago)
    p = plan(desired([c]), observed([obs_cluster(c, capacity=live_capacity, last_sku_update=last)]))
    step = f"update:cluster:{cpath(c)}:capacity"
    if expect == "update":
        assert [ch.id for ch in p.changes] == [step]
        assert p.changes[0].parameters.capacity == c.spec.capacity
        assert p.deferred == ()
    else:
        assert p.changes == ()
        (d,) = p.deferred
        assert d.id == step  # the same id once it is due: the executor and reports can follow it
        assert d.rule == "C4" and d.not_before == last + timedelta(days=31)
        assert d.parameters.capacity == 1000


@pytest.mark.parametrize(("limits", "expect"), [(CURRENT, "deferred"), (SEED, "update")])
def test_decrease_on_day_30_waits_for_todays_31_day_lock_c4(limits: object, expect: str) -> None:
    """Rule C4: Azure's commitment period is 31 days today; the seed profile keeps the 2021 30 days."""
    c = cluster(capacity=1000)
    live = obs_cluster(c, capacity=2000, last_sku_update=NOW - timedelta(days=30, hours=1))
    p = plan(desired([c]), observed([live]), limits=limits)  # type: ignore[arg-type]
    got = "deferred" if p.deferred else "update"
    assert got == expect and [x.rule for x in p.deferred] == (["C4"] if expect == "deferred" else [])


def test_capacity_decrease_deferred_but_tags_change_now() -> None:
    c = cluster(capacity=1000, tags={"owner": "x"})
    live = obs_cluster(c, capacity=1500, last_sku_update=NOW - timedelta(days=3), tags={})
    p = plan(desired([c]), observed([live]))
    (upd,) = p.changes
    assert upd.parameters == UpdateParams(subscription=SUB, resource_group="rg-cmk", name="prod1",
                                          tags={"owner": "x"})
    assert [d.rule for d in p.deferred] == ["C4"]
    # a month later only the capacity step is left, under the id it was deferred with
    later = plan(desired([c]), observed([replace(live, tags={"owner": "x"})]), now=NOW + timedelta(days=31))
    assert [ch.id for ch in later.changes] == [p.deferred[0].id]


def test_capacity_not_allowed_by_profile_is_blocked() -> None:
    c = cluster(capacity=1000)
    c = c.model_copy(update={"spec": c.spec.model_copy(update={"capacity": 1050})})
    p = plan(desired([c]), observed())
    assert [(b.action, b.rule) for b in p.blocked] == [(Action.CREATE, "C3")]


@pytest.mark.parametrize("name", ["bad-name-", "-badname", "abc", "bad_name", "x" * 64])
def test_invalid_cluster_name_is_blocked_c1(name: str) -> None:
    c = cluster()
    c = c.model_copy(update={"spec": c.spec.model_copy(update={"name": name})})
    p = plan(desired([c]), observed())
    assert [(b.action, b.rule) for b in p.blocked] == [(Action.CREATE, "C1")]
    assert p.changes == () and [d.action for d in p.deferred] == []


def test_hyphenated_name_and_capacity_100_plan_a_create_under_the_default_profile() -> None:
    """Rules C1 and C3 as Azure enforces them today: the create is planned, nothing is blocked."""
    c = cluster(capacity=100)
    c = c.model_copy(update={"spec": c.spec.model_copy(update={"name": "cmk-prod-weu-01"})})
    p = plan(desired([c]), observed())
    assert p.blocked == ()
    create = p.changes[0]
    assert create.action is Action.CREATE and create.parameters.name == "cmk-prod-weu-01"
    assert create.parameters.capacity == 100


def test_capacity_1100_is_blocked_under_the_default_profile_c3() -> None:
    c = cluster(capacity=1000)
    c = c.model_copy(update={"spec": c.spec.model_copy(update={"capacity": 1100})})
    p = plan(desired([c]), observed())
    (b,) = p.blocked
    assert (b.action, b.rule) == (Action.CREATE, "C3") and "one of 100, 200" in b.reason


def _other(name: str, location: str = LOC, state: str = "Succeeded", owner: str | None = "default") -> object:
    """A live cluster the spec does not name; `owner` is its ownership tag (None: not created by cmkctl)."""
    return obs_cluster(cluster(name), provisioning_state=state, location=location,
                       tags={OWNER_TAG: owner} if owner is not None else {})


def test_third_cluster_in_a_region_is_blocked_under_the_seed_profile_c2() -> None:
    live = [_other("a1"), _other("a2")]
    p = plan(desired([cluster("new1"), cluster("a1"), cluster("a2")]), observed(live),  # type: ignore[list-item]
             limits=SEED)
    (b,) = p.blocked
    assert b.rule == "C2" and b.action == Action.CREATE and "new1" in b.address
    assert "2 of 2" in b.reason


def test_sixth_active_cluster_in_a_region_is_blocked_c2() -> None:
    """Rule C2 today: 5 active clusters per region and subscription (a third one is fine)."""
    names = [f"a{i}" for i in range(5)]
    live = [_other(n) for n in names]
    third = plan(desired([cluster("new1"), *(cluster(n) for n in names[:2])]), observed(live[:2]))  # type: ignore[list-item]
    assert third.blocked == () and Action.CREATE in [c.action for c in third.changes]

    p = plan(desired([cluster("new1"), *(cluster(n) for n in names)]), observed(live))  # type: ignore[list-item]
    (b,) = p.blocked
    assert b.rule == "C2" and "new1" in b.address and "5 of 5" in b.reason


def test_other_region_does_not_count_for_c2() -> None:
    live = [_other("a1", "northeurope"), _other("a2", "northeurope")]
    p = plan(desired([cluster("new1"), cluster("a1", location="northeurope"),
                      cluster("a2", location="northeurope")]), observed(live))  # type: ignore[list-item]
    assert p.blocked == () and Action.CREATE in [c.action for c in p.changes]


def test_delete_is_ordered_before_the_create_that_needs_its_slot() -> None:
    live = [_other("old1"), _other("keep1")]
    p = plan(desired([cluster("new1"), cluster("keep1")], prune={"clusters": True}),
             observed(live), limits=SEED)  # type: ignore[arg-type]
    delete = by_id(p, f"delete:cluster:{SUB}/rg-cmk/old1")
    create = by_id(p, f"create:cluster:{SUB}/rg-cmk/new1")
    assert delete.destructive and delete.action == Action.DELETE
    assert delete.id in create.depends_on
    assert ids_of(p.changes).index(delete.id) < ids_of(p.changes).index(create.id)


def test_create_waits_for_a_deferred_delete_that_frees_its_slot() -> None:
    live = [_other("old1", state="Updating"), _other("keep1")]
    p = plan(desired([cluster("new1"), cluster("keep1")], prune={"clusters": True}),
             observed(live), limits=SEED)  # type: ignore[arg-type]
    delete = by_id(p, f"delete:cluster:{SUB}/rg-cmk/old1")
    create = by_id(p, f"create:cluster:{SUB}/rg-cmk/new1")
    assert delete in p.deferred and delete.rule == "C6"
    assert create in p.deferred and create.rule == "C2" and delete.id in create.depends_on
    assert p.changes == ()


def test_without_prune_an_unmanaged_cluster_is_only_reported() -> None:
    p = plan(desired([cluster("keep1")]), observed([_other("old1"), _other("keep1")]))  # type: ignore[list-item]
    assert p.changes == ()
    assert any(w.code == "prune-disabled" and "old1" in w.message for w in p.warnings)
    assert any(d.address == "cluster.old1" for d in p.drift)


def test_current_profile_counts_soft_deleted_clusters_and_defers_until_one_frees() -> None:
    live = [_other(f"c{i}") for i in range(4)]
    deleted = [ClusterDeletion(cluster_key=f"k{i}", subscription=SUB, location=LOC, name=f"gone{i}",
                               at=NOW - timedelta(days=10 - i)) for i in range(3)]
    cs = [cluster(f"c{i}", capacity=1000) for i in range(4)] + [cluster("new1", capacity=1000)]
    p = plan(desired(cs, limitsProfile="current"), observed(live),  # type: ignore[arg-type]
             history=History(cluster_deletions=tuple(deleted)), limits=CURRENT)
    (d,) = [d for d in p.deferred if d.action == Action.CREATE]
    assert d.rule == "C11" and d.action == Action.CREATE
    # 4 active + 3 soft-deleted = 7 reserved: the oldest deletion frees a slot at +14 days
    assert d.not_before == deleted[0].at + timedelta(days=14)


def test_reserved_name_defers_create_until_14_days_after_deletion() -> None:
    c = cluster()
    at = NOW - timedelta(days=3)
    hist = History(cluster_deletions=(ClusterDeletion(cluster_key=ids.id_key(c.arm_id), subscription=SUB,
                                                      location=LOC, name="prod1", at=at),))
    p = plan(desired([c], [wsset("t", "prod1", [ws_id("wks1")])]), observed(workspaces=[obs_ws("wks1")]),
             history=hist)
    create = by_id(p, f"create:cluster:{cpath(c)}")
    assert create.rule == "C11" and create.not_before == at + timedelta(days=14)
    link = by_id(p, f"link:{SUB}/rg-ws/wks1@prod1")
    assert link in p.deferred and create.id in link.depends_on
    assert p.changes == ()


def test_double_encryption_change_is_blocked_c9() -> None:
    c = cluster(double_encryption=False)
    p = plan(desired([c]), observed([obs_cluster(c, double_encryption=True)]))
    (b,) = p.blocked
    assert b.rule == "C9" and "new cluster" in b.remedy


def test_resource_group_move_is_blocked_c10() -> None:
    old = cluster(rg="rg-old")
    new = cluster(rg="rg-new")
    p = plan(desired([new]), observed([obs_cluster(old)]))
    (b,) = p.blocked
    assert b.rule == "C10" and "rg-old" in b.reason
    assert p.changes == ()


@pytest.mark.parametrize("state", ["Creating", "Updating", "ProvisioningAccount", "Deleting"])
def test_busy_cluster_defers_its_updates_and_links(state: str) -> None:
    c = cluster(capacity=2000)
    p = plan(desired([c], [wsset("t", "prod1", [ws_id("wks1")])]),
             observed([obs_cluster(c, provisioning_state=state, capacity=1000)], [obs_ws("wks1")]))
    assert p.changes == ()
    rules = {d.action: d.rule for d in p.deferred}
    assert rules[Action.UPDATE] == "C6"
    assert rules[Action.LINK] == "W4"
    assert all(d.not_before is None for d in p.deferred)


def test_in_flight_operation_of_ours_makes_the_cluster_busy() -> None:
    c = cluster(capacity=2000)
    hist = History(in_flight=(InFlightOperation(op_id="x", action="update", target=c.arm_id.upper(),
                                                status_url=None, started=NOW),))
    p = plan(desired([c]), observed([obs_cluster(c, capacity=1000)]), history=hist)
    assert p.changes == () and [d.rule for d in p.deferred] == ["C6"]


def test_user_assigned_to_system_assigned_walks_the_four_steps() -> None:
    c = cluster()  # SystemAssigned
    live = obs_cluster(c, identity_type="UserAssigned", user_assigned_identities=(UAI,))
    p = plan(desired([c]), observed([live]))
    path = cpath(c)
    clear, ident = f"set_key:cluster:{path}:clear", f"update:cluster:{path}:identity"
    assert ids_of(p.changes) == [clear, ident]
    assert by_id(p, clear).parameters.key is None
    assert by_id(p, ident).depends_on == (clear,)
    want = {"type": "SystemAssigned", "user_assigned_identity": None}
    assert by_id(p, ident).parameters.identity.model_dump() == want
    assert isinstance(by_id(p, ident).parameters, UpdateParams)  # identity and key never in one operation
    (step4,) = p.deferred
    assert step4.action == Action.SET_KEY and step4.rule == "C7" and step4.depends_on == (ident,)
    assert step4.parameters.key.name == "cmk"


def test_switch_to_user_assigned_with_a_key_needs_granted_access() -> None:
    c = cluster(identity="UserAssigned")
    p = plan(desired([c]), observed([obs_cluster(c, identity_type="SystemAssigned",
                                                 user_assigned_identities=())]))
    (b,) = p.blocked
    assert b.rule == "C7" and "keyAccessGranted" in b.remedy


def test_identity_none_is_loud_and_destructive_with_opt_in() -> None:
    c = cluster(identity="None", revocation=True)
    p = plan(desired([c]), observed([obs_cluster(cluster())]))
    (ch,) = p.changes
    assert ch.destructive and ch.parameters.identity.type == "None"
    assert any(w.rule == "C12" and w.severity == Severity.CRITICAL for w in p.warnings)


def test_revoked_identity_is_blocked_c12() -> None:
    c = cluster()
    p = plan(desired([c]), observed([obs_cluster(c, identity_type="None")]))
    assert [b.rule for b in p.blocked] == ["C12"]


def test_failed_cluster_is_reprovisioned_before_its_links() -> None:
    """A cluster whose create Failed gets the PUT re-issued (ARM re-drives provisioning) and the
    workspace link waits on that repair (rule W4), instead of waiting forever."""
    c = cluster()
    p = plan(desired([c], [wsset("t", "prod1", [ws_id("wks1")])]),
             observed([obs_cluster(c, provisioning_state="Failed")], [obs_ws("wks1")]))
    repair, link = p.changes
    assert repair.action == Action.CREATE and repair.id.endswith(":repair")
    assert repair.after is not None and repair.after["provisioning_state"] == "Succeeded"
    assert link.action == Action.LINK and repair.id in link.depends_on
    assert any(w.code == "cluster-failed" and w.rule == "C6" for w in p.warnings)


def test_busy_cluster_is_not_repaired_twice() -> None:
    """While the re-provisioning runs (Creating), nothing is re-issued and the link waits (C6, W4)."""
    c = cluster()
    p = plan(desired([c], [wsset("t", "prod1", [ws_id("wks1")])]),
             observed([obs_cluster(c, provisioning_state="Creating")], [obs_ws("wks1")]))
    assert p.changes == ()
    (d,) = p.deferred
    assert d.action == Action.LINK and d.rule == "W4"


def test_principal_without_key_access_blocks_the_key_change() -> None:
    c = cluster(version="b" * 32)
    from plan_builders import good_key, good_vault
    live = obs_cluster(c, key=ids.KeyRef(vault_uri=VAULT, name="cmk", version=V1))
    o = observed([live], key=good_key(("a" * 32, True), ("b" * 32, True)), vault=good_vault("someone-else"))
    p = plan(desired([c]), o)
    (b,) = p.blocked
    assert b.rule == "C7" and PRINCIPAL in b.reason and "wrapKey" in b.remedy


def test_cluster_in_a_subscription_that_was_not_read_is_never_created() -> None:
    from plan_builders import SUB2
    p = plan(desired([cluster(sub=SUB2)]), observed())
    assert p.changes == ()
    (b,) = [b for b in p.blocked if b.action == Action.CREATE]
    assert "not read" in b.reason


def test_prune_deletes_only_clusters_this_scope_created() -> None:
    """A cluster in a managed resource group without this scope's ownership tag (created by hand, or
    by another cmkctl scope) is reported and never deleted, even with prune.clusters."""
    live = [_other("mine1"), _other("foreign1", owner=None), _other("theirs1", owner="team-b")]
    p = plan(desired([cluster("keep1")], prune={"clusters": True}), observed(live))  # type: ignore[arg-type]
    deletes = [c.address for c in p.changes if c.action == Action.DELETE]
    assert deletes == ["cluster.mine1"]
    notes = {w.address: w.message for w in p.warnings if w.code == "prune-not-owned"}
    assert set(notes) == {"cluster.foreign1", "cluster.theirs1"}
    assert "not created by cmkctl" in notes["cluster.foreign1"]
    assert "team-b" in notes["cluster.theirs1"]


def test_the_ownership_tag_is_not_drift_and_survives_a_tag_update() -> None:
    c = cluster(tags={"env": "prod"})
    adopted = plan(desired([c]), observed([obs_cluster(c, tags={"env": "prod", OWNER_TAG: "default"})]))
    assert adopted.changes == () and adopted.drift == ()
    retag = plan(desired([cluster(tags={"env": "test"})]),
                 observed([obs_cluster(c, tags={"env": "prod", OWNER_TAG: "default"})]))
    (update,) = [ch for ch in retag.changes if getattr(ch.parameters, "tags", None)]
    assert update.parameters.tags == {"env": "test", OWNER_TAG: "default"}  # type: ignore[union-attr]
