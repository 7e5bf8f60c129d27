"""Scenario tests for keys: validation before sending (C7, C8), rotation and revocation (K1)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plan_builders import (
    NOW,
    V1,
    V2,
    VAULT,
    by_id,
    cluster,
    cpath,
    desired,
    good_key,
    good_vault,
    obs_cluster,
    observed,
    plan,
)

from controller.model import ids
from controller.model.observed import KeyVersion, ObservedVault
from controller.planning.plan import Action, Severity


def _live(version: str = V1) -> object:
    return ids.KeyRef(vault_uri=VAULT, name="cmk", version=version)


def test_rotation_updates_the_cluster_to_the_new_version() -> None:
    c = cluster(version=V2)
    p = plan(desired([c]), observed([obs_cluster(c, key=_live(V1))], key=good_key((V1, True), (V2, True))))
    (ch,) = p.changes
    assert ch.action == Action.SET_KEY and ch.parameters.key.version == V2
    assert "K1" in ch.rules and ch.before == {"key": {"vault_uri": VAULT, "name": "cmk", "version": V1}}


def test_cluster_on_a_disabled_version_is_critical_drift_and_is_moved_to_the_new_one() -> None:
    c = cluster(version=V2)
    p = plan(desired([c]), observed([obs_cluster(c, key=_live(V1))], key=good_key((V1, False), (V2, True))))
    crit = [d for d in p.drift if d.severity == Severity.CRITICAL]
    assert crit and crit[0].rule == "K1"
    assert [ch.parameters.key.version for ch in p.changes] == [V2]


def test_cluster_on_a_deleted_version_with_unchanged_spec_is_critical_drift() -> None:
    c = cluster(version=V1)
    p = plan(desired([c]), observed([obs_cluster(c)], key=good_key((V2, True))))
    assert p.changes == ()
    assert any(d.severity == Severity.CRITICAL and d.rule == "K1" for d in p.drift)
    assert any(w.code == "key-revoked" and w.severity == Severity.CRITICAL for w in p.warnings)


@pytest.mark.parametrize(
    ("key", "vault", "rule", "words"),
    [
        (good_key((V1, True)), good_vault(purge=False), "C7", "not recoverable"),
        (good_key((V1, False)), None, "C7", "disabled"),
        (good_key((V2, True)), None, "C7", "does not exist"),
        (replace(good_key(), exists=False, versions=(), current_version=None), None, "C7", "does not exist"),
        (good_key((V1, True)), good_vault(location="northeurope"), "C8", "northeurope"),
    ],
)
def test_bad_key_blocks_set_key_and_defers_links(key: object, vault: object, rule: str, words: str) -> None:
    from plan_builders import obs_ws, ws_id, wsset
    c = cluster(version=V1)
    p = plan(desired([c], [wsset("t", "prod1", [ws_id("wks1")])]),
             observed([], [obs_ws("wks1")], key=key, vault=vault))  # type: ignore[arg-type]
    b = by_id(p, f"set_key:cluster:{cpath(c)}")
    assert b in p.blocked and b.rule == rule and words in b.reason
    link = by_id(p, "link:00000000-0000-0000-0000-000000000001/rg-ws/wks1@prod1")
    assert link in p.deferred and b.id in link.depends_on  # never link a cluster without its key (W4)
    assert [ch.action for ch in p.changes] == [Action.CREATE]


def test_unreadable_vault_falls_back_to_recovery_level() -> None:
    c = cluster(version=V1)
    unreadable = ObservedVault(uri=VAULT, readable=False)
    ok = plan(desired([c]), observed([], key=good_key(recovery="Recoverable"), vault=unreadable))
    assert ok.blocked == ()
    bad = plan(desired([c]), observed([], key=good_key(recovery="Recoverable+Purgeable"), vault=unreadable))
    assert [b.rule for b in bad.blocked] == ["C7"]


def test_pinned_version_while_a_newer_exists_is_info_not_a_change() -> None:
    c = cluster(version=V1)
    p = plan(desired([c]), observed([obs_cluster(c)], key=good_key((V1, True), (V2, True))))
    assert p.changes == ()
    assert any(w.code == "key-newer-version" and w.severity == Severity.INFO for w in p.warnings)


def test_versionless_spec_on_a_pinned_cluster_is_a_set_key() -> None:
    c = cluster(version=None)
    p = plan(desired([c]), observed([obs_cluster(c, key=_live(V1))]))
    (ch,) = p.changes
    assert ch.action == Action.SET_KEY and ch.parameters.key.version is None
    assert any(w.code == "key-versioning" and "auto-rotation" in w.message for w in p.warnings)


def test_key_expiring_soon_warns() -> None:
    c = cluster(version=V1)
    k = good_key()
    k = replace(k, versions=(KeyVersion(version=V1, enabled=True, created=None,
                                        expires=NOW + timedelta(days=5), not_before=None),))
    p = plan(desired([c]), observed([obs_cluster(c)], key=k))
    assert any(w.code == "key-expiring" for w in p.warnings)
    assert p.changes == ()


def test_access_removed_from_the_live_principal_is_a_critical_warning() -> None:
    c = cluster(version=V1)
    p = plan(desired([c]), observed([obs_cluster(c)], vault=good_vault("someone-else")))
    assert p.changes == () and p.blocked == ()
    assert any(w.code == "key-at-risk" and w.severity == Severity.CRITICAL and "wrapKey" in w.message
               for w in p.warnings)


_NAMES = st.from_regex(r"[a-z][a-z0-9-]{1,22}[a-z0-9]", fullmatch=True)


@given(name=_NAMES, suffix=st.sampled_from(["vault.azure.net", "managedhsm.azure.net"]),
       upper=st.booleans(), port=st.booleans(), slash=st.booleans())
def test_one_vault_uri_normalisation_makes_the_live_forms_equal(
    name: str, suffix: str, upper: bool, port: bool, slash: bool
) -> None:
    """`https://x.vault.azure.net:443` (as some api-versions answer) is the spec's
    `https://x.vault.azure.net/`, whatever the case; a non-default port is another endpoint."""
    host = f"{name}.{suffix}"
    live = f"https://{host.upper() if upper else host}{':443' if port else ''}{'/' if slash else ''}"
    assert ids.normalise_vault_uri(live) == ids.parse_vault_uri(f"https://{host}/") == f"https://{host}/"
    assert ids.normalise_vault_uri(ids.normalise_vault_uri(live)) == ids.normalise_vault_uri(live)
    assert ids.normalise_vault_uri(f"https://{host}:8443/") != f"https://{host}/"
    assert ids.normalise_vault_uri("not a uri") != f"https://{host}/"
