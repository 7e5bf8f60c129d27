"""Rule C8 (vault and cluster in the same region) uses the vault's region whenever observe knows it, even
when the vault resource is otherwise unreadable (its location can come from a listing)."""

from __future__ import annotations

from plan_builders import VAULT, by_id, cluster, cpath, desired, good_key, observed, plan

from controller.model.observed import ObservedVault


def test_unreadable_vault_in_another_region_blocks_the_key() -> None:
    c = cluster()
    vault = ObservedVault(uri=VAULT, readable=False, location="northeurope")
    p = plan(desired([c]), observed([], key=good_key(recovery="Recoverable"), vault=vault))
    blocked = by_id(p, f"set_key:cluster:{cpath(c)}")
    assert blocked in p.blocked and blocked.rule == "C8" and "northeurope" in blocked.reason


def test_unreadable_vault_in_the_same_region_is_not_blocked() -> None:
    c = cluster()
    vault = ObservedVault(uri=VAULT, readable=False, location=c.spec.location.upper())
    p = plan(desired([c]), observed([], key=good_key(recovery="Recoverable"), vault=vault))
    assert p.blocked == ()
