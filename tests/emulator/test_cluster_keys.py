"""Cluster keys end to end (emulator ARM side + E2's vault registry), through the real SDKs:
C5 (UserAssigned may set the key at create), C7, C8, the async key update (old key visible while
Updating), and revocation harm K1/K2 exactly when the key in use becomes unusable."""

from __future__ import annotations

from typing import Any

import pytest
from emu_helpers import SUB, cluster_model, create_cluster, key_patch, make_rg, refused

V1 = "1" * 32
V2 = "2" * 32
KV = "https://kvprod.vault.azure.net"
UAI = (
    f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
)
UAI_PRINCIPAL = "11111111-2222-3333-4444-555555555555"


def _vault(**over: Any) -> dict[str, Any]:
    v: dict[str, Any] = {
        "name": "kvprod",
        "subscription": SUB,
        "resourceGroup": "rg1",
        "location": "eastus",
        "softDelete": True,
        "purgeProtection": True,
        "accessPolicies": [{"objectId": UAI_PRINCIPAL, "keys": ["get", "wrapKey", "unwrapKey"]}],
        "keys": [{"name": "k1", "versions": [{"version": V1}, {"version": V2}]}],
    }
    v.update(over)
    return v


@pytest.fixture
def la(emulator: Any, sdk: Any) -> Any:
    make_rg(emulator)
    emulator.seed(
        {
            "identities": [{"id": UAI, "principal_id": UAI_PRINCIPAL, "client_id": UAI_PRINCIPAL}],
            "vaults": [_vault()],
        }
    )
    return sdk.loganalytics()


def _grant(emulator: Any, cluster: Any) -> str:
    principal = str(cluster.identity.principal_id)
    emulator.state.vaults.principal_grant(KV, principal, ["get", "wrapKey", "unwrapKey"])
    return principal


@pytest.mark.sdk_floor
def test_c7_key_update_needs_access_then_runs_async_showing_old_key_while_updating(
    emulator: Any, la: Any
) -> None:
    cluster = create_cluster(la)
    status, _, message = refused(
        lambda: la.clusters.begin_update("rg1", "clu1", key_patch(KV, "k1", V1)).result()
    )
    assert status == 400 and message.startswith("Failed to validate key in Key Vault.")
    _grant(emulator, cluster)
    assert (
        la.clusters.begin_update("rg1", "clu1", key_patch(KV, "k1", V1))
        .result()
        .key_vault_properties.key_version
        == V1
    )
    emulator.configure(durations={"cluster_update": 120})
    poller = la.clusters.begin_update("rg1", "clu1", key_patch(KV, "k1", V2))
    during = la.clusters.get("rg1", "clu1")
    assert during.provisioning_state == "Updating"
    assert during.key_vault_properties.key_version == V1  # facts §12.10: the old key until it succeeds
    emulator.advance(120)
    assert poller.result().key_vault_properties.key_version == V2
    assert emulator.events() == []


@pytest.mark.sdk_floor
def test_c7_missing_key_bad_format_and_unrecoverable_vault(emulator: Any, la: Any) -> None:
    cluster = create_cluster(la)
    _grant(emulator, cluster)
    status, _, message = refused(
        lambda: la.clusters.begin_update("rg1", "clu1", key_patch(KV, "nokey", V1)).result()
    )
    assert status == 400 and message.startswith("Failed to validate key")
    status, _, message = refused(
        lambda: la.clusters.begin_update("rg1", "clu1", key_patch("notaurl", "k1", V1)).result()
    )
    assert status == 400 and "bad format" in message
    emulator.seed(
        {
            "vaults": [
                _vault(
                    purgeProtection=False,
                    accessPolicies=[
                        {"objectId": cluster.identity.principal_id, "keys": ["get", "wrapKey", "unwrapKey"]}
                    ],
                )
            ]
        }
    )
    status, _, message = refused(
        lambda: la.clusters.begin_update("rg1", "clu1", key_patch(KV, "k1", V1)).result()
    )
    assert status == 400 and message.startswith("Key isn't recoverable.")


