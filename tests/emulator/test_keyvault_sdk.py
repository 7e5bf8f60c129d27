"""The REAL azure-keyvault-keys and azure-mgmt-keyvault clients against the emulated Key Vault over
HTTPS (E1's `emulator` / `sdk` fixtures): the challenge flow, paging, key updates and vault
management behave as the controller will see them in Azure."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.keys import KeyClient

# E1's fixtures (tests/conftest.py): `emulator` is an EmulatorHandle, `sdk` builds real clients.
EmulatorHandle = Any
Sdk = Any
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"  # the fixture's subscription


TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PRINCIPAL = "9a8b7c6d-0000-4000-8000-000000000001"
VAULT_URL = "https://kvprod.vault.azure.net/"
V1 = "a" * 32
V2 = "b" * 32


def vault(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "kvprod",
        "subscription": SUBSCRIPTION,
        "resourceGroup": "rg-keys",
        "location": "westeurope",
        "tenantId": TENANT,
        "purgeProtection": True,
        "accessPolicies": [{"objectId": PRINCIPAL, "keys": ["get", "wrapKey", "unwrapKey"]}],
        "keys": [
            {
                "name": "k1",
                "versions": [
                    {"version": V1, "created": "2026-01-01T00:00:00Z"},
                    {"version": V2, "created": "2026-06-01T00:00:00Z"},
                ],
            }
        ],
    }
    doc.update(over)
    return doc


@pytest.fixture
def keys(emulator: EmulatorHandle, sdk: Sdk) -> KeyClient:
    emulator.seed(
        {
            "resource_groups": [{"subscription": SUBSCRIPTION, "name": "rg-keys", "location": "westeurope"}],
            "vaults": [vault()],
        }
    )
    client: KeyClient = sdk.keys(VAULT_URL)
    return client


def usable(emulator: EmulatorHandle, version: str) -> bool:
    return bool(
        emulator.state.vaults.key_usable(
            key_vault_uri=VAULT_URL, key_name="k1", key_version=version, principal_id=PRINCIPAL
        )
    )


def test_get_key_goes_through_the_challenge(keys: KeyClient, emulator: EmulatorHandle) -> None:
    from azure.keyvault.keys._shared import http_challenge_cache

    http_challenge_cache.clear()  # the SDK caches challenges per host for the whole process
    emulator.clear_requests()
    key = keys.get_key("k1")
    assert key.properties.version == V2
    assert key.id == f"https://kvprod.vault.azure.net/keys/k1/{V2}"
    assert key.key.n and key.key.e == b"\x01\x00\x01"
    assert key.properties.recovery_level == "Recoverable"
    statuses = [r["status"] for r in emulator.requests() if r["host"] == "kvprod.vault.azure.net"]
    assert statuses == [401, 200]  # the unauthenticated probe, then the real call with a token

    older = keys.get_key("k1", V1)
    assert older.properties.version == V1
    assert older.properties.created_on is not None and older.properties.created_on.year == 2026


def test_missing_key_raises_not_found_with_the_service_text(keys: KeyClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        keys.get_key("nokey")
    assert "A key with (name/id) nokey was not found in this key vault" in str(info.value)


def test_version_listing_follows_next_links(keys: KeyClient, emulator: EmulatorHandle) -> None:
    many = [{"version": f"{i:032x}", "created": f"2026-01-{i:02d}T00:00:00Z"} for i in range(1, 31)]
    emulator.seed({"vaults": [vault(keys=[{"name": "k1", "versions": many}])]})
    emulator.clear_requests()
    versions = [p.version for p in keys.list_properties_of_key_versions("k1")]
    assert versions == [v["version"] for v in many]  # 30 > one page of 25
    pages = [r for r in emulator.requests() if r["path"] == "/keys/k1/versions" and r["status"] == 200]
    assert len(pages) == 2


def test_create_key_becomes_current(keys: KeyClient) -> None:
    created = keys.create_rsa_key("k1", size=3072, tags={"purpose": "cmk"})
    assert created.properties.version not in (V1, V2)
    assert keys.get_key("k1").properties.version == created.properties.version
    assert sorted(p.name for p in keys.list_properties_of_keys()) == ["k1"]


def test_disabling_the_cluster_version_revokes_it(keys: KeyClient, emulator: EmulatorHandle) -> None:
    assert usable(emulator, V2)
    updated = keys.update_key_properties("k1", V2, enabled=False)
    assert updated.properties.enabled is False
    assert not usable(emulator, V2)  # rule K1
    assert usable(emulator, V1)


def test_delete_key_is_soft_and_recoverable(keys: KeyClient, emulator: EmulatorHandle) -> None:
    deleted = keys.begin_delete_key("k1").result()
    assert deleted.recovery_id == "https://kvprod.vault.azure.net/deletedkeys/k1"
    assert not usable(emulator, V2)
    with pytest.raises(ResourceNotFoundError):
        keys.get_key("k1")
    keys.begin_recover_deleted_key("k1").result()
    assert usable(emulator, V2)


def test_denied_caller_sees_forbidden(emulator: EmulatorHandle, sdk: Sdk) -> None:
    emulator.seed({"vaults": [vault(callerDenied=True)]})
    with pytest.raises(HttpResponseError) as info:
        sdk.keys(VAULT_URL).get_key("k1")
    assert info.value.status_code == 403
    assert "does not have keys get permission" in str(info.value)


def test_management_client_reads_and_edits_the_vault(
    keys: KeyClient, emulator: EmulatorHandle, sdk: Sdk
) -> None:
    from azure.mgmt.keyvault.models import (
        AccessPolicyEntry,
        AccessPolicyUpdateKind,
        Permissions,
        VaultAccessPolicyParameters,
        VaultAccessPolicyProperties,
    )

    mgmt = sdk.keyvault_mgmt()
    got = mgmt.vaults.get("rg-keys", "kvprod")
    assert got.properties.vault_uri == VAULT_URL
    assert got.properties.enable_purge_protection is True
    assert got.properties.enable_soft_delete is True
    assert [p.object_id for p in got.properties.access_policies] == [PRINCIPAL]
    assert [v.name for v in mgmt.vaults.list_by_resource_group("rg-keys")] == ["kvprod"]

    removal = VaultAccessPolicyParameters(
        properties=VaultAccessPolicyProperties(
            access_policies=[
                AccessPolicyEntry(
                    tenant_id=TENANT,
                    object_id=PRINCIPAL,
                    permissions=Permissions(keys_property=["unwrapKey"]),
                )
            ]
        )
    )
    mgmt.vaults.update_access_policy("rg-keys", "kvprod", AccessPolicyUpdateKind.REMOVE, removal)
    assert not usable(emulator, V2)  # rule K2: access policy removed
    mgmt.vaults.update_access_policy("rg-keys", "kvprod", AccessPolicyUpdateKind.ADD, removal)
    assert usable(emulator, V2)  # access returned

    with pytest.raises(ResourceNotFoundError):
        mgmt.vaults.get("rg-keys", "nosuchvault")


def test_management_client_creates_a_vault(emulator: EmulatorHandle, sdk: Sdk) -> None:
    from azure.mgmt.keyvault.models import Sku, VaultCreateOrUpdateParameters, VaultProperties

    emulator.seed(
        {"resource_groups": [{"subscription": SUBSCRIPTION, "name": "rg-keys", "location": "westeurope"}]}
    )
    mgmt = sdk.keyvault_mgmt()
    params = VaultCreateOrUpdateParameters(
        location="westeurope",
        properties=VaultProperties(
            tenant_id=TENANT,
            sku=Sku(family="A", name="standard"),
            access_policies=[],
            enable_purge_protection=True,
        ),
    )
    created = mgmt.vaults.begin_create_or_update("rg-keys", "kvnew", params).result()
    assert created.properties.vault_uri == "https://kvnew.vault.azure.net/"
    assert created.properties.enable_purge_protection is True
    assert list(sdk.keys("https://kvnew.vault.azure.net/").list_properties_of_keys()) == []


# ------------------------------------------------------------------------ wired into the cluster side


def _seed_cluster(emulator: EmulatorHandle, **vault_over: Any) -> None:
    emulator.seed(
        {
            "vaults": [vault(**vault_over)],
            "clusters": [
                {
                    "subscription": SUBSCRIPTION,
                    "resource_group": "rg-la",
                    "name": "cmkcluster",
                    "location": "westeurope",
                    "principal_id": PRINCIPAL,
                }
            ],
        }
    )


def _set_key(sdk: Sdk, version: str) -> Any:
    patch = {
        "properties": {
            "keyVaultProperties": {"keyVaultUri": VAULT_URL, "keyName": "k1", "keyVersion": version}
        }
    }
    return sdk.loganalytics().clusters.begin_update("rg-la", "cmkcluster", patch).result()


def test_cluster_key_update_is_validated_by_the_vault(emulator: EmulatorHandle, sdk: Sdk) -> None:
    _seed_cluster(emulator, accessPolicies=[{"objectId": PRINCIPAL, "keys": ["get", "wrapKey"]}])
    with pytest.raises(HttpResponseError) as info:
        _set_key(sdk, V2)  # rule C7: unwrapKey missing
    assert info.value.status_code == 400
    assert "Failed to validate key in Key Vault" in str(info.value)

    _seed_cluster(emulator, purgeProtection=False)
    with pytest.raises(HttpResponseError) as info:
        _set_key(sdk, V2)  # rule C7: vault not recoverable
    assert "Key isn't recoverable" in str(info.value)

    _seed_cluster(emulator, location="northeurope")
    with pytest.raises(HttpResponseError) as info:
        _set_key(sdk, V2)  # rule C8
    assert "same region and tenant" in str(info.value)


def test_disabling_the_used_version_is_recorded_as_revocation(emulator: EmulatorHandle, sdk: Sdk) -> None:
    _seed_cluster(emulator)
    cluster = _set_key(sdk, V2)
    assert cluster.properties.key_vault_properties.key_version == V2
    assert not [e for e in emulator.events() if e["kind"] == "revoked"]

    sdk.keys(VAULT_URL).update_key_properties("k1", V2, enabled=False)  # rule K1
    revoked = [e for e in emulator.events() if e["kind"] == "revoked"]
    assert len(revoked) == 1 and revoked[0]["resource_id"].endswith("/clusters/cmkcluster")
