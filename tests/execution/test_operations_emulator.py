"""controller.azure.operations on the real SDK against the emulator: bodies, pre-check, verify, resume."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from estate import CLUSTER, RG, SUB, UAI, cluster_id, seed_estate, workspace_id, write_spec

from controller.azure import errors
from controller.azure.clients import AzureClients
from controller.azure.operations import InconsistentResult, Operations, Precheck, cluster_body, patch_body
from controller.cli import apply_cmd
from controller.model.observed import ObservedCluster
from controller.planning.plan import (
    Action,
    Change,
    CreateParams,
    IdentityParams,
    KeyParams,
    SetKeyParams,
    UnlinkParams,
    UpdateParams,
)

READ_ONLY = {
    "provisioningState",
    "clusterId",
    "associatedWorkspaces",
    "createdDate",
    "lastModifiedDate",
    "lastSkuUpdate",
    "principalId",
    "tenantId",
    "id",
    "systemData",
}


@pytest.fixture
def ops(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Operations]:
    for name, value in {**emulator.env, "CMKCTL_RETRY_BACKOFF": "0.01"}.items():
        monkeypatch.setenv(name, value)
    clients = AzureClients()
    yield Operations(clients)
    clients.close()


def _cluster_change(action: Action, **params: Any) -> Change:
    after = params.pop("after", None)
    if action is Action.CREATE:
        params = {"identity": {"type": "SystemAssigned"}, "billing_type": "Cluster",
                  "double_encryption": True, **params}
    return Change(
        id=f"{action}-c",
        action=action,
        address=f"cluster.{CLUSTER}",
        resource_id=cluster_id(),
        cluster_id=cluster_id(),
        parameters={"subscription": SUB, "resource_group": RG, "name": CLUSTER, **params},
        after=after,
    )


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    return set()


def test_bodies_carry_writable_fields_only() -> None:
    """Scenario: create and PATCH bodies never echo read-only fields, and a PATCH sends only what changes."""
    create = cluster_body(
        CreateParams(
            subscription=SUB, resource_group=RG, name=CLUSTER, location="westeurope", capacity=1000,
            tags={"a": "b"}, identity=IdentityParams(type="SystemAssigned"), billing_type="Cluster",
            double_encryption=True, availability_zones=True,
        )
    )
    assert not _keys(create) & READ_ONLY
    assert create["sku"] == {"name": "CapacityReservation", "capacity": 1000}  # rule C3
    assert "keyVaultProperties" not in create["properties"]  # rule C5 with SystemAssigned
    target = {"subscription": SUB, "resource_group": RG, "name": CLUSTER}
    assert patch_body(UpdateParams(**target, capacity=1100)) == {
        "sku": {"name": "CapacityReservation", "capacity": 1100}
    }
    assert patch_body(
        SetKeyParams(**target, key=KeyParams(vault_uri="https://kv.vault.azure.net/", name="k"))
    ) == {
        "properties": {
            "keyVaultProperties": {
                "keyVaultUri": "https://kv.vault.azure.net/",
                "keyName": "k",
                "keyVersion": "",
            }
        }
    }
    # rule C13: a key is removed with empty strings; `{}` would be ignored and leave the key in place
    assert patch_body(SetKeyParams(**target, key=None)) == {
        "properties": {"keyVaultProperties": {"keyVaultUri": "", "keyName": "", "keyVersion": ""}}
    }


def test_create_body_carries_availability_zones_only_when_the_spec_sets_them() -> None:
    """Rule C9: left out of the spec, the field is left out of the PUT and Azure decides by region."""
    base = CreateParams(subscription=SUB, resource_group=RG, name=CLUSTER, location="westus", capacity=100,
                        identity=IdentityParams(type="SystemAssigned"), billing_type="Cluster",
                        double_encryption=True)
    unset = cluster_body(base.model_copy(update={"availability_zones": None}))
    assert "isAvailabilityZonesEnabled" not in unset["properties"]
    assert "isAvailabilityZonesEnabled" not in cluster_body(base)["properties"]
    for zones in (True, False):
        body = cluster_body(base.model_copy(update={"availability_zones": zones}))
        assert body["properties"]["isAvailabilityZonesEnabled"] is zones


@pytest.mark.parametrize(("zones", "expected"), [(None, False), (False, False)])
def test_create_in_a_region_without_zones_lets_azure_decide(
    emulator: Any, ops: Operations, zones: bool | None, expected: bool
) -> None:
    """Rule C9: a cluster in a region without zones is created, with zones off, unless the spec asks."""
    seed_estate(emulator)
    change = _cluster_change(
        Action.CREATE,
        location="westus",
        capacity=100,
        identity={"type": "SystemAssigned"},
        availability_zones=zones,
    )
    ops.wait(ops.start(change, lambda url, token: None))
    view = ops.view(change)
    assert isinstance(view, ObservedCluster) and view.availability_zones is expected


def test_create_asking_for_zones_where_there_are_none_is_refused_as_rule_c9(
    emulator: Any, ops: Operations
) -> None:
    seed_estate(emulator)
    change = _cluster_change(
        Action.CREATE,
        location="westus",
        capacity=100,
        identity={"type": "SystemAssigned"},
        availability_zones=True,
    )
    with pytest.raises(errors.RuleViolation) as refused:
        ops.start(change, lambda url, token: None)
    assert refused.value.rule_id == "C9" and "Availability Zones" in str(refused.value)


def test_precheck_reads_the_target(emulator: Any, ops: Operations) -> None:
    """Scenario: a cluster that exists is 'done' for create; one still creating is 'in progress' (rule
    C6: wait, never send a second create); an unlinked workspace needs its link."""
    seed_estate(emulator, workspaces=("law1",))
    create = _cluster_change(Action.CREATE, location="westeurope", capacity=1000)
    assert ops.precheck(create) is Precheck.NEEDED
    emulator.seed(
        {
            "clusters": [
                {
                    "subscription": SUB,
                    "resource_group": RG,
                    "name": CLUSTER,
                    "location": "westeurope",
                    "provisioning_state": "Creating",
                    "remaining_seconds": 600,
                }
            ]
        }
    )
    assert ops.precheck(create) is Precheck.IN_PROGRESS
    emulator.advance(601)
    assert ops.precheck(create) is Precheck.DONE
    link = Change(
        id="l",
        action=Action.LINK,
        address="workspace.law1",
        resource_id=workspace_id("law1"),
        cluster_id=cluster_id(),
        parameters={"workspace_id": workspace_id("law1"), "cluster_id": cluster_id()},
    )
    assert ops.precheck(link) is Precheck.NEEDED


def test_verify_reports_inconsistent_result(emulator: Any, ops: Operations) -> None:
    """Scenario: after an operation the cluster does not look like the plan expected: an error that names
    the field, not silence."""
    seed_estate(emulator)
    emulator.seed(
        {
            "clusters": [
                {
                    "subscription": SUB,
                    "resource_group": RG,
                    "name": CLUSTER,
                    "location": "westeurope",
                    "capacity": 1000,
                }
            ]
        }
    )
    ops.verify(_cluster_change(Action.UPDATE, capacity=1000, after={"capacity": 1000}))
    with pytest.raises(InconsistentResult, match=r"inconsistent result.*capacity: expected 2000, found 1000"):
        ops.verify(_cluster_change(Action.UPDATE, capacity=2000, after={"capacity": 2000}))


def test_a_live_key_uri_with_port_443_is_the_spec_key(emulator: Any, ops: Operations) -> None:
    """Scenario: the cluster's key reads back as `https://<vault>.vault.azure.net:443` (as some
    api-versions answer) while the plan says `https://<vault>.vault.azure.net/`: the same key, so the
    pre-check finds the key set (nothing is sent again) and verify finds no inconsistency."""
    seed_estate(emulator)
    emulator.seed({"clusters": [{
        "subscription": SUB, "resource_group": RG, "name": CLUSTER, "location": "westeurope",
        "key": {"keyVaultUri": "https://KVCMKTEST.vault.azure.net:443", "keyName": "cmk", "keyVersion": ""},
    }]})
    key = {"vault_uri": "https://kvcmktest.vault.azure.net/", "name": "cmk", "version": None}
    set_key = _cluster_change(Action.SET_KEY, key=key, after={"key": key, "provisioning_state": "Succeeded"})
    assert ops.precheck(set_key) is Precheck.DONE
    ops.verify(set_key)
    other = {**key, "vault_uri": "https://kvcmktest.vault.azure.net:8443/"}
    assert ops.precheck(_cluster_change(Action.SET_KEY, key=other)) is Precheck.NEEDED


def test_resume_from_token_polls_without_resending(emulator: Any, ops: Operations) -> None:
    """Scenario: a create is started and its token journaled; a new process (new clients) resumes from the
    token alone and sees it finish; Azure received exactly one PUT."""
    seed_estate(emulator)
    emulator.fault(method="PUT", path=f"/clusters/{CLUSTER}$", stick_operation=3600, count=1)
    change = _cluster_change(
        Action.CREATE, location="westeurope", capacity=1000, identity={"type": "SystemAssigned"}
    )
    journal: list[tuple[str | None, str | None]] = []
    ops.start(change, lambda url, token: journal.append((url, token)))
    ((url, token),) = journal
    assert token and url and "operationStatuses" in url
    decoded = base64.b64decode(token + "==").decode("utf-8", "replace").lower()
    assert "operationstatuses" in decoded  # the decoding worked: it names the status URL
    assert "authorization" not in decoded and "emulator-token" not in decoded  # no credential journaled
    emulator.advance(3700)

    fresh = AzureClients()
    try:
        Operations(fresh).resume(action="create", target=cluster_id(), parameters={}, token=token)
    finally:
        fresh.close()
    puts = [r for r in emulator.requests() if r["method"] == "PUT"]
    assert len(puts) == 1
    assert ops.precheck(change) is Precheck.DONE


def test_throttled_patch_is_retried_by_the_executor(
    emulator: Any, ops: Operations, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: a capacity increase PATCH gets 429 (azure-core never retries 429 on PATCH); apply waits
    and sends it again, and converges."""
    seed_estate(emulator, workspaces=())
    emulator.seed(
        {
            "clusters": [
                {
                    "subscription": SUB,
                    "resource_group": RG,
                    "name": CLUSTER,
                    "location": "westeurope",
                    "capacity": 1000,
                    "identity": {"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}},
                }
            ]
        }
    )
    spec = write_spec(tmp_path / "spec", workspaces=(), capacity=2000)
    emulator.fault(
        method="PATCH",
        path=f"/clusters/{CLUSTER}$",
        status=429,
        retry_after=0,
        count=1,
        code="SubscriptionRequestsThrottled",
    )
    assert (
        apply_cmd.run(
            None, [str(spec)], auto_approve=True, state=str(tmp_path / "state"), clients=ops.clients
        )
        == 0
    )
    patches = [r["status"] for r in emulator.requests() if r["method"] == "PATCH"]
    assert patches[0] == 429 and patches[-1] == 200 and len(patches) == 2


def test_unlink_leaves_a_link_to_another_cluster_alone(emulator: Any, ops: Operations) -> None:
    """Scenario: the plan wants law1 unlinked from our cluster, but someone already moved it to another
    cluster: nothing to do (rule W2), and no W3 operation is spent on someone else's link."""
    seed_estate(emulator, workspaces=("law1",))
    emulator.seed(
        {
            "clusters": [
                {"subscription": SUB, "resource_group": RG, "name": "other01", "location": "westeurope"}
            ]
        }
    )
    emulator.arm(
        "PUT",
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights"
        "/workspaces/law1/linkedServices/cluster",
        {"properties": {"writeAccessResourceId": cluster_id("other01")}},
    )
    unlink = Change(
        id="u",
        action=Action.UNLINK,
        address="workspace.law1",
        resource_id=workspace_id("law1"),
        cluster_id=cluster_id(),
        parameters={"workspace_id": workspace_id("law1"), "cluster_id": cluster_id()},
    )
    assert ops.precheck(unlink) is Precheck.DONE
    ours = unlink.model_copy(
        update={"parameters": UnlinkParams(workspace_id=workspace_id("law1"),
                                           cluster_id=cluster_id("other01"))}
    )
    assert ops.precheck(ours) is Precheck.NEEDED


def test_capacity_lock_refusal_says_from_when_the_decrease_is_allowed_c4(
    emulator: Any, ops: Operations
) -> None:
    """Scenario: Azure refuses a capacity decrease inside the lock (its message states the lock's length,
    not its end); the error names the date: the cluster's last SKU update plus that length."""
    from datetime import UTC, datetime

    from controller.azure.errors import RuleViolation
    from controller.model.rules import Rule

    seed_estate(emulator)
    emulator.seed(
        {
            "clusters": [
                {
                    "subscription": SUB,
                    "resource_group": RG,
                    "name": CLUSTER,
                    "location": "westeurope",
                    "capacity": 2000,
                    "last_sku_update": "2026-11-20T00:00:00Z",
                }
            ]
        }
    )
    with pytest.raises(RuleViolation) as caught:
        ops.start(_cluster_change(Action.UPDATE, capacity=1000), lambda url, token: None)
    err = caught.value
    assert err.rule_id is Rule.C4
    assert err.azure_message is not None and "Capacity is locked for 30 days" in err.azure_message
    assert err.not_before == datetime(2026, 12, 20, tzinfo=UTC)
    assert "allowed from 2026-12-20" in str(err)


def test_a_key_refusal_names_the_principal_and_the_command_that_grants_it(
    emulator: Any, ops: Operations
) -> None:
    """Rule C7 at apply time: Azure's refusal is followed by the principal, the vault, the three
    permissions and the `az keyvault set-policy` command a user can paste."""
    from controller.azure.errors import RuleViolation
    from controller.model.rules import Rule

    seed_estate(emulator)  # the vault grants the user-assigned identity only
    emulator.seed(
        {"clusters": [{"subscription": SUB, "resource_group": RG, "name": CLUSTER, "location": "westeurope"}]}
    )
    principal = ops.read_cluster(cluster_id())["identity"]["principalId"]  # type: ignore[index]
    key = {"vault_uri": "https://kvcmktest.vault.azure.net/", "name": "cmk", "version": None}
    with pytest.raises(RuleViolation) as caught:
        ops.start(_cluster_change(Action.SET_KEY, key=key), lambda url, token: None)
    err = caught.value
    assert err.rule_id is Rule.C7
    assert principal in str(err) and "kvcmktest" in str(err)
    assert (
        f"az keyvault set-policy --name kvcmktest --object-id {principal} "
        "--key-permissions get wrapKey unwrapKey"
    ) in str(err)
