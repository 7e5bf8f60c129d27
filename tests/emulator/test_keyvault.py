"""The emulated Key Vault, driven with plain Request objects (no server): what a client or the
cluster side of the emulator would notice. SDK-level tests live in test_keyvault_sdk.py."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from emulator.http import Request, Response
from emulator.keyvault import (
    MSG_BAD_FORMAT,
    MSG_NOT_RECOVERABLE,
    MSG_VALIDATE,
    SeedError,
    VaultRegistry,
)

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SUB = "11111111-2222-3333-4444-555555555555"
PRINCIPAL = "9a8b7c6d-0000-4000-8000-000000000001"
V1 = "a" * 32
V2 = "b" * 32
V3 = "c" * 32
URI = "https://kvprod.vault.azure.net/"
KV_API = "2025-07-01"
ARM_API = "2026-05-15"
T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def changes() -> list[int]:
    return []


@pytest.fixture
def reg(clock: Clock, changes: list[int]) -> VaultRegistry:
    r = VaultRegistry(clock=clock, on_change=lambda: changes.append(1))
    r.seed([vault_doc()])
    changes.clear()
    return r


def vault_doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "kvprod",
        "subscription": SUB,
        "resourceGroup": "rg-keys",
        "location": "westeurope",
        "tenantId": TENANT,
        "softDelete": True,
        "purgeProtection": True,
        "accessPolicies": [{"objectId": PRINCIPAL, "keys": ["Get", "WrapKey", "UnwrapKey"]}],
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


def kv(
    reg: VaultRegistry,
    method: str,
    path: str,
    body: Any = None,
    *,
    host: str = "kvprod.vault.azure.net",
    auth: bool = True,
    **query: str,
) -> Response:
    q = {"api-version": KV_API, **query}
    headers = {"authorization": "Bearer fake-token"} if auth else {}
    raw = json.dumps(body).encode() if body is not None else b""
    return reg.handle_dataplane(Request(method, host, path, q, headers, raw))


def arm(
    reg: VaultRegistry,
    method: str,
    name: str | None,
    body: Any = None,
    *,
    rg: str = "rg-keys",
    tail: str = "",
) -> Response:
    path = f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults"
    if name:
        path += f"/{name}{tail}"
    raw = json.dumps(body).encode() if body is not None else b""
    req = Request(method, "management.azure.com", path, {"api-version": ARM_API}, {}, raw)
    return reg.handle_arm(req, SUB, rg, name)


def check(reg: VaultRegistry, **over: str) -> Response | None:
    args = {
        "key_vault_uri": URI,
        "key_name": "k1",
        "key_version": V2,
        "principal_id": PRINCIPAL,
        "tenant_id": TENANT,
        "cluster_location": "westeurope",
    }
    args.update(over)
    return reg.check_cluster_key(**args)


def usable(reg: VaultRegistry, version: str = V2, principal: str = PRINCIPAL) -> bool:
    return reg.key_usable(key_vault_uri=URI, key_name="k1", key_version=version, principal_id=principal)


def err(resp: Response | None) -> tuple[int, str, str]:
    assert resp is not None
    return resp.status, resp.body["error"]["code"], resp.body["error"].get("message", "")


# --------------------------------------------------------------------------------- challenge / routing


def test_first_unauthenticated_request_gets_the_bearer_challenge(reg: VaultRegistry) -> None:
    resp = kv(reg, "GET", "/keys/k1/", auth=False)
    assert resp.status == 401
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'authorization="https://login.windows.net/{TENANT}"' in challenge
    assert 'resource="https://vault.azure.net"' in challenge
    assert "AKV10000" in err(resp)[2]


def test_managed_hsm_challenge_names_the_hsm_resource(reg: VaultRegistry) -> None:
    reg.seed([vault_doc(name="hsm1", managedHsm=True)])
    resp = kv(reg, "GET", "/keys/k1/", host="hsm1.managedhsm.azure.net", auth=False)
    assert 'resource="https://managedhsm.azure.net"' in resp.headers["WWW-Authenticate"]
    # the same name is not reachable as an ordinary vault
    assert kv(reg, "GET", "/keys/k1/", host="hsm1.vault.azure.net").status == 404


def test_unknown_vault_host_is_a_clear_404(reg: VaultRegistry) -> None:
    status, code, message = err(kv(reg, "GET", "/keys/k1/", host="nosuch.vault.azure.net"))
    assert (status, code) == (404, "VaultNotFound")
    assert "nosuch.vault.azure.net" in message


def test_unknown_api_version_is_rejected(reg: VaultRegistry) -> None:
    resp = reg.handle_dataplane(
        Request(
            "GET",
            "kvprod.vault.azure.net",
            "/keys/k1/",
            {"api-version": "1999-01-01"},
            {"authorization": "Bearer t"},
        )
    )
    assert err(resp)[:2] == (400, "BadParameter")


# --------------------------------------------------------------------------------- keys


def test_unversioned_get_returns_the_newest_version_as_a_key_bundle(reg: VaultRegistry) -> None:
    resp = kv(reg, "GET", "/keys/k1/")
    assert resp.status == 200
    key = resp.body["key"]
    assert key["kid"] == f"https://kvprod.vault.azure.net/keys/k1/{V2}"
    assert key["kty"] == "RSA" and key["e"] == "AQAB"
    modulus = base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4))
    assert len(modulus) == 256 and modulus[0] & 0x80  # a plausible 2048-bit modulus
    attrs = resp.body["attributes"]
    assert attrs["created"] == int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
    assert attrs["enabled"] is True
    assert attrs["recoveryLevel"] == "Recoverable" and attrs["recoverableDays"] == 90


def test_versioned_get_and_case_insensitive_names(reg: VaultRegistry) -> None:
    resp = kv(reg, "GET", f"/keys/K1/{V1}")
    assert resp.status == 200
    assert resp.body["key"]["kid"].endswith(f"/keys/k1/{V1}")


def test_missing_key_and_missing_version_use_the_real_not_found_text(reg: VaultRegistry) -> None:
    status, code, message = err(kv(reg, "GET", "/keys/nokey/"))
    assert (status, code) == (404, "KeyNotFound")
    assert message.startswith("A key with (name/id) nokey was not found in this key vault.")
    _, _, message = err(kv(reg, "GET", f"/keys/k1/{V3}"))
    assert f"(name/id) k1/{V3} was not found" in message


def test_invalid_key_name_is_a_bad_parameter(reg: VaultRegistry) -> None:
    assert err(kv(reg, "GET", "/keys/bad_name/"))[:2] == (400, "BadParameter")


def test_version_list_pages_with_an_explicit_443_next_link(reg: VaultRegistry) -> None:
    for _ in range(3):
        assert kv(reg, "POST", "/keys/k1/create", {"kty": "RSA"}).status == 200
    first = kv(reg, "GET", "/keys/k1/versions", maxresults="2")
    assert first.status == 200 and len(first.body["value"]) == 2
    link = urlsplit(first.body["nextLink"])
    assert link.netloc == "kvprod.vault.azure.net:443" and link.path == "/keys/k1/versions"
    seen = [item["kid"] for item in first.body["value"]]
    while link is not None:
        page = kv(reg, "GET", link.path, **dict(parse_qsl(link.query)))
        seen += [item["kid"] for item in page.body["value"]]
        link = urlsplit(page.body["nextLink"]) if page.body["nextLink"] else None
    assert len(seen) == len(set(seen)) == 5
    versions = [kid.rsplit("/", 1)[-1] for kid in seen]
    assert versions == sorted(versions)  # recorded: sorted by version id, not by creation


def test_list_keys_shows_versionless_kids(reg: VaultRegistry) -> None:
    kv(reg, "POST", "/keys/k2/create", {"kty": "RSA"})
    kids = sorted(i["kid"] for i in kv(reg, "GET", "/keys").body["value"])
    assert kids == ["https://kvprod.vault.azure.net/keys/k1", "https://kvprod.vault.azure.net/keys/k2"]


def test_create_adds_a_current_version_with_clock_timestamps(
    reg: VaultRegistry, clock: Clock, changes: list[int]
) -> None:
    clock.now = T0 + timedelta(hours=1)
    resp = kv(reg, "POST", "/keys/k1/create", {"kty": "RSA", "key_size": 3072, "tags": {"team": "obs"}})
    assert resp.status == 200
    new_kid = resp.body["key"]["kid"]
    assert new_kid.rsplit("/", 1)[1] not in (V1, V2)
    assert resp.body["attributes"]["created"] == int(clock.now.timestamp())
    assert resp.body["tags"] == {"team": "obs"}
    assert kv(reg, "GET", "/keys/k1/").body["key"]["kid"] == new_kid
    assert changes


def test_malformed_bodies_are_bad_parameters_not_crashes(reg: VaultRegistry) -> None:
    assert kv(reg, "PATCH", f"/keys/k1/{V2}", ["enabled"]).status == 400
    assert kv(reg, "PATCH", f"/keys/k1/{V2}", {"attributes": {"exp": "tomorrow"}}).status == 400
    assert kv(reg, "POST", "/keys/k9/create", {"kty": "RSA", "key_size": "big"}).status == 400
    assert kv(reg, "POST", "/keys/k9/create", {"kty": "RSA", "attributes": []}).status == 400
    assert usable(reg, V2)


def test_create_rejects_unknown_key_types_and_sizes(reg: VaultRegistry) -> None:
    assert kv(reg, "POST", "/keys/k9/create", {"kty": "DSA"}).status == 400
    assert kv(reg, "POST", "/keys/k9/create", {"kty": "RSA", "key_size": 1024}).status == 400
    assert kv(reg, "POST", "/keys/k9/create", {"kty": "RSA-HSM"}).status == 400  # standard sku


def test_disabling_the_used_version_revokes_and_is_announced(reg: VaultRegistry, changes: list[int]) -> None:
    assert usable(reg, V2)
    resp = kv(reg, "PATCH", f"/keys/k1/{V2}", {"attributes": {"enabled": False}})
    assert resp.status == 200 and resp.body["attributes"]["enabled"] is False
    assert changes  # rule K1: the cluster side must re-check
    assert not usable(reg, V2)
    assert usable(reg, V1)
    assert usable(reg, "")  # versionless falls back to the newest enabled version
    kv(reg, "PATCH", f"/keys/k1/{V1}", {"attributes": {"enabled": False}})
    assert not usable(reg, "")


def test_update_sets_expiry_and_tags(reg: VaultRegistry, clock: Clock) -> None:
    exp = int((T0 + timedelta(days=1)).timestamp())
    resp = kv(reg, "PATCH", f"/keys/k1/{V2}", {"attributes": {"exp": exp}, "tags": {"a": "b"}})
    assert resp.body["attributes"]["exp"] == exp and resp.body["tags"] == {"a": "b"}
    assert usable(reg, V2)
    clock.now = T0 + timedelta(days=2)
    assert not usable(reg, V2)  # expired version = revoked (rule K1)


def test_soft_delete_then_recover(reg: VaultRegistry, changes: list[int]) -> None:
    resp = kv(reg, "DELETE", "/keys/k1")
    assert resp.status == 200
    assert resp.body["recoveryId"] == "https://kvprod.vault.azure.net/deletedkeys/k1"
    assert resp.body["scheduledPurgeDate"] - resp.body["deletedDate"] == 90 * 86400
    assert changes and not usable(reg, V2)
    assert kv(reg, "GET", "/keys/k1/").status == 404
    assert kv(reg, "GET", "/deletedkeys/k1").status == 200
    assert [i["kid"] for i in kv(reg, "GET", "/deletedkeys").body["value"]] == [
        "https://kvprod.vault.azure.net/keys/k1"
    ]
    conflict = kv(reg, "POST", "/keys/k1/create", {"kty": "RSA"})
    assert (
        conflict.status == 409
        and conflict.body["error"]["innererror"]["code"] == "ObjectIsDeletedButRecoverable"
    )
    assert kv(reg, "DELETE", "/deletedkeys/k1").status == 403  # purge protection
    assert kv(reg, "POST", "/deletedkeys/k1/recover").status == 200
    assert usable(reg, V2)


def test_delete_without_soft_delete_is_final(reg: VaultRegistry) -> None:
    reg.seed([vault_doc(softDelete=False, purgeProtection=False)])
    resp = kv(reg, "DELETE", "/keys/k1")
    assert resp.status == 200 and "recoveryId" not in resp.body
    assert kv(reg, "GET", "/deletedkeys/k1").status == 404
    assert kv(reg, "POST", "/keys/k1/create", {"kty": "RSA"}).status == 200


@pytest.mark.parametrize(
    ("soft", "days", "purge", "level"),
    [
        (False, 90, False, "Purgeable"),
        (True, 90, False, "Recoverable+Purgeable"),
        (True, 90, True, "Recoverable"),
        (True, 7, False, "CustomizedRecoverable+Purgeable"),
        (True, 30, True, "CustomizedRecoverable"),
    ],
)
def test_recovery_level_follows_the_vault(
    reg: VaultRegistry, soft: bool, days: int, purge: bool, level: str
) -> None:
    reg.seed([vault_doc(softDelete=soft, softDeleteRetentionDays=days, purgeProtection=purge)])
    attrs = kv(reg, "GET", "/keys/k1/").body["attributes"]
    assert attrs["recoveryLevel"] == level
    assert attrs.get("recoverableDays") == (days if soft else None)  # recorded: absent without soft delete


# --------------------------------------------------------------------------------- caller access


def test_denied_caller_gets_forbidden_by_policy(reg: VaultRegistry) -> None:
    reg.seed([vault_doc(callerDenied=True)])
    status, code, message = err(resp := kv(reg, "GET", "/keys/k1/"))
    assert (status, code) == (403, "Forbidden")
    assert resp.body["error"]["innererror"]["code"] == "ForbiddenByPolicy"
    assert "does not have keys get permission on key vault 'kvprod;location=westeurope'" in message
    assert reg.caller_object_id in message


def test_caller_denial_can_be_per_operation(reg: VaultRegistry) -> None:
    reg.set_caller_denied(URI, ["list"])
    assert kv(reg, "GET", "/keys/k1/").status == 200
    assert kv(reg, "GET", "/keys/k1/versions").status == 403


def test_rbac_vault_denial_is_forbidden_by_rbac(reg: VaultRegistry) -> None:
    reg.seed([vault_doc(rbac=True, callerDenied=True)])
    resp = kv(reg, "GET", "/keys/k1/")
    assert resp.status == 403 and resp.body["error"]["innererror"]["code"] == "ForbiddenByRbac"


def test_enforced_caller_needs_its_own_policy(reg: VaultRegistry) -> None:
    reg.seed([vault_doc(enforceCallerAccess=True)])
    assert kv(reg, "GET", "/keys/k1/").status == 403
    reg.principal_grant(URI, reg.caller_object_id, ["get"])
    assert kv(reg, "GET", "/keys/k1/").status == 200
    assert kv(reg, "POST", "/keys/k1/create", {"kty": "RSA"}).status == 403


def test_outage_answers_503_and_revokes_only_after_30_minutes(reg: VaultRegistry, clock: Clock) -> None:
    reg.set_unavailable(URI, True)
    assert kv(reg, "GET", "/keys/k1/").status == 503
    assert not reg.vault_available(URI)
    clock.now = T0 + timedelta(minutes=29)
    reg.set_unavailable(URI, True)  # still the same outage: its start does not move
    assert usable(reg, V2)  # rule K3: storage rides a transient outage out from cache
    clock.now = T0 + timedelta(minutes=30)
    assert not usable(reg, V2)
    reg.set_unavailable(URI, False)
    assert usable(reg, V2) and kv(reg, "GET", "/keys/k1/").status == 200


def test_seeded_outage_can_start_in_the_past(reg: VaultRegistry) -> None:
    reg.seed([vault_doc(unavailable=True, unavailableSince="2026-11-30T05:00:00Z")])
    assert not usable(reg, V2)


# --------------------------------------------------------------------------------- cluster checks (C7/C8)


def test_a_proper_key_passes(reg: VaultRegistry) -> None:
    assert check(reg) is None
    assert check(reg, key_version="") is None
    assert check(reg, key_vault_uri="https://KVPROD.vault.azure.net", cluster_location="West Europe") is None


@pytest.mark.parametrize(
    "over",
    [
        {"key_vault_uri": "kvprod.vault.azure.net"},
        {"key_vault_uri": "http://kvprod.vault.azure.net/"},
        {"key_vault_uri": "https://kvprod.vault.azure.net/keys/k1"},
        {"key_name": ""},
        {"key_name": "k_1"},
        {"key_version": "v1"},
    ],
)
def test_malformed_key_vault_properties(reg: VaultRegistry, over: dict[str, str]) -> None:
    assert err(check(reg, **over)) == (400, "BadRequest", MSG_BAD_FORMAT)


@pytest.mark.parametrize(
    "over",
    [
        {"key_name": "nokey"},
        {"key_version": V3},
        {"principal_id": "someone-else"},
        {"key_vault_uri": "https://other.vault.azure.net/"},
    ],
)
def test_missing_key_or_permission_fails_validation(reg: VaultRegistry, over: dict[str, str]) -> None:
    assert err(check(reg, **over)) == (400, "BadRequest", MSG_VALIDATE)


def test_each_of_get_wrap_unwrap_is_needed(reg: VaultRegistry) -> None:
    for perms in (["wrapKey", "unwrapKey"], ["get", "unwrapKey"], ["get", "wrapKey"]):
        reg.seed([vault_doc(accessPolicies=[{"objectId": PRINCIPAL, "keys": perms}])])
        assert err(check(reg))[2] == MSG_VALIDATE
    reg.seed([vault_doc(accessPolicies=[{"objectId": PRINCIPAL, "permissions": {"keys": ["all"]}}])])
    assert check(reg) is None


def test_disabled_version_fails_validation(reg: VaultRegistry) -> None:
    reg.set_key_enabled(URI, "k1", V2, False)
    assert err(check(reg))[2] == MSG_VALIDATE
    assert check(reg, key_version=V1) is None


@pytest.mark.parametrize(
    "over", [{"purgeProtection": False}, {"softDelete": False, "purgeProtection": False}]
)
def test_vault_without_purge_protection_is_not_recoverable(reg: VaultRegistry, over: dict[str, bool]) -> None:
    reg.seed([vault_doc(**over)])
    assert err(check(reg)) == (400, "BadRequest", MSG_NOT_RECOVERABLE)


def test_region_and_tenant_must_match(reg: VaultRegistry) -> None:
    status, _, message = err(check(reg, cluster_location="northeurope"))
    assert status == 400 and "same region and tenant" in message and "northeurope" in message
    status, _, message = err(check(reg, tenant_id="00000000-0000-0000-0000-0000000000aa"))
    assert status == 400 and "same region and tenant" in message


def test_rbac_vault_uses_the_crypto_service_encryption_role(reg: VaultRegistry) -> None:
    reg.seed([vault_doc(rbac=True)])  # access policies are ignored now
    assert err(check(reg))[2] == MSG_VALIDATE
    reg.role_grant(URI, PRINCIPAL, "Key Vault Reader")  # reads metadata only: no wrap/unwrap
    assert err(check(reg))[2] == MSG_VALIDATE
    reg.role_grant(URI, PRINCIPAL, "Key Vault Crypto Service Encryption User")
    assert check(reg) is None


def test_revoking_the_principal_revokes_the_cluster(reg: VaultRegistry, changes: list[int]) -> None:
    reg.principal_revoke(URI, PRINCIPAL)
    assert changes and not usable(reg)


# --------------------------------------------------------------------------------- ARM plane


def test_get_vault_shape(reg: VaultRegistry) -> None:
    reg.seed([vault_doc(name="kvlegacy", purgeProtection=False)])
    body = arm(reg, "GET", "kvlegacy").body
    assert (
        body["id"]
        == f"/subscriptions/{SUB}/resourceGroups/rg-keys/providers/Microsoft.KeyVault/vaults/kvlegacy"
    )
    assert body["type"] == "Microsoft.KeyVault/vaults"
    props = body["properties"]
    assert props["vaultUri"] == "https://kvlegacy.vault.azure.net/"
    assert "enablePurgeProtection" not in props  # absent when never set
    assert props["enableSoftDelete"] is True and props["tenantId"] == TENANT
    assert props["accessPolicies"][0]["permissions"]["keys"] == ["Get", "WrapKey", "UnwrapKey"]
    assert arm(reg, "GET", "kvprod").body["properties"]["enablePurgeProtection"] is True


def test_list_by_resource_group_and_not_found(reg: VaultRegistry) -> None:
    reg.seed([vault_doc(name="kvother", resourceGroup="rg-other")])
    assert [v["name"] for v in arm(reg, "GET", None).body["value"]] == ["kvprod"]
    assert sorted(v["name"] for v in arm(reg, "GET", None, rg="").body["value"]) == ["kvother", "kvprod"]
    status, code, message = err(arm(reg, "GET", "kvprod", rg="rg-other"))
    assert (status, code) == (404, "ResourceNotFound") and "rg-other" in message


def test_put_creates_then_updates(reg: VaultRegistry) -> None:
    body = {
        "location": "westeurope",
        "properties": {"tenantId": TENANT, "sku": {"family": "A", "name": "standard"}, "accessPolicies": []},
    }
    created = arm(reg, "PUT", "kvnew", body)
    assert created.status == 200  # recorded: 200 while DNS registers, then Succeeded
    assert created.body["properties"]["provisioningState"] == "RegisteringDns"
    assert arm(reg, "GET", "kvnew").body["properties"]["provisioningState"] == "Succeeded"
    assert created.body["properties"]["enableSoftDelete"] is True  # default on create
    body["properties"]["enablePurgeProtection"] = True
    updated = arm(reg, "PUT", "kvnew", body)
    assert updated.status == 200 and updated.body["properties"]["enablePurgeProtection"] is True
    assert kv(reg, "GET", "/keys", host="kvnew.vault.azure.net").body["value"] == []


def test_vault_names_are_global_and_validated(reg: VaultRegistry) -> None:
    body = {"location": "westeurope", "properties": {"tenantId": TENANT, "sku": {"name": "standard"}}}
    assert err(arm(reg, "PUT", "kvprod", body, rg="rg-other"))[:2] == (409, "VaultAlreadyExists")
    assert err(arm(reg, "PUT", "1bad--name", body))[:2] == (400, "VaultNameNotValid")
    assert err(arm(reg, "PUT", "kvnew", {"properties": body["properties"]}))[:2] == (400, "LocationRequired")


def test_irreversible_switches_cannot_be_undone(reg: VaultRegistry) -> None:
    resp = arm(reg, "PATCH", "kvprod", {"properties": {"enablePurgeProtection": False}})
    assert resp.status == 400 and "enablePurgeProtection" in err(resp)[2]
    resp = arm(reg, "PATCH", "kvprod", {"properties": {"enableSoftDelete": False}})
    assert resp.status == 400 and "enableSoftDelete" in err(resp)[2]
    assert arm(reg, "GET", "kvprod").body["properties"]["enablePurgeProtection"] is True


def test_refused_patch_changes_nothing(reg: VaultRegistry) -> None:
    resp = arm(reg, "PATCH", "kvprod", {"properties": {"accessPolicies": [], "enableSoftDelete": False}})
    assert resp.status == 400
    assert usable(reg)


def test_patch_enables_purge_protection(reg: VaultRegistry) -> None:
    reg.seed([vault_doc(purgeProtection=False)])
    assert err(check(reg))[2] == MSG_NOT_RECOVERABLE
    resp = arm(reg, "PATCH", "kvprod", {"properties": {"enablePurgeProtection": True}})
    assert resp.status == 200 and resp.body["properties"]["enablePurgeProtection"] is True
    assert check(reg) is None


def test_access_policy_add_replace_remove(reg: VaultRegistry, changes: list[int]) -> None:
    other = "00000000-0000-4000-8000-0000000000bb"

    def policies() -> dict[str, list[str]]:
        props = arm(reg, "GET", "kvprod").body["properties"]
        return {p["objectId"]: p["permissions"]["keys"] for p in props["accessPolicies"]}

    def op(kind: str, oid: str, keys: list[str]) -> Response:
        body = {
            "properties": {
                "accessPolicies": [{"tenantId": TENANT, "objectId": oid, "permissions": {"keys": keys}}]
            }
        }
        return arm(reg, "PUT", "kvprod", body, tail=f"/accessPolicies/{kind}")

    resp = op("add", other, ["get"])
    assert resp.status == 200 and resp.body["type"] == "Microsoft.KeyVault/vaults/accessPolicies"
    op("add", other, ["list"])
    assert policies()[other] == ["get", "list"]
    op("replace", other, ["wrapKey"])
    assert policies()[other] == ["wrapKey"]
    changes.clear()
    op("remove", PRINCIPAL, ["unwrapkey"])
    assert changes and not usable(reg)  # rule K2: access policy removed
    assert policies()[PRINCIPAL] == ["Get", "WrapKey"]
    op("remove", PRINCIPAL, ["Get", "WrapKey"])
    assert PRINCIPAL not in policies()
    assert err(op("merge", other, ["get"]))[0] == 400


def test_arm_requires_a_known_api_version(reg: VaultRegistry) -> None:
    path = f"/subscriptions/{SUB}/resourceGroups/rg-keys/providers/Microsoft.KeyVault/vaults/kvprod"
    resp = reg.handle_arm(Request("GET", "management.azure.com", path, {}, {}), SUB, "rg-keys", "kvprod")
    assert err(resp)[:2] == (400, "MissingApiVersionParameter")
    resp = reg.handle_arm(
        Request("GET", "management.azure.com", path, {"api-version": "2000-01-01"}, {}),
        SUB,
        "rg-keys",
        "kvprod",
    )
    assert resp.status == 400


def test_deleting_the_vault_revokes(reg: VaultRegistry, changes: list[int]) -> None:
    assert arm(reg, "DELETE", "kvprod").status == 200
    assert changes and not usable(reg)
    assert arm(reg, "DELETE", "kvprod").status == 204


# --------------------------------------------------------------------------------- seeding / concurrency


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "x"},
        vault_doc(keys=[{"name": "k1", "versions": [{"version": "short"}]}]),
        vault_doc(keys=[{"name": "k1", "versions": [{"version": V1, "created": "yesterday"}]}]),
        vault_doc(accessPolicies=[{"keys": ["get"]}]),
        vault_doc(softDeleteRetentionDays=3),
    ],
)
def test_bad_seed_is_refused_with_a_reason(reg: VaultRegistry, doc: dict[str, Any]) -> None:
    with pytest.raises(SeedError):
        reg.seed([doc])


def test_reset_empties_everything(reg: VaultRegistry, changes: list[int]) -> None:
    reg.reset()
    assert changes and not usable(reg)
    assert kv(reg, "GET", "/keys/k1/").status == 404


def test_on_change_runs_outside_the_lock(clock: Clock) -> None:
    """The cluster side re-checks keys from its own thread inside on_change; holding our lock
    there would deadlock the emulator."""
    results: list[bool] = []
    holder: dict[str, VaultRegistry] = {}

    def on_change() -> None:
        t = threading.Thread(target=lambda: results.append(usable(holder["r"])))
        t.start()
        t.join(timeout=5)
        assert not t.is_alive(), "key_usable blocked: on_change was called with the lock held"

    reg = VaultRegistry(clock=clock, on_change=on_change)
    holder["r"] = reg
    reg.seed([vault_doc()])
    kv(reg, "PATCH", f"/keys/k1/{V2}", {"attributes": {"enabled": False}})
    assert results == [True, False]
