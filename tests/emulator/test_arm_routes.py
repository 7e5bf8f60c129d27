"""ARM routes outside Log Analytics that the product's observe step reads: subscription-wide vault
lists (both SDK flavours), the generic resources list, and resource groups."""

from __future__ import annotations

from typing import Any

from emu_helpers import SUB, make_rg


def _vault(name: str, rg: str) -> dict[str, Any]:
    return {
        "name": name,
        "subscription": SUB,
        "resourceGroup": rg,
        "location": "eastus",
        "purgeProtection": True,
    }


def test_vaults_listed_by_subscription_and_via_generic_resources(emulator: Any, sdk: Any) -> None:
    emulator.seed({"vaults": [_vault("kva1", "rg1"), _vault("kvb2", "rg2")]})
    kv = sdk.keyvault_mgmt()
    assert sorted(v.name for v in kv.vaults.list_by_subscription()) == ["kva1", "kvb2"]
    listed = list(kv.vaults.list())
    assert sorted(v.name for v in listed) == ["kva1", "kvb2"]
    assert all(v.type == "Microsoft.KeyVault/vaults" for v in listed)
    other = sdk.keyvault_mgmt("00000000-0000-0000-0000-00000000beef")
    assert list(other.vaults.list_by_subscription()) == []


def test_generic_resources_filter_is_validated(emulator: Any) -> None:
    r = emulator.arm("GET", f"/subscriptions/{SUB}/resources?$filter=name eq 'x'", api_version="2015-11-01")
    assert r.status_code == 400


def test_resource_group_lifecycle(emulator: Any) -> None:
    path = f"/subscriptions/{SUB}/resourcegroups/rgx"
    assert emulator.arm("GET", path, api_version="2021-04-01").status_code == 404
    make_rg(emulator, "rgx")
    got = emulator.arm("GET", path, api_version="2021-04-01").json()
    assert got["name"] == "rgx" and got["location"] == "eastus"
    deleted = emulator.arm("DELETE", path, api_version="2021-04-01")
    assert deleted.status_code == 202  # recorded: 202 + Location to the subscription's operationresults
    done = deleted.headers["Location"].removeprefix("https://management.azure.com")
    assert emulator.arm("GET", done, api_version="").status_code == 200
    assert (
        emulator.arm("GET", path, api_version="2021-04-01").json()["error"]["code"] == "ResourceGroupNotFound"
    )


def test_malformed_subscription_id_is_400(emulator: Any) -> None:
    assert (
        emulator.arm(
            "GET", "/subscriptions/not-a-guid/resourcegroups/x", api_version="2021-04-01"
        ).status_code
        == 400
    )