def test_c8_vault_in_another_region_is_refused(emulator: Any, la: Any) -> None:
    cluster = create_cluster(la)
    emulator.seed(
        {
            "vaults": [
                _vault(
                    name="kvwest",
                    location="westeurope",
                    accessPolicies=[
                        {"objectId": cluster.identity.principal_id, "keys": ["get", "wrapKey", "unwrapKey"]}
                    ],
                )
            ]
        }
    )
    status, _, message = refused(
        lambda: la.clusters.begin_update(
            "rg1", "clu1", key_patch("https://kvwest.vault.azure.net", "k1", V1)
        ).result()
    )
    assert status == 400 and "same region" in message


@pytest.mark.sdk_floor
def test_c5_user_assigned_identity_with_access_may_set_key_at_creation(la: Any) -> None:
    key = {"uri": KV, "name": "k1", "version": V1}
    created = create_cluster(la, identity="UserAssigned", user_identity=UAI, key=key)
    assert created.key_vault_properties.key_name == "k1"
    status, _, _ = refused(
        lambda: la.clusters.begin_create_or_update(
            "rg1", "clu2", cluster_model(identity="SystemAssigned", key=key)
        )
    )
    assert status == 400


def test_k1_disabling_the_version_in_use_revokes_but_other_versions_do_not(
    emulator: Any, la: Any, sdk: Any
) -> None:
    cluster = create_cluster(la)
    _grant(emulator, cluster)
    la.clusters.begin_update("rg1", "clu1", key_patch(KV, "k1", V1)).result()
    emulator.state.vaults.principal_grant(
        KV, emulator.state.vaults.caller_object_id, ["get", "update", "list"]
    )
    keys = sdk.keys(KV)
    keys.update_key_properties("k1", V2, enabled=False)  # not the version in use: harmless
    assert emulator.events() == []
    keys.update_key_properties("k1", V1, enabled=False)  # the version in use: revocation
    events = emulator.events()
    assert [(e["kind"], e["rule"]) for e in events] == [("revoked", "K2")]
    assert events[0]["resource_id"].endswith("/clusters/clu1")
    keys.update_key_properties("k1", V1, enabled=True)
    assert len(emulator.events()) == 1  # restored, nothing new dropped


def test_k2_removing_the_cluster_access_revokes(emulator: Any, la: Any) -> None:
    cluster = create_cluster(la)
    principal = _grant(emulator, cluster)
    la.clusters.begin_update("rg1", "clu1", key_patch(KV, "k1", V1)).result()
    assert emulator.events() == []
    emulator.state.vaults.principal_revoke(KV, principal)
    assert [e["kind"] for e in emulator.events()] == ["revoked"]


def test_k1_key_version_expiring_in_simulated_time_revokes(emulator: Any, la: Any) -> None:
    emulator.seed(
        {
            "vaults": [
                _vault(
                    keys=[{"name": "k1", "versions": [{"version": V1, "expires": "2026-12-10T00:00:00Z"}]}],
                )
            ]
        }
    )
    cluster = create_cluster(la)
    _grant(emulator, cluster)
    la.clusters.begin_update("rg1", "clu1", key_patch(KV, "k1", V1)).result()
    emulator.advance(5 * 86400)
    la.clusters.get("rg1", "clu1")
    assert emulator.events() == []
    emulator.advance(6 * 86400)
    la.clusters.get("rg1", "clu1")
    assert [e["kind"] for e in emulator.events()] == ["revoked"]


