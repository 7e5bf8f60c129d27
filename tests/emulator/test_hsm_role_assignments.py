"""A Managed HSM's local RBAC through the REAL azure-keyvault-administration client: the emulator answers
`GET {hsm}/{scope}/providers/Microsoft.Authorization/roleAssignments` in the service's wire format
(rbac.json RoleAssignments_ListForScope: id, name, type, properties.principalId/roleDefinitionId/scope),
with the built-in role ids of learn.microsoft.com's Managed HSM built-in roles (rule C7)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError

HSM_URL = "https://hsmprod.managedhsm.azure.net/"
PRINCIPAL = "9a8b7c6d-0000-4000-8000-000000000001"
OTHER = "9a8b7c6d-0000-4000-8000-000000000002"
ENCRYPTION_USER = "33413926-3206-4cdd-b39a-83574fe37a17"  # Managed HSM Crypto Service Encryption User
CRYPTO_USER = "21dbd100-6940-42c2-9190-5d6cb909625b"  # Managed HSM Crypto User


def _seed(emulator: Any) -> None:
    emulator.seed({"vaults": [
        {"name": "hsmprod", "managedHsm": True, "location": "westeurope", "purgeProtection": True,
         "roleAssignments": [
             {"principalId": PRINCIPAL, "role": "Managed HSM Crypto Service Encryption User",
              "scope": "/keys/cmk"},
             {"principalId": PRINCIPAL, "role": "Managed HSM Crypto User", "scope": "/keys/other"},
             {"principalId": OTHER, "role": "Managed HSM Crypto User"},  # at "/"
         ],
         "keys": [{"name": "cmk"}, {"name": "other"}]},
        {"name": "kvplain", "location": "westeurope", "rbac": True},
    ]})


def _props(items: list[Any]) -> list[tuple[str, str, str]]:
    # the SDK turns "/" and "/keys" into KeyVaultRoleScope members: compare their values
    return sorted((a.properties.principal_id, a.properties.role_definition_id.rsplit("/", 1)[-1],
                   getattr(a.properties.scope, "value", a.properties.scope)) for a in items)


def test_list_for_a_key_with_a_principal_filter(emulator: Any, sdk: Any) -> None:
    _seed(emulator)
    client = sdk.access_control(HSM_URL)
    mine = list(client.list_role_assignments("/keys/cmk", filter=f"principalId eq '{PRINCIPAL}'"))
    assert _props(mine) == [(PRINCIPAL, ENCRYPTION_USER, "/keys/cmk")]
    assert mine[0].role_assignment_id == (
        f"/keys/cmk/providers/Microsoft.Authorization/roleAssignments/{mine[0].name}")
    assert mine[0].type == "Microsoft.Authorization/roleAssignments"
    # at "/": at, above and below it, every principal's
    assert _props(list(client.list_role_assignments("/"))) == sorted([
        (PRINCIPAL, ENCRYPTION_USER, "/keys/cmk"), (PRINCIPAL, CRYPTO_USER, "/keys/other"),
        (OTHER, CRYPTO_USER, "/")])
    # atScope(): at or above the scope only, so an assignment on another key is not listed
    above = list(client.list_role_assignments("/keys/cmk", filter="atScope()"))
    assert _props(above) == sorted([(OTHER, CRYPTO_USER, "/"), (PRINCIPAL, ENCRYPTION_USER, "/keys/cmk")])


def test_the_wire_format_and_what_only_a_managed_hsm_serves(emulator: Any) -> None:
    """Raw HTTP: the JSON shape the SDK parses; a vault's RBAC is not on its data plane."""
    _seed(emulator)
    session = requests.Session()
    session.trust_env = False

    def get(host: str) -> requests.Response:  # to the emulator, with the Azure host (as the SDK tests do)
        path = ("/keys/cmk/providers/Microsoft.Authorization/roleAssignments"
                f"?api-version=7.4&$filter=principalId eq '{PRINCIPAL}'")
        return session.get(f"https://127.0.0.1:{emulator.running.port}{path}", verify=emulator.ca_file,
                           headers={"Host": host, "Authorization": "Bearer emulator-token"}, timeout=30)

    body = get("hsmprod.managedhsm.azure.net").json()
    (item,) = body["value"]
    assert set(item) == {"id", "name", "type", "properties"}
    assert item["properties"] == {
        "scope": "/keys/cmk",
        "roleDefinitionId": (
            f"Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{ENCRYPTION_USER}"),
        "principalId": PRINCIPAL,
    }
    plain = get("kvplain.vault.azure.net")
    assert plain.status_code == 400


def test_a_denied_caller_gets_403(emulator: Any, sdk: Any) -> None:
    _seed(emulator)
    emulator.seed({"vaults": [{"name": "hsmprod", "managedHsm": True, "location": "westeurope",
                               "callerDenied": True}]})
    with pytest.raises(HttpResponseError) as err:
        list(sdk.access_control(HSM_URL).list_role_assignments("/keys/cmk"))
    assert err.value.status_code == 403
