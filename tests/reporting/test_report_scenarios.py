"""`cmkctl report --format json` through the emulator: seeded estates and history on the simulated
clock; each test asserts the dates and findings a security reviewer would read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from report_runner import ReportRunner
from tests_azure_support import (
    CLUSTER,
    KEY_V1,
    KEY_V2,
    RG,
    STORAGE_ID,
    SUB,
    cluster_doc,
    estate,
    workspace_id,
    workspace_set_doc,
)

from controller.model.history import ClusterDeletion, LinkOperation
from controller.state.sqlite_store import SqliteHistoryStore

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # the emulator fixture's clock
BYOS_WS1 = {"wks1": {"query": STORAGE_ID, "allowSavedSearchLoss": True}}


def _day(value: str | None) -> str | None:
    return value[:10] if value else None


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _estate_with_key(
    versions: list[dict[str, Any]], key_version: str = "", **vault_extra: Any
) -> dict[str, Any]:
    """The shared estate with the vault's key versions and the cluster's configured version replaced."""
    doc = estate(vault_overrides={"keys": [{"name": "cmk", "versions": versions}], **vault_extra})
    doc["clusters"][0]["key"]["keyVersion"] = key_version
    return doc


# ---- coverage: who is on the key, since when ---------------------------------------------------


def test_linked_workspace_is_protected_since_its_associate_date_and_unlinked_one_is_a_finding(
    emulator: Any, report: ReportRunner
) -> None:
    emulator.seed(estate())
    run = report([cluster_doc(), workspace_set_doc(["wks1", "wks2"], byos=BYOS_WS1)])
    assert run.exit_code == 0, run.stderr

    wks1 = run.workspace("wks1")
    assert wks1["cmk_protected"] is True
    assert _day(wks1["cmk_since"]) == "2026-11-20"  # rule W6: only data after the link is on the key
    assert wks1["linked_since_source"] == "associateDate"
    assert wks1["key_version"] == KEY_V2  # versionless: the key's newest enabled version is in force
    assert wks1["byos"] == {"query": STORAGE_ID}

    wks2 = run.workspace("wks2")
    assert wks2["cmk_protected"] is False and wks2["cmk_since"] is None
    [unprotected] = run.findings("not-protected")
    assert unprotected["subject"] == "wks2" and unprotected["rule"] == "W6"
    assert run.report["counts"]["workspaces_expected_not_protected"] == 1
    assert run.report["counts"]["workspaces_cmk_protected"] == 1

    clu = run.cluster(CLUSTER)
    assert clu["linked_workspaces"] == 1 and clu["workspace_limit"] == 1000  # rule W1
    assert clu["key"]["pinned"] is False and clu["provisioning_state"] == "Succeeded"


def test_link_budget_and_capacity_lock_dates_come_from_history(emulator: Any, report: ReportRunner) -> None:
    """wks1 was unlinked on 11-10 and linked on 11-20 (rule W3: 2 of 2 used); SKU updated 11-15 (C4)."""
    emulator.seed(estate())
    run = report([cluster_doc(), workspace_set_doc(["wks1"])])

    wks1 = run.workspace("wks1")
    assert wks1["link_ops_used"] == 2 and wks1["link_ops_limit"] == 2
    assert _day(wks1["next_link_op_frees"]) == "2026-12-10"
    [exhausted] = run.findings("link-budget-exhausted", "wks1")
    assert _day(exhausted["date"]) == "2026-12-10"
    assert exhausted["severity"] == "info"  # wks1 is where the spec wants it: nothing waits on the budget

    assert [_day(e["date"]) for e in run.events("link-budget-frees", "wks1")] == ["2026-12-10", "2026-12-20"]
    assert _day(run.cluster(CLUSTER)["capacity_decrease_from"]) == "2026-12-16"
    [lock] = run.events("capacity-lock-ends", CLUSTER)
    assert _day(lock["date"]) == "2026-12-16" and lock["rule"] == "C4"
    dates = [e["date"] for e in run.report["calendar"]]
    assert dates == sorted(dates)


def test_after_the_clock_moves_past_the_dates_they_leave_the_calendar(
    emulator: Any, report: ReportRunner
) -> None:
    emulator.seed(estate())
    emulator.set_clock("2026-12-16T00:00:00Z")
    run = report([cluster_doc(), workspace_set_doc(["wks1"])])

    wks1 = run.workspace("wks1")
    assert wks1["link_ops_used"] == 1  # the 11-10 unlink left the window on 12-10
    assert _day(wks1["next_link_op_frees"]) == "2026-12-20"
    assert run.findings("link-budget-exhausted") == []
    assert run.cluster(CLUSTER)["capacity_decrease_from"] is None  # C4 lock over: decrease possible now
    assert run.events("capacity-lock-ends") == []
    assert [_day(e["date"]) for e in run.report["calendar"]] == ["2026-12-20"]


def test_a_workspace_that_must_move_but_has_no_budget_is_a_warning_with_the_deferred_date(
    emulator: Any, report: ReportRunner
) -> None:
    """wks1 is expected on clu01 but linked nowhere, with its two operations used (rule W3): the plan
    defers the link, and the report says it is unprotected until the date the calendar shows."""
    doc = estate()
    wks1 = doc["workspaces"][0]
    wks1.pop("cluster")
    wks1.pop("linked_at")
    wks1["link_ops"] = [
        {"time": "2026-11-12T00:00:00Z", "kind": "link"},
        {"time": "2026-11-25T00:00:00Z", "kind": "unlink"},
    ]
    emulator.seed(doc)
    run = report([cluster_doc(), workspace_set_doc(["wks1"])])

    [exhausted] = run.findings("link-budget-exhausted", "wks1")
    assert exhausted["severity"] == "warning" and _day(exhausted["date"]) == "2026-12-12"
    [unprotected] = run.findings("not-protected", "wks1")
    assert "not linked" in unprotected["message"]
    deferred = run.events("deferred-change-possible", "wks1")
    assert deferred, run.report["calendar"]
    assert _day(deferred[0]["date"]) == "2026-12-12" and deferred[0]["rule"] == "W3"


def test_capacity_decrease_waiting_on_the_lock_is_a_dated_deferred_change(
    emulator: Any, report: ReportRunner
) -> None:
    doc = estate()
    doc["clusters"][0]["capacity"] = 1500
    emulator.seed(doc)
    run = report([cluster_doc(capacity=1000), workspace_set_doc(["wks1"])])

    deferred = run.events("deferred-change-possible", CLUSTER)
    assert [(_day(e["date"]), e["rule"]) for e in deferred] == [("2026-12-16", "C4")]
    assert run.cluster(CLUSTER)["capacity"] == 1500


# ---- what could break it: keys and vaults ------------------------------------------------------


def test_pinned_key_expiring_soon_is_a_revocation_risk_with_the_expiry_in_the_calendar(
    emulator: Any, report: ReportRunner
) -> None:
    expires = NOW + timedelta(days=10)
    emulator.seed(_estate_with_key(
        [
            {"version": KEY_V1, "enabled": True, "created": "2026-01-01T00:00:00Z",
             "expires": expires.isoformat().replace("+00:00", "Z")},
            {"version": KEY_V2, "enabled": True, "created": "2026-06-01T00:00:00Z"},
        ],
        key_version=KEY_V1,
    ))
    run = report([cluster_doc(key={"vaultUri": "https://kvtest01.vault.azure.net/", "name": "cmk",
                                   "version": KEY_V1}),
                  workspace_set_doc(["wks1"])])

    key = run.cluster(CLUSTER)["key"]
    assert key["pinned"] is True and key["version_in_force"] == KEY_V1
    assert key["enabled"] is True and key["newer_versions"] == 1
    assert _iso(key["expires"]) == expires

    [risk] = run.findings("revocation-risk", CLUSTER)
    assert risk["rule"] == "K1" and "1 newer version" in risk["message"]
    [expiring] = run.findings("key-expiring", CLUSTER)
    assert _iso(expiring["date"]) == expires and "in 10 days" in expiring["message"]
    [event] = run.events("key-expires", CLUSTER)
    assert _iso(event["date"]) == expires
    assert run.report["counts"]["days_to_nearest_key_expiry"] == 10.0
    assert run.workspace("wks1")["cmk_protected"] is True  # still protected today


def test_key_expiry_beyond_the_warning_window_is_only_a_calendar_event(
    emulator: Any, report: ReportRunner
) -> None:
    settings = {"apiVersion": "cmk.azure.io/v1", "kind": "Settings", "metadata": {"name": "s"},
                "spec": {"keyExpiryWarningDays": 7}}
    emulator.seed(_estate_with_key([
        {"version": KEY_V2, "enabled": True, "created": "2026-06-01T00:00:00Z",
         "expires": "2026-12-10T00:00:00Z"},
    ]))
    run = report([cluster_doc(), workspace_set_doc(["wks1"]), settings])
    assert run.findings("key-expiring") == []
    assert run.findings("revocation-risk") == []  # versionless: rotation follows the key
    assert [_day(e["date"]) for e in run.events("key-expires")] == ["2026-12-10"]


def test_disabled_pinned_version_is_revocation_and_its_workspaces_are_not_protected(
    emulator: Any, report: ReportRunner
) -> None:
    emulator.seed(_estate_with_key(
        [
            {"version": KEY_V1, "enabled": False, "created": "2026-01-01T00:00:00Z"},
            {"version": KEY_V2, "enabled": True, "created": "2026-06-01T00:00:00Z"},
        ],
        key_version=KEY_V1,
    ))
    run = report([cluster_doc(key={"vaultUri": "https://kvtest01.vault.azure.net/", "name": "cmk",
                                   "version": KEY_V1}),
                  workspace_set_doc(["wks1"])])

    first = run.report["findings"][0]
    assert (first["severity"], first["code"], first["subject"]) == ("critical", "revoked", CLUSTER)
    assert first["rule"] == "K2"
    wks1 = run.workspace("wks1")
    assert wks1["linked_cluster"] and wks1["cmk_protected"] is False
    assert "key is not in force" in run.findings("not-protected", "wks1")[0]["message"]
    assert run.report["counts"]["critical"] >= 1


def test_vault_without_purge_protection_is_not_recoverable(emulator: Any, report: ReportRunner) -> None:
    emulator.seed(estate(vault_overrides={"purgeProtection": False}))
    run = report([cluster_doc(), workspace_set_doc(["wks1"])])
    assert run.cluster(CLUSTER)["vault"]["recoverable"] is False
    [finding] = run.findings("vault-not-recoverable", CLUSTER)
    assert finding["rule"] == "C7" and finding["severity"] == "warning"


def test_recoverable_vault_has_no_vault_finding(emulator: Any, report: ReportRunner) -> None:
    emulator.seed(estate())
    run = report([cluster_doc(), workspace_set_doc(["wks1"])])
    assert run.cluster(CLUSTER)["vault"]["recoverable"] is True
    assert run.findings("vault-not-recoverable") == []


def test_findings_are_sorted_most_severe_first(emulator: Any, report: ReportRunner) -> None:
    emulator.seed(_estate_with_key(
        [{"version": KEY_V2, "enabled": True, "created": "2026-06-01T00:00:00Z",
          "expires": "2026-11-29T00:00:00Z"}],
        purgeProtection=False,
    ))
    run = report([cluster_doc(), workspace_set_doc(["wks1", "wks2"])])
    severities = [f["severity"] for f in run.report["findings"]]
    rank = {"critical": 0, "warning": 1, "info": 2}
    assert severities == sorted(severities, key=rank.__getitem__)
    codes = [f["code"] for f in run.report["findings"]]
    assert codes[0] == "key-expired"  # an expired version can't unwrap: the worst thing here
    assert codes.index("vault-not-recoverable") < codes.index("not-protected")  # the order
    assert run.report["counts"]["days_to_nearest_key_expiry"] < 0


# ---- history from our own journal ---------------------------------------------------------------


def test_the_local_journal_counts_toward_the_budget_and_dates_the_name_release(
    emulator: Any, report: ReportRunner, tmp_path: Path
) -> None:
    """wks2's unlink on 11-25 is only in our journal (not in the seeded Activity Log); a cluster we
    deleted on 11-28 keeps its name reserved for 14 days (rule C11)."""
    emulator.seed(estate())
    store = SqliteHistoryStore(tmp_path / "state")  # the runner's CMKCTL_STATE
    try:
        store.record_link_operation(LinkOperation(
            workspace_key=workspace_id("wks2").lower(), kind="unlink", at=datetime(2026, 11, 25, tzinfo=UTC)))
        store.record_cluster_deletion(ClusterDeletion(
            cluster_key=f"/subscriptions/{SUB}/resourcegroups/{RG}/providers/microsoft.operationalinsights/"
                        "clusters/old01".lower(),
            subscription=SUB, location="westeurope", name="old01", at=datetime(2026, 11, 28, tzinfo=UTC)))
    finally:
        store.close()

    run = report([cluster_doc(), workspace_set_doc(["wks1", "wks2"])])

    wks2 = run.workspace("wks2")
    assert wks2["link_ops_used"] == 1 and _day(wks2["next_link_op_frees"]) == "2026-12-25"
    [freed] = run.events("link-budget-frees", "wks2")
    assert _day(freed["date"]) == "2026-12-25"
    [released] = run.events("cluster-name-released", "old01")
    assert _day(released["date"]) == "2026-12-12" and released["rule"] == "C11"