def test_k1_a_version_expiring_while_only_reads_arrive_revokes_when_its_time_comes(
    emulator: Any, la: Any
) -> None:
    """The clock runs (an hour a second) and nothing but reads arrive: keys are not rechecked on every
    read, yet a read in the first moments after the version's expiry finds the cluster revoked."""
    import time
    from datetime import datetime, timedelta

    def when(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    expires = when(emulator.now()) + timedelta(hours=1)
    version = {"version": V1, "expires": expires.isoformat().replace("+00:00", "Z")}
    emulator.seed({"vaults": [_vault(keys=[{"name": "k1", "versions": [version]}])]})
    cluster = create_cluster(la)
    _grant(emulator, cluster)
    la.clusters.begin_update("rg1", "clu1", key_patch(KV, "k1", V1)).result()
    emulator.configure(time_scale=3600.0)
    reads_until = time.monotonic() + 1.5  # 1.5 simulated hours of reads, and nothing else
    while time.monotonic() < reads_until:
        la.clusters.get("rg1", "clu1")
    after_reads = when(emulator.now())  # an admin call: it would recheck, so it comes last
    emulator.configure(time_scale=0.0)
    seen = emulator.events()
    assert [e["kind"] for e in seen] == ["revoked"]
    at = when(seen[0]["time"])
    assert expires <= at < expires + timedelta(minutes=2) and at < after_reads - timedelta(minutes=5)


def test_c12_user_assigned_identities_set_to_none_revokes_irreversibly(emulator: Any, la: Any) -> None:
    from azure.mgmt.loganalytics.models import ClusterPatch, Identity

    key = {"uri": KV, "name": "k1", "version": V1}
    create_cluster(la, identity="UserAssigned", user_identity=UAI, key=key)
    assert emulator.events() == []
    la.clusters.begin_update(
        "rg1",
        "clu1",
        ClusterPatch(identity=Identity(type="UserAssigned", user_assigned_identities={UAI: None})),
    ).result()
    assert [(e["kind"], e["rule"]) for e in emulator.events()] == [("access_revoked", "C12")]
    assert la.clusters.get("rg1", "clu1").identity.type == "None"


def test_k3_short_vault_outage_is_ridden_out_but_30_minutes_is_harm(emulator: Any, la: Any) -> None:
    cluster = create_cluster(la)
    _grant(emulator, cluster)
    la.clusters.begin_update("rg1", "clu1", key_patch(KV, "k1", V1)).result()
    vaults = emulator.state.vaults
    vaults.set_unavailable(KV, True)
    emulator.advance(20 * 60)
    la.clusters.get("rg1", "clu1")
    vaults.set_unavailable(KV, False)
    la.clusters.get("rg1", "clu1")
    assert emulator.events() == []  # a blip, served from cache
    vaults.set_unavailable(KV, True)
    emulator.advance(29 * 60)
    la.clusters.get("rg1", "clu1")
    assert emulator.events() == []
    emulator.advance(60)
    la.clusters.get("rg1", "clu1")
    assert [(e["kind"], e["rule"]) for e in emulator.events()] == [("revoked", "K3")]


def test_the_documented_workflow_with_rotation_causes_no_harm(emulator: Any, la: Any, sdk: Any) -> None:
    """Create, grant, set key, link, rotate (new version, update cluster, then disable the old one),
    unlink, delete: every step the seed recommends, and not one harm event."""
    from azure.mgmt.loganalytics.models import LinkedService
    from emu_helpers import workspace

    emulator.configure(durations={"cluster_create": 7200, "cluster_update": 120, "link": 600, "unlink": 600})
    poller = la.clusters.begin_create_or_update("rg1", "clu1", cluster_model())
    emulator.advance(7200)
    cluster = poller.result()
    _grant(emulator, cluster)
    key_poller = la.clusters.begin_update("rg1", "clu1", key_patch(KV, "k1", V1))
    emulator.advance(120)
    key_poller.result()
    workspace(la)
    link_poller = la.linked_services.begin_create_or_update(
        "rg1", "wsp1", "cluster", LinkedService(write_access_resource_id=cluster.id)
    )
    emulator.advance(600)
    link_poller.result()
    emulator.state.vaults.principal_grant(
        KV, emulator.state.vaults.caller_object_id, ["get", "update", "create"]
    )
    keys = sdk.keys(KV)
    new = keys.create_rsa_key("k1")
    rot = la.clusters.begin_update("rg1", "clu1", key_patch(KV, "k1", new.properties.version))
    emulator.advance(120)
    assert rot.result().key_vault_properties.key_version == new.properties.version
    keys.update_key_properties("k1", V1, enabled=False)  # the old version, no longer in use
    keys.update_key_properties("k1", V2, enabled=False)
    un = la.linked_services.begin_delete("rg1", "wsp1", "cluster")
    emulator.advance(600)
    un.result()
    la.clusters.begin_delete("rg1", "clu1").result()
    assert emulator.events() == []


def test_seeding_a_revoked_cluster_is_state_not_an_event(emulator: Any, la: Any) -> None:
    principal = "99999999-0000-4000-8000-000000000009"
    emulator.seed(
        {
            "clusters": [
                {
                    "subscription": SUB,
                    "resource_group": "rg1",
                    "name": "old",
                    "principal_id": principal,
                    "key": {"keyVaultUri": KV, "keyName": "k1", "keyVersion": V1},
                }
            ]
        }
    )
    assert emulator.events() == []  # no access policy for it: revoked before we looked
    emulator.state.vaults.principal_grant(KV, principal, ["get", "wrapKey", "unwrapKey"])
    assert emulator.events() == []  # access returns: service resumes
    emulator.state.vaults.principal_revoke(KV, principal)
    assert [(e["kind"], e["rule"]) for e in emulator.events()] == [("revoked", "K2")]  # this one happens now


def _cluster_path(name: str = "clu1") -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.OperationalInsights/clusters/{name}"


def _with_key(emulator: Any, la: Any) -> Any:
    cluster = create_cluster(la)
    _grant(emulator, cluster)
    la.clusters.begin_update("rg1", "clu1", key_patch(KV, "k1", V1)).result()
    return cluster


@pytest.mark.sdk_floor
def test_c6_key_patch_answers_202_with_an_async_operation(emulator: Any, la: Any) -> None:
    """Today a key PATCH answers 202, no body, Azure-AsyncOperation + Location (docs/azure-wire.md):
    only SDKs whose update accepts 202 can set keys; a PATCH without a key stays a synchronous 200."""
    cluster = create_cluster(la)
    _grant(emulator, cluster)
    body = {"properties": {"keyVaultProperties": {"keyVaultUri": KV, "keyName": "k1", "keyVersion": V1}}}
    r = emulator.arm("PATCH", _cluster_path(), body)
    assert r.status_code == 202, r.text
    assert r.content == b""
    assert "/operationStatuses/" in r.headers["Azure-AsyncOperation"]
    assert r.headers["Location"].split("?")[0].endswith("/operationresults/" + r.headers[
        "Azure-AsyncOperation"].split("?")[0].rsplit("/", 1)[-1])
    assert la.clusters.get("rg1", "clu1").key_vault_properties.key_version == V1
    r = emulator.arm("PATCH", _cluster_path(), {"properties": {"billingType": "Workspaces"}})
    assert r.status_code == 200 and r.json()["properties"]["billingType"] == "Workspaces"


@pytest.mark.sdk_floor
def test_c13_an_empty_key_object_is_ignored_and_empty_strings_remove_the_key(
    emulator: Any, la: Any
) -> None:
    """Rule C13: `keyVaultProperties: {}` leaves the key in place (Azure ignores it); the key goes only
    when keyVaultUri, keyName and keyVersion are sent as empty strings, asynchronously (the old key
    shows while Updating), and then reads back as `{}`."""
    _with_key(emulator, la)
    r = emulator.arm("PATCH", _cluster_path(), {"properties": {"keyVaultProperties": {}}})
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["keyVaultProperties"]["keyName"] == "k1"

    emulator.configure(durations={"cluster_update": 120})
    poller = la.clusters.begin_update("rg1", "clu1", key_patch("", "", ""))
    during = la.clusters.get("rg1", "clu1")
    assert during.provisioning_state == "Updating" and during.key_vault_properties.key_name == "k1"
    emulator.advance(120)
    poller.result()
    live = emulator.arm("GET", _cluster_path()).json()["properties"]
    assert live["provisioningState"] == "Succeeded" and live["keyVaultProperties"] == {}
    assert emulator.events() == []  # a removed key is not a revocation


def test_c13_key_removal_and_identity_change_are_two_operations(emulator: Any, la: Any) -> None:
    """Identity and key never change in one call, a key removal included."""
    key = {"uri": KV, "name": "k1", "version": V1}
    create_cluster(la, identity="UserAssigned", user_identity=UAI, key=key)
    body = {
        "identity": {"type": "SystemAssigned"},
        "properties": {"keyVaultProperties": {"keyVaultUri": "", "keyName": "", "keyVersion": ""}},
    }
    r = emulator.arm("PATCH", _cluster_path(), body)
    assert r.status_code == 400 and "same operation" in r.json()["error"]["message"]
    live = la.clusters.get("rg1", "clu1")
    assert live.identity.type == "UserAssigned" and live.key_vault_properties.key_name == "k1"
