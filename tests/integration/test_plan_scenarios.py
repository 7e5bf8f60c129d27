"""`cmkctl plan --format json` end-to-end through the emulator: seeded estates on a simulated clock,
one scenario per planning rule, asserting on the JSON plan artefact a user (or CI) reads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from plan_runner import PlanRun, PlanRunner
from tests_azure_support import (
    CLUSTER,
    CLUSTER_ID,
    KEY_V1,
    KEY_V2,
    LOCATION,
    RG,
    STORAGE_ID,
    SUB,
    TENANT,
    VAULT_URI,
    cluster_doc,
    estate,
    vault,
    workspace_set_doc,
)

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # the emulator fixture's clock
BYOS_WS1 = {"wks1": {"query": STORAGE_ID, "allowSavedSearchLoss": True}}
CLUSTER_RG = {"subscription": SUB, "name": RG, "location": LOCATION}  # a create needs its resource group


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _ws(name: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "subscription": SUB,
        "resource_group": "rg-apps",
        "name": name,
        "location": LOCATION,
    }
    doc.update(extra)
    return doc


def _matching_spec(**cluster: Any) -> list[dict[str, Any]]:
    return [cluster_doc(**cluster), workspace_set_doc(["wks1"], byos=BYOS_WS1)]


# ---- the whole build and adoption --------------------------------------------------------------


def test_empty_estate_plans_the_ordered_build(emulator: Any, plan: PlanRunner) -> None:
    emulator.seed(
        {"resource_groups": [CLUSTER_RG], "vaults": [vault()], "workspaces": [_ws("wks1"), _ws("wks2")]}
    )
    run = plan([cluster_doc(), workspace_set_doc(["wks1", "wks2"])])
    assert run.exit_code == 2
    create = run.one("changes", "create", CLUSTER)
    set_key = run.one("changes", "set_key", CLUSTER)
    assert create["id"] in set_key["depends_on"]  # rule C5: SystemAssigned key after creation
    links = run.items("changes", "link")
    assert {ln["address"] for ln in links} == {"workspace.wks1", "workspace.wks2"}
    for ln in links:  # rule W4: never link before the cluster and its key are ready
        assert create["id"] in ln["depends_on"] and set_key["id"] in ln["depends_on"]
    assert run.plan["summary"]["by_action"]["create"] == 1 and run.plan["summary"]["by_action"]["link"] == 2


def test_existing_estate_that_matches_is_adopted_without_changes(emulator: Any, plan: PlanRunner) -> None:
    emulator.seed(estate())
    run = plan(_matching_spec())
    assert run.exit_code == 0, run.plan
    assert run.plan["changes"] == [] and run.plan["deferred"] == [] and run.plan["blocked"] == []


def test_user_assigned_identity_already_granted_sets_the_key_at_creation(
    emulator: Any, plan: PlanRunner
) -> None:
    uai = f"/subscriptions/{SUB}/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity"
    uai += "/userAssignedIdentities/id1"
    principal = "99999999-2222-4333-8444-555555555555"
    granted = {"objectId": principal, "tenantId": TENANT, "keys": ["get", "wrapKey", "unwrapKey"]}
    emulator.seed(
        {
            "resource_groups": [CLUSTER_RG],
            "vaults": [vault(accessPolicies=[granted])],
            "identities": [{"id": uai, "principal_id": principal}],
        }
    )
    run = plan(
        [
            cluster_doc(
                identity={"type": "UserAssigned", "userAssignedIdentity": uai, "keyAccessGranted": True}
            )
        ]
    )
    create = run.one("changes", "create", CLUSTER)
    assert run.items("changes", "set_key") == []  # rule C5: one operation, key in the create
    assert "key" in str(create.get("parameters", {})).lower()


def test_a_live_key_uri_with_port_443_matches_the_spec(emulator: Any, plan: PlanRunner) -> None:
    """Observe reads `https://<vault>.vault.azure.net:443` as the spec's `https://<vault>.vault.azure.net/`:
    no key drift, no set_key."""
    seeded = estate()
    seeded["clusters"][0]["key"]["keyVaultUri"] = "https://" + VAULT_URI[8:].rstrip("/").upper() + ":443"
    emulator.seed(seeded)
    run = plan(_matching_spec())
    assert run.exit_code == 0, run.plan
    assert run.plan["changes"] == [] and run.plan["drift"] == []


# ---- capacity (C4) -----------------------------------------------------------------------------


def test_capacity_decrease_waits_for_the_lock_and_says_until_when(emulator: Any, plan: PlanRunner) -> None:
    seeded = estate()
    seeded["clusters"][0].update(capacity=2000, last_sku_update="2026-11-15T00:00:00Z")
    emulator.seed(seeded)
    run = plan(_matching_spec(capacity=1000))
    assert run.exit_code == 2  # deferred work counts
    deferred = run.one("deferred", "update", CLUSTER)
    assert deferred["rule"] == "C4"
    assert _iso(deferred["not_before"]) == datetime(2026, 12, 16, tzinfo=UTC)  # lastSkuUpdate + 31 days
    assert run.items("changes", "update") == []


def test_capacity_decrease_after_the_lock_and_any_increase_run_now(emulator: Any, plan: PlanRunner) -> None:
    seeded = estate()
    seeded["clusters"][0].update(capacity=2000, last_sku_update="2026-10-01T00:00:00Z")
    emulator.seed(seeded)
    assert run_has_update(plan(_matching_spec(capacity=1000)))
    assert run_has_update(plan(_matching_spec(capacity=5000)))


def run_has_update(run: PlanRun) -> bool:
    return bool(run.items("changes", "update")) and not run.items("deferred")


# ---- region limits and names (C2, C11) ------------------------------------------------------------


def test_sixth_active_cluster_in_a_region_is_not_planned(emulator: Any, plan: PlanRunner) -> None:
    """Rule C2 today: 5 active clusters per region and subscription."""
    emulator.seed(
        {
            "resource_groups": [CLUSTER_RG],
            "vaults": [vault()],
            "clusters": [
                {"subscription": SUB, "resource_group": "rg-other", "name": f"other{n}", "location": LOCATION}
                for n in "abcde"
            ],
        }
    )
    run = plan([cluster_doc()])
    assert run.items("changes", "create") == []
    refused = run.items("blocked", "create") + run.items("deferred", "create")
    assert [r["rule"] for r in refused] == ["C2"]


def test_name_of_a_recently_deleted_cluster_is_blocked_until_it_frees(
    emulator: Any, plan: PlanRunner
) -> None:
    emulator.seed(
        {
            "vaults": [vault()],
            "clusters": [
                {
                    "subscription": SUB,
                    "resource_group": RG,
                    "name": CLUSTER,
                    "location": LOCATION,
                    "deleted": "2026-11-25T00:00:00Z",
                }
            ],
        }
    )
    # the local journal knows about the deletion (the emulator's GET says 404, like Azure)
    from controller.model.history import ClusterDeletion
    from controller.state.sqlite_store import SqliteHistoryStore

    store = SqliteHistoryStore(plan.tmp_path / "state")
    store.record_cluster_deletion(
        ClusterDeletion(CLUSTER_ID.lower(), SUB, LOCATION, CLUSTER, datetime(2026, 11, 25, tzinfo=UTC))
    )
    store.close()
    run = plan([cluster_doc()])
    assert run.items("changes", "create") == []
    refused = run.items("blocked", "create") + run.items("deferred", "create")
    assert [r["rule"] for r in refused] == ["C11"]
    assert "2026-12-09" in str(refused[0])  # deleted + 14 days


# ---- links (C6/W4, W3, W2) ------------------------------------------------------------------------


def test_no_link_while_the_cluster_is_still_provisioning(emulator: Any, plan: PlanRunner) -> None:
    seeded = estate()
    seeded["clusters"][0].update(provisioning_state="Creating", remaining_seconds=3600)
    seeded["workspaces"] = [_ws("wks2")]
    emulator.seed(seeded)
    run = plan([cluster_doc(), workspace_set_doc(["wks2"])])
    assert run.items("changes", "link") == []
    deferred = run.one("deferred", "link", "wks2")
    assert deferred["rule"] in ("C6", "W4")


def test_link_budget_exhausted_defers_until_the_window_frees(emulator: Any, plan: PlanRunner) -> None:
    seeded = estate()
    seeded["workspaces"].append(
        _ws(
            "wks3",
            link_ops=[
                {"time": "2026-11-05T00:00:00Z", "kind": "link"},
                {"time": "2026-11-20T00:00:00Z", "kind": "unlink"},
            ],
        )
    )
    emulator.seed(seeded)
    run = plan([cluster_doc(), workspace_set_doc(["wks1", "wks3"], byos=BYOS_WS1)])
    assert run.items("changes", "link") == []
    deferred = run.one("deferred", "link", "wks3")
    assert deferred["rule"] == "W3"
    # the older operation leaves the 30-day window on 2026-12-05
    assert (
        _iso(deferred["not_before"]).date() == (datetime(2026, 11, 5, tzinfo=UTC) + timedelta(days=30)).date()
    )


def test_a_move_that_could_not_finish_is_not_started(emulator: Any, plan: PlanRunner) -> None:
    """wks4 sits on another cluster and had one link this month: unlink + relink would be 3 > 2 (W3),
    leaving it on Microsoft keys (W6). Neither half may run now."""
    seeded = estate()
    other = (
        f"/subscriptions/{SUB}/resourceGroups/rg-other/providers/Microsoft.OperationalInsights/clusters/clu02"
    )
    seeded["clusters"].append(
        {"subscription": SUB, "resource_group": "rg-other", "name": "clu02", "location": LOCATION}
    )
    seeded["workspaces"].append(
        _ws(
            "wks4",
            cluster=other,
            linked_at="2026-11-20T00:00:00Z",
            link_ops=[{"time": "2026-11-20T00:00:00Z", "kind": "link"}],
        )
    )
    emulator.seed(seeded)
    run = plan([cluster_doc(), workspace_set_doc(["wks1", "wks4"], byos=BYOS_WS1)])
    assert [c for c in run.plan["changes"] if "wks4" in c["address"]] == []
    deferred = [d for d in run.plan["deferred"] if "wks4" in d["address"]]
    assert deferred and all(d["rule"] == "W3" for d in deferred)
    assert all(d["not_before"] or d["depends_on"] for d in deferred)


# ---- keys (C7, C8, K1) ---------------------------------------------------------------------------

KEY_BLOCKS: list[Any] = [
    ("vault without purge protection", {"purgeProtection": False}, "C7"),
    ("key missing", {"keys": []}, "C7"),
    ("vault in another region", {"location": "eastus"}, "C8"),
]


@pytest.mark.parametrize(("name", "vault_change", "rule"), KEY_BLOCKS)
def test_key_problems_block_the_key_step_with_the_rule(
    emulator: Any, plan: PlanRunner, name: str, vault_change: dict[str, Any], rule: str
) -> None:
    seeded = estate(vault_overrides=vault_change)
    seeded["clusters"][0]["key"] = None  # the key is still to be set
    emulator.seed(seeded)
    run = plan(_matching_spec())
    assert run.items("changes", "set_key") == []
    blocked = run.one("blocked", "set_key", CLUSTER)
    assert blocked["rule"] == rule
    assert blocked["reason"] and blocked["remedy"]


def test_key_rotation_moves_to_the_new_version_and_flags_a_disabled_one(
    emulator: Any, plan: PlanRunner
) -> None:
    seeded = estate(
        vault_overrides={
            "keys": [
                {
                    "name": "cmk",
                    "versions": [
                        {"version": KEY_V1, "enabled": False, "created": "2026-01-01T00:00:00Z"},
                        {"version": KEY_V2, "enabled": True, "created": "2026-06-01T00:00:00Z"},
                    ],
                }
            ]
        }
    )
    seeded["clusters"][0]["key"]["keyVersion"] = KEY_V1
    emulator.seed(seeded)
    run = plan(
        _matching_spec(
            key={"vaultUri": "https://kvtest01.vault.azure.net/", "name": "cmk", "version": KEY_V2}
        )
    )
    set_key = run.one("changes", "set_key", CLUSTER)
    assert KEY_V2 in str(set_key["parameters"]) or KEY_V2 in str(set_key.get("after"))
    critical = [d for d in run.plan["drift"] if d["severity"] == "critical"]
    critical += [w for w in run.plan["warnings"] if w["severity"] == "critical"]
    assert critical and any(KEY_V1 in str(c) or "K1" in str(c) for c in critical)


# ---- fixed-at-creation and opt-ins (C9, B2, prune) ----------------------------------------------


def test_double_encryption_change_is_blocked(emulator: Any, plan: PlanRunner) -> None:
    emulator.seed(estate())  # seeded with double encryption on (the default)
    run = plan(_matching_spec(doubleEncryption=False))
    blocked = [b for b in run.plan["blocked"] if b["rule"] == "C9"]
    assert len(blocked) == 1 and CLUSTER in blocked[0]["address"]
    assert "new cluster" in (blocked[0]["remedy"] + blocked[0]["reason"]).lower()


def test_byos_query_without_opt_in_is_refused(emulator: Any, plan: PlanRunner) -> None:
    emulator.seed(estate())
    run = plan(
        [cluster_doc(), workspace_set_doc(["wks1", "wks2"], byos={**BYOS_WS1, "wks2": {"query": STORAGE_ID}})]
    )
    assert [c for c in run.items("changes", "byos_link") if "wks2" in c["address"]] == []
    refused = [b for b in run.plan["blocked"] if "wks2" in b["address"] and b["rule"] == "B2"]
    assert len(refused) == 1 and "saved search" in refused[0]["reason"].lower()


def test_byos_query_with_opt_in_is_planned_with_a_loud_warning(emulator: Any, plan: PlanRunner) -> None:
    emulator.seed(estate())
    byos = {**BYOS_WS1, "wks2": {"query": STORAGE_ID, "allowSavedSearchLoss": True}}
    run = plan([cluster_doc(), workspace_set_doc(["wks1", "wks2"], byos=byos)])
    change = run.one("changes", "byos_link", "wks2")
    assert change["destructive"] or change["warnings"]


def test_workspace_no_longer_named_is_not_unlinked_without_prune(emulator: Any, plan: PlanRunner) -> None:
    seeded = estate()
    seeded["workspaces"].append(_ws("wks5", cluster=CLUSTER_ID, linked_at="2026-10-01T00:00:00Z"))
    emulator.seed(seeded)
    run = plan(_matching_spec())
    assert run.items("changes", "unlink") == []
    assert "wks5" in str(run.plan["warnings"]) + str(run.plan["drift"]) + str(run.plan["blocked"])


def test_workspace_linked_elsewhere_is_reported_not_moved_silently(emulator: Any, plan: PlanRunner) -> None:
    seeded = estate()
    seeded["workspaces"].append(
        _ws(
            "wks6",
            cluster="/subscriptions/" + SUB + "/resourceGroups/rg-other/providers/"
            "Microsoft.OperationalInsights/clusters/clu09",
            linked_at="2026-09-01T00:00:00Z",
        )
    )
    seeded["clusters"].append(
        {"subscription": SUB, "resource_group": "rg-other", "name": "clu09", "location": LOCATION}
    )
    emulator.seed(seeded)
    run = plan([cluster_doc(), workspace_set_doc(["wks1", "wks6"], byos=BYOS_WS1)])
    unlink = run.one("changes", "unlink", "wks6")
    link = run.one("changes", "link", "wks6")
    assert unlink["id"] in link["depends_on"]  # rule W2: unlink before relink


# ---- CLI contract ---------------------------------------------------------------------------------


def test_spec_error_exits_1_without_traceback(emulator: Any, plan: PlanRunner) -> None:
    run = plan([cluster_doc(identity={"type": "None"})])
    assert run.exit_code == 1
    assert "C12" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_human_formats_render_the_same_plan(emulator: Any, plan: PlanRunner, fmt: str) -> None:
    seeded = estate()
    seeded["clusters"][0].update(capacity=2000, last_sku_update="2026-11-15T00:00:00Z")
    emulator.seed(seeded)
    run = plan(_matching_spec(capacity=1000), fmt=fmt)
    assert run.exit_code == 2
    assert "C4" in run.stdout and "2026-12-16" in run.stdout


def test_out_writes_the_json_artefact_whatever_is_printed(emulator: Any, plan: PlanRunner) -> None:
    import json

    emulator.seed(estate())
    out = plan.tmp_path / "plan.json"
    run = plan(_matching_spec(capacity=5000), fmt="text", extra=["--out", str(out)])
    assert run.exit_code == 2
    artefact = json.loads(out.read_text())
    assert artefact["format_version"] and artefact["summary"]["by_action"]["update"] == 1
    assert artefact["spec_paths"] and artefact["resource_digests"]


def test_unreachable_azure_is_an_error_not_an_empty_plan(
    emulator: Any, plan: PlanRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.fault(
        method="GET",
        path=r"/providers/Microsoft\.OperationalInsights/clusters$",
        status=403,
        code="AuthorizationFailed",
        message="The client does not have authorization.",
    )
    run = plan(_matching_spec())
    assert run.exit_code == 1
    assert "AuthorizationFailed" in run.stderr and "Traceback" not in run.stderr
    assert run.stdout == ""


RequestFilter = Callable[[dict[str, Any]], bool]


def test_a_link_someone_else_started_is_waited_for_not_repeated(emulator: Any, plan: PlanRunner) -> None:
    """wks2's link to clu01 was started elsewhere (portal, another runner) and is still running: the plan
    must not send a second one (rule W5: 409) and must count it against the W3 budget."""
    from controller.azure.clients import AzureClients

    emulator.configure(durations={"link": 3600})
    emulator.seed(estate())
    azure = AzureClients(env=emulator.env)
    azure.loganalytics(SUB).linked_services.begin_create_or_update(
        "rg-apps", "wks2", "cluster", {"properties": {"writeAccessResourceId": CLUSTER_ID}}, polling=False
    )
    azure.close()
    run = plan([cluster_doc(), workspace_set_doc(["wks1", "wks2"], byos=BYOS_WS1)])
    assert [c for c in run.plan["changes"] if "wks2" in c["address"]] == []
    waiting = run.one("deferred", "link", "wks2")
    assert waiting["rule"] == "W5"


def test_moving_a_cluster_to_another_resource_group_is_blocked(emulator: Any, plan: PlanRunner) -> None:
    emulator.seed(estate())  # clu01 lives in rg-mon
    run = plan([cluster_doc(resourceGroup="rg-new"), workspace_set_doc(["wks1"], byos=BYOS_WS1)])
    assert run.items("changes", "create") == [] and run.items("changes", "delete") == []
    blocked = run.one("blocked", "create", CLUSTER)
    assert blocked["rule"] == "C10" and RG in blocked["reason"] + blocked["remedy"]
    # and wks1 is not moved off the cluster that stays where it is
    assert [c for c in run.plan["changes"] if "wks1" in c["address"]] == []


def test_cluster_never_goes_over_1000_links(emulator: Any, plan: PlanRunner) -> None:
    """999 workspaces already on clu01 (998 the spec doesn't name, plus wks1): one more fits (W1)."""
    seeded = estate()
    seeded["workspaces"] += [
        {
            "subscription": SUB,
            "resource_group": "rg-many",
            "name": f"m{i}",
            "location": LOCATION,
            "cluster": CLUSTER_ID,
        }
        for i in range(998)
    ]
    seeded["workspaces"] += [_ws(f"new{i}") for i in range(3)]
    emulator.seed(seeded)
    run = plan([cluster_doc(), workspace_set_doc(["wks1", "new0", "new1", "new2"], byos=BYOS_WS1)])
    assert len(run.items("changes", "link")) == 1
    over = [b for b in run.plan["blocked"] + run.plan["deferred"] if b["action"] == "link"]
    assert len(over) == 2 and {b["rule"] for b in over} == {"W1"}


def test_user_assigned_to_system_assigned_walks_the_documented_steps(emulator: Any, plan: PlanRunner) -> None:
    """Clear the key, change the identity, grant the new principal, set the key: never identity and key
    in one operation, and the key waits for the grant (rules C5, C7)."""
    uai = f"/subscriptions/{SUB}/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity"
    uai += "/userAssignedIdentities/id1"
    seeded = estate()
    seeded["identities"] = [{"id": uai, "principal_id": "99999999-2222-4333-8444-555555555555"}]
    seeded["clusters"][0]["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {uai: {}}}
    emulator.seed(seeded)
    run = plan(_matching_spec())
    clear = run.one("changes", "set_key", CLUSTER)
    identity = run.one("changes", "update", CLUSTER)
    assert clear["parameters"].get("key") is None and "identity" not in clear["parameters"]
    assert "key" not in identity["parameters"] and clear["id"] in identity["depends_on"]
    final_key = run.one("deferred", "set_key", CLUSTER)
    assert identity["id"] in final_key["depends_on"] and final_key["rule"] == "C7"
    assert [c for c in run.plan["changes"] if "wks1" in c["address"]] == []  # the link stays


def test_a_pruned_cluster_is_deleted_before_the_create_that_needs_its_slot(
    emulator: Any, plan: PlanRunner
) -> None:
    seeded = estate()
    seeded["clusters"].append(  # created by this scope: its ownership tag names the Settings document
        {"subscription": SUB, "resource_group": RG, "name": "old02", "location": LOCATION,
         "tags": {"cmkctl-scope": "fleet"}}
    )
    emulator.seed(seeded)  # the region is full (C2: 2 per region in the seed profile)
    settings = {
        "apiVersion": "cmk.azure.io/v1",
        "kind": "Settings",
        "metadata": {"name": "fleet"},
        "spec": {"limitsProfile": "seed", "prune": {"clusters": True}},
    }
    new = cluster_doc(key=None)
    new["metadata"]["name"] = "new03"
    run = plan([settings, *_matching_spec(), new])
    delete = run.one("changes", "delete", "old02")
    create = run.one("changes", "create", "new03")
    assert delete["id"] in create["depends_on"]
    assert delete["destructive"] or delete.get("warnings")


def test_identity_none_with_opt_in_is_planned_with_a_critical_warning(
    emulator: Any, plan: PlanRunner
) -> None:
    emulator.seed(estate())
    run = plan(_matching_spec(identity={"type": "None"}, allowAccessRevocation=True))
    run.one("changes", "update", CLUSTER)
    critical = [w for w in run.plan["warnings"] if w["severity"] == "critical" and w["rule"] == "C12"]
    assert len(critical) == 1 and "irreversibl" in critical[0]["message"].lower()
