"""examples/fleet through `cmkctl plan`: nothing to do against a matching estate (adoption, no churn),
the full ordered build against an empty one, and a list-based number of ARM requests either way."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from fleet_estate import estate_for
from plan_runner import PlanRunner

from controller.loading import load

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet"


def test_fleet_against_a_matching_estate_plans_nothing(emulator: Any, plan: PlanRunner) -> None:
    emulator.seed(estate_for(load([FLEET]), applied=True))
    run = plan(paths=[str(FLEET)])
    assert run.plan["changes"] == [], run.plan["changes"]
    assert run.plan["deferred"] == [] and run.plan["blocked"] == []
    assert run.exit_code == 0


def test_fleet_against_an_empty_estate_plans_the_full_ordered_build(emulator: Any, plan: PlanRunner) -> None:
    desired = load([FLEET])
    emulator.seed(estate_for(desired, applied=False))
    run = plan(paths=[str(FLEET)])
    assert run.exit_code == 2
    creates = {c["address"]: c for c in run.items("changes", "create")}
    assert len(creates) == len(desired.clusters)
    set_keys = {c["address"]: c for c in run.items("changes", "set_key")}
    by_id = {c["id"]: c for c in run.plan["changes"]}
    for cluster in desired.clusters:
        create = next(c for a, c in creates.items() if cluster.metadata.name in a or cluster.azure_name in a)
        if cluster.spec.identity.type.value == "SystemAssigned":  # rule C5: key after creation
            key_step = next(
                c for a, c in set_keys.items() if cluster.metadata.name in a or cluster.azure_name in a
            )
            assert create["id"] in key_step["depends_on"]
    links = run.items("changes", "link")
    assert len(links) == len(desired.desired_links())
    for link in links:  # every link waits for its cluster's create and key steps (rule W4)
        upstream = {by_id[d]["action"] for d in link["depends_on"] if d in by_id}
        assert "create" in upstream
    byos = run.items("changes", "byos_link")
    assert len(byos) == sum(
        (e.byos.query is not None) + (e.byos.alerts is not None)
        for e in desired.workspace_entries().values()
        if e.byos is not None
    )


def test_one_plan_makes_a_list_based_number_of_arm_requests(emulator: Any, plan: PlanRunner) -> None:
    desired = load([FLEET])
    emulator.seed(estate_for(desired, applied=True))
    emulator.clear_requests()
    plan(paths=[str(FLEET)])
    arm = [r for r in emulator.requests() if r["host"] == "management.azure.com"]
    kinds = Counter(_kind(r["path"]) for r in arm)
    subs = len(desired.subscriptions())
    byos_workspaces = sum(1 for e in desired.workspace_entries().values() if e.byos is not None)
    key_subs = len(
        {c.spec.subscription for c in desired.clusters if c.spec.key and not c.spec.key.ref().is_managed_hsm}
    )
    assert kinds["clusters"] == subs and kinds["workspaces"] == subs and kinds["activity"] == subs
    assert kinds["byos"] == byos_workspaces
    assert kinds["vaults"] <= subs and kinds["vaults"] >= key_subs
    assert sum(kinds.values()) == len(arm)  # nothing else: no per-workspace or per-cluster GETs
    assert len(arm) <= 3 * subs + byos_workspaces + subs


def _kind(path: str) -> str:
    low = path.lower()
    if low.endswith("/linkedstorageaccounts"):
        return "byos"
    if "eventtypes/management" in low:
        return "activity"
    if low.endswith("microsoft.keyvault/vaults"):
        return "vaults"
    return low.rsplit("/", 1)[-1]


def test_after_applying_the_fleet_build_a_new_plan_has_nothing_left_to_do(
    emulator: Any, plan: PlanRunner, capsys: Any
) -> None:
    """Planning the state that results from applying a plan yields no changes.

    SystemAssigned clusters get their principal at creation, so the user grants it key access between
    the two applies (rule C5: create -> grant -> set key); the product never edits vault policies."""
    from controller.cli.app import main

    desired = load([FLEET])
    emulator.seed(estate_for(desired, applied=False))
    assert plan(paths=[str(FLEET)]).exit_code == 2

    main(["apply", "-f", str(FLEET), "--auto-approve"])
    between = plan(paths=[str(FLEET)])
    pending_keys = between.items("changes", "set_key") + between.items("blocked", "set_key")
    system_assigned = [c for c in desired.clusters if c.spec.identity.type.value == "SystemAssigned"]
    assert len(pending_keys) == len(system_assigned)  # waiting for the grant, nothing else
    assert between.items("changes", "create") == []

    for cluster in system_assigned:  # the user's step: grant the new identity on the vault
        live = next(
            c for c in emulator.state.clusters.values() if c.name.lower() == cluster.azure_name.lower()
        )
        assert cluster.spec.key is not None
        uri = cluster.spec.key.vault_uri
        emulator.state.vaults.principal_grant(uri, live.principal_id, ["get", "wrapKey", "unwrapKey"])
        emulator.state.vaults.role_grant(uri, live.principal_id, "Key Vault Crypto Service Encryption User")

    code = main(["apply", "-f", str(FLEET), "--auto-approve"])
    assert code == 0, capsys.readouterr().err[-2000:]
    again = plan(paths=[str(FLEET)])
    assert again.plan["changes"] == [] and again.plan["blocked"] == [] and again.plan["deferred"] == []
    assert again.exit_code == 0
