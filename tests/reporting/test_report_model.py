"""build_report and its renderers on hand-built states (no emulator): the cases a live estate rarely
shows on demand (identity None, access removed, a soft-deleted cluster, hostile names, many events)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "planning"))

from plan_builders import (
    NOW,
    PRINCIPAL,
    V1,
    V2,
    cluster,
    desired,
    good_key,
    good_vault,
    obs_cluster,
    obs_ws,
    observed,
    plan,
    ws_id,
    wsset,
)

from controller.model import ids
from controller.model.history import ClusterDeletion, History, LinkOperation
from controller.model.observed import KeyVersion, ObservedKey
from controller.reporting import build_report, report_metrics, to_html, to_json, to_markdown, to_text
from controller.reporting.html import TIMELINE_MAX_ROWS
from controller.reporting.model import Report


def _report(d, o, history: History | None = None) -> Report:  # type: ignore[no-untyped-def]
    h = history or History()
    return build_report(desired=d, observed=o, history=h, plan=plan(d, o, history=h), now=NOW)


def _codes(r: Report) -> list[tuple[str, str, str]]:
    return [(str(f.severity), f.code, f.subject) for f in r.findings]


def test_identity_none_is_critical_and_leaves_its_workspaces_unprotected() -> None:
    c = cluster(identity="None", revocation=True, version=None)
    oc = obs_cluster(c, identity_type="None", principal_id=None, associated_workspaces={
        ids.id_key(ws_id("wsp1")): NOW - timedelta(days=3)})
    r = _report(desired([c], [wsset("s", "prod1", [ws_id("wsp1")])]),
                observed([oc], [obs_ws("wsp1", cluster_id=c.arm_id)]))
    assert ("critical", "identity-none", "prod1") in _codes(r)
    assert r.findings[0].rule == "C12"
    assert r.workspaces[0].cmk_protected is False and r.counts.workspaces_expected_not_protected == 1


def test_access_policy_without_unwrap_is_revocation() -> None:
    c = cluster(version=None)
    vault = replace(good_vault(), access_policies=())
    r = _report(desired([c]), observed([obs_cluster(c)], vault=vault))
    revoked = [f for f in r.findings if f.code == "revoked"]
    assert [(f.severity, f.rule) for f in revoked] == [("critical", "K2")]
    assert r.clusters[0].vault is not None and r.clusters[0].vault.access_granted is False


def test_pinned_version_that_no_longer_exists_is_revocation() -> None:
    c = cluster(version=V2)
    r = _report(desired([c]), observed([obs_cluster(c)], key=good_key((V1, True))))
    [revoked] = [f for f in r.findings if f.code == "revoked"]
    assert revoked.rule == "K1" and V2 in revoked.message
    assert r.clusters[0].key is not None and r.clusters[0].key.exists is False
    assert not [f for f in r.findings if f.code == "revocation-risk"]  # already revoked, not "at risk"


def test_versionless_key_follows_the_newest_enabled_version() -> None:
    c = cluster(version=None)
    r = _report(desired([c]), observed([obs_cluster(c)], key=good_key((V1, True), (V2, True))))
    key = r.clusters[0].key
    assert key is not None and key.version_in_force == V2 and key.pinned is False
    assert not [f for f in r.findings if f.code in ("revocation-risk", "revoked")]


def test_workspace_linked_to_another_cluster_names_it() -> None:
    c, other = cluster("prod1"), cluster("other2")
    r = _report(desired([c], [wsset("s", "prod1", [ws_id("wsp1")])]),
                observed([obs_cluster(c), obs_cluster(other)], [obs_ws("wsp1", cluster_id=other.arm_id)]))
    [finding] = [f for f in r.findings if f.code == "not-protected"]
    assert "linked to other2" in finding.message and finding.subject == "wsp1"
    # it is on a CMK cluster, just not the declared one
    assert r.workspaces[0].cmk_protected is True and r.workspaces[0].linked_cluster == other.arm_id


def test_linked_since_falls_back_to_the_journal_without_associate_date() -> None:
    c = cluster()
    w, ck = ids.id_key(ws_id("wsp1")), ids.id_key(c.arm_id)
    history = History(link_operations=(
        LinkOperation(workspace_key=w, kind="link", at=NOW - timedelta(days=40), cluster_key=ck),
        LinkOperation(workspace_key=w, kind="unlink", at=NOW - timedelta(days=20)),
        LinkOperation(workspace_key=w, kind="link", at=NOW - timedelta(days=5), cluster_key=ck),
    ))
    r = _report(desired([c], [wsset("s", "prod1", [ws_id("wsp1")])]),
                observed([obs_cluster(c)], [obs_ws("wsp1", cluster_id=c.arm_id)]), history)
    ws = r.workspaces[0]
    assert ws.linked_since == NOW - timedelta(days=5) and ws.linked_since_source == "journal"
    assert ws.cmk_since == ws.linked_since
    assert ws.link_ops_used == 2 and ws.next_link_op_frees == NOW + timedelta(days=10)


def test_soft_deleted_cluster_name_release_is_on_the_calendar() -> None:
    c = cluster()
    gone = ClusterDeletion(cluster_key="/subscriptions/x/old", subscription="x", location="westeurope",
                           name="old1", at=NOW - timedelta(days=4))
    r = _report(desired([c]), observed([obs_cluster(c)]), History(cluster_deletions=(gone,)))
    [event] = [e for e in r.calendar if e.kind == "cluster-name-released"]
    assert event.date == NOW + timedelta(days=10) and event.rule == "C11" and event.subject == "old1"


def test_cluster_declared_but_missing_is_reported_without_protection() -> None:
    c = cluster()
    r = _report(desired([c], [wsset("s", "prod1", [ws_id("wsp1")])]), observed([], [obs_ws("wsp1")]))
    assert r.clusters[0].exists is False
    assert ("info", "cluster-missing", "prod1") in _codes(r)
    assert r.counts.workspaces_cmk_protected == 0 and r.counts.workspaces_expected_not_protected == 1


def test_metrics_are_the_report_counts_and_omit_an_unknown_expiry() -> None:
    c = cluster(version=None)
    expiring = ObservedKey(vault_uri=good_key().vault_uri, name="cmk", exists=True, current_version=V1,
                           versions=(KeyVersion(V1, True, NOW - timedelta(days=9), NOW + timedelta(days=3),
                                                None),), recovery_level="Recoverable")
    d = desired([c], [wsset("s", "prod1", [ws_id("wsp1"), ws_id("wsp2")])])
    linked = obs_cluster(c, associated_workspaces={ids.id_key(ws_id("wsp1")): NOW})
    o = observed([linked], [obs_ws("wsp1", cluster_id=c.arm_id), obs_ws("wsp2")], key=expiring)
    m = report_metrics(_report(d, o))
    assert m["cmk_workspaces_not_protected"] == 1 and m["cmk_workspaces_protected"] == 1
    assert m["cmk_key_expiry_days_min"] == 3.0
    no_expiry = report_metrics(_report(d, observed([linked], [obs_ws("wsp1", cluster_id=c.arm_id)])))
    assert "cmk_key_expiry_days_min" not in no_expiry


def test_html_escapes_names_from_azure_and_stays_self_contained() -> None:
    c = cluster()
    hostile = replace(obs_ws("wsp1", cluster_id=c.arm_id), id=ws_id("wsp1") + "<img src=x onerror=alert(1)>")
    r = _report(desired([c]), observed([obs_cluster(c)], [hostile]))
    page = to_html(r)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page and "Content-Security-Policy" in page


def test_timeline_is_capped_and_the_table_keeps_every_event() -> None:
    c = cluster()
    many = tuple(
        LinkOperation(workspace_key=ids.id_key(ws_id(f"wsp{i}")), kind="link",
                      at=NOW - timedelta(days=1, minutes=i))
        for i in range(TIMELINE_MAX_ROWS + 5)
    )
    r = _report(desired([c]), observed([obs_cluster(c)], [obs_ws(f"wsp{i}", cluster_id=c.arm_id)
                                                          for i in range(TIMELINE_MAX_ROWS + 5)]),
                History(link_operations=many))
    assert len(r.calendar) == TIMELINE_MAX_ROWS + 5
    page = to_html(r)
    assert page.count('class="event"') == TIMELINE_MAX_ROWS and "5 more events in the table below" in page


def test_text_markdown_and_json_say_the_same_thing() -> None:
    c = cluster(version=V1)
    d = desired([c], [wsset("s", "prod1", [ws_id("wsp1")])])
    r = _report(d, observed([obs_cluster(c)], [obs_ws("wsp1")], vault=good_vault(PRINCIPAL)))
    text, md = to_text(r), to_markdown(r)
    assert "0 of 1 workspaces CMK-protected, 1 expected but not" in text
    assert "| WARNING | wsp1 | expected on cluster prod1 but not linked" in md
    assert "NOT protected" in text and "NOT protected" in md
    back = Report.model_validate(json.loads(to_json(r)))
    assert back == r


def test_versionless_key_with_every_version_disabled_is_revocation() -> None:
    c = cluster(version=None)
    r = _report(desired([c]), observed([obs_cluster(c)], key=good_key((V1, False), (V2, False))))
    [revoked] = [f for f in r.findings if f.code == "revoked"]
    assert revoked.severity == "critical" and "no enabled version" in revoked.message


def test_key_vault_refusal_is_unknown_not_revoked_and_unmanaged_keys_are_not_findings() -> None:
    c, stranger = cluster("prod1"), cluster("other2", key="https://kv-other.vault.azure.net/")
    refused = replace(good_key(), readable=False, exists=False, versions=(), current_version=None)
    r = _report(desired([c]), observed([obs_cluster(c), obs_cluster(stranger)], key=refused))
    assert [(f.code, f.subject) for f in r.findings if f.code.startswith(("key-", "revoked"))] == [
        ("key-unreadable", "prod1")]
    other = next(cl for cl in r.clusters if cl.name == "other2")
    assert other.in_spec is False and other.key is not None and other.key.read is False
    assert "not read" in to_text(r)
