"""The emulator answers like Azure: every recorded ARM and Key Vault request is sent again, in the order
Azure received it, to an emulator seeded with the estate the recording implies. Each answer must have
the recorded status code, the recorded LRO headers (`Azure-AsyncOperation`, `Location`; for a 401 the
`WWW-Authenticate` challenge), and a body with the same set of key paths (values differ: ids, times);
error answers must also carry the recorded code and message.

Time: the simulated clock is set to each interaction's recorded `Date` before it is sent, with the
emulator's default durations, so a recorded `Updating`/`InProgress` poll finds the same state.
Links Azure handed out (async-operation URLs, nextLinks) are followed: a recorded request to a URL a
recorded answer named goes to the URL the emulator's answer named instead.

Skipped interactions (services the emulator does not play) and the few differences that are on purpose
are listed here and in README.md; a listed difference that no longer differs fails the test, so the
list cannot go stale.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from conformance_support import TALLY, Interaction, load, shape_difference

from tests.conftest import STATIC_TOKEN, redirect_session

# The emulator's own defaults (emulator/README.md); every recorded timing falls inside them: the 2020 key
# update shows Updating 94 s after the PATCH and Succeeded at 125 s; clusters were still creating after
# 183 s; workspaces were Creating at once and Succeeded 30 s later; the vault was ready 31 s after its PUT.
DURATIONS = {
    "cluster_create": 7200.0,
    "cluster_update": 120.0,
    "cluster_delete": 60.0,
    "link": 5400.0,
    "unlink": 5400.0,
    "workspace_create": 2.0,
}
SUB0 = "00000000-0000-0000-0000-000000000000"
AAD = "AAD sign-in (login.microsoftonline.com): the emulator accepts any bearer token"
GRAPH = "Azure AD Graph (graph.windows.net) is not emulated: the caller is the emulator's default caller"
STORAGE = "Microsoft.Storage is not emulated: the storage account is part of the seeded estate"
PROVIDER = "provider registration metadata (Microsoft.Resources) is not emulated"
TENANT_2020 = "54826b22-38d6-4fb2-bad9-b7b93a3e9c5a"  # the recorded tenant of the azure-cli sessions
ALL_PERMISSION_KINDS = ("keys", "secrets", "certificates", "storage")


@dataclass(frozen=True)
class Difference:
    """What differs on purpose in one interaction, exactly (so a fixed one is noticed)."""

    why: str
    missing: frozenset[str] = frozenset()  # key paths the recording has and the emulator does not
    extra: frozenset[str] = frozenset()  # key paths the emulator has and the recording does not
    message: bool = False  # the error message text differs


@dataclass(frozen=True)
class Scenario:
    recording: str
    estate: dict[str, Any]
    skip: dict[int, str] = field(default_factory=dict)
    documented: dict[int, Difference] = field(default_factory=dict)
    time_order: bool = False  # replay by recorded Date, not file order (see the PowerShell scenario)
    tenant: str | None = None  # the tenant the recorded vaults answer for


def _vault(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "subscription": SUB0, "tenantId": TENANT_2020, **kw}


SCENARIOS = [
    Scenario(
        "azure-cli/test_monitor_log_analytics_cluster_update_key.yaml",
        {
            "clusters": [
                {
                    "subscription": SUB0,
                    "resource_group": "azure-cli-test-scus",
                    "name": "yu-test-cluster2",
                    "location": "South Central US",
                    "capacity": 1100,
                    "principal_id": "84264fae-795d-47b4-ba26-659606ff1b36",
                    "tenant_id": TENANT_2020,
                    "last_sku_update": "2020-04-24T03:27:36Z",
                    "created": "2020-04-24T03:00:00Z",
                    "key": {
                        "keyVaultUri": "https://yu-vault-1.vault.azure.net/",
                        "keyName": "key3",
                        "keyVersion": "a47117ed5bc24fb1accdb6371b6ae4e7",
                    },
                }
            ],
            "vaults": [
                _vault(
                    "yu-vault-1",
                    location="southcentralus",
                    purgeProtection=True,
                    accessPolicies=[
                        {
                            "objectId": "84264fae-795d-47b4-ba26-659606ff1b36",
                            "keys": ["get", "wrapKey", "unwrapKey"],
                        }
                    ],
                    keys=[
                        {"name": "key3", "versions": [{"version": "a47117ed5bc24fb1accdb6371b6ae4e7"}]},
                        {"name": "key2", "versions": [{"version": "dc814576e6b34de69a10b186a4723035"}]},
                    ],
                )
            ],
        },
    ),
    Scenario(
        "azure-cli/test_monitor_log_analytics_cluster_default.2022-07.first8.yaml",
        {
            "resource_groups": [
                {
                    "subscription": SUB0,
                    "name": "cli_test_monitor_log_analytics_cluster_c000001",
                    "location": "centralus",
                    "tags": {"product": "azurecli", "cause": "automation"},
                }
            ]
        },
    ),
    Scenario(
        "azure-cli/test_monitor_log_analytics_cluster_default.2025-05.first3.yaml",
        {
            "resource_groups": [
                {
                    "subscription": SUB0,
                    "name": "cli_test_monitor_log_analytics_cluster_c000001",
                    "location": "centralus",
                    "tags": {"product": "azurecli", "cause": "automation"},
                }
            ]
        },
    ),
    Scenario(
        "azure-cli/test_monitor_log_analytics_workspace_default.first6.yaml",
        {
            "resource_groups": [
                {
                    "subscription": SUB0,
                    "name": "cli_test_monitor_workspace000001",
                    "location": "centralus",
                    "tags": {"product": "azurecli"},
                }
            ]
        },
    ),
    Scenario(
        "azure-cli/test_monitor_log_analytics_workspace_linked_storage.yaml",
        {
            "resource_groups": [
                {
                    "subscription": SUB0,
                    "name": "cli_test_monitor_workspace_linked_storage000001",
                    "location": "eastus",
                    "tags": {"product": "azurecli"},
                }
            ],
            "storage_accounts": [
                {
                    "subscription": SUB0,
                    "resource_group": "cli_test_monitor_workspace_linked_storage000001",
                    "name": name,
                    "location": "eastus",
                }
                for name in ("saws1000002", "saws2000003", "saws3000004")
            ],
        },
    ),
    Scenario(
        "azure-powershell/TestLinkedStorageAccountCRUD.first5.json",
        {},
        skip={0: PROVIDER},
        documented={
            2: Difference(
                "2020 text; the emulator answers today's ARM text, which adds 'For more details please go "
                "to https://aka.ms/ARMResourceNotFoundFix' (docs/azure-wire.md)",
                message=True,
            )
        },
        # PowerShell's recorder writes entries grouped by request (the two workspace GETs together); the
        # Date headers show the PUT [4] came before the second GET [3].
        time_order=True,
    ),
    Scenario(
        "azure-sdk-for-python/test_workspace.pyTestMgmtLogAnalyticsWorkspacetest_loganalytics_workspace.json",
        {"resource_groups": [{"subscription": SUB0, "name": "5b75337b", "location": "westus"}]},
        skip={0: AAD, 1: AAD, 2: AAD},
        documented={
            i: Difference(
                "no `properties.source` in this 2022 python-SDK recording; the 2023 azure-cli recording of "
                "the same api-version 2021-12-01-preview (and every other one) has it, as the emulator does",
                extra=frozenset({"properties.source"}),
            )
            for i in (3, 4, 5)
        },
    ),
    Scenario(
        "azure-cli/test_activity_log_list_scenario.yaml",
        {
            "storage_accounts": [
                {
                    "subscription": SUB0,
                    "resource_group": "clitest.rg000001",
                    "name": "clitest000002",
                    "location": "westus",
                }
            ]
        },
        skip={1: STORAGE, 2: STORAGE, 3: STORAGE},
    ),
    Scenario(
        "azure-cli/test_keyvault_key.first7.yaml",
        {
            "resource_groups": [
                {"subscription": SUB0, "name": "cli_test_keyvault_key000001", "location": "westus"}
            ]
        },
        skip={0: GRAPH},
        documented={
            3: Difference(
                "2020 text; the emulator answers today's 'AKV10000: Request is missing a Bearer or PoP "
                "token.' (recorded 2022 and 2023)",
                message=True,
            )
        },
        tenant=TENANT_2020,
    ),
    Scenario(
        "azure-cli/test_keyvault_key_rotation.yaml",
        {
            "resource_groups": [
                {"subscription": SUB0, "name": "cli_test_keyvault_key000001", "location": "eastus2"}
            ],
            "vaults": [
                _vault(
                    "cli-test-kv-key-000002",
                    resourceGroup="cli_test_keyvault_key000001",
                    location="eastus2",
                    softDeleteRetentionDays=7,
                    accessPolicies=[
                        {
                            "objectId": "3707fb2f-ac10-4591-a04f-8b0d786ea37d",
                            "permissions": {k: ["all"] for k in ALL_PERMISSION_KINDS},
                        }
                    ],
                )
            ]
        },
        tenant=TENANT_2020,
    ),
    Scenario(
        "azure-sdk-for-python/test_key_client.pyTestKeyClienttest_list_versions[7.3_vault].json",
        {"vaults": [_vault("vaultname", location="westus2", softDeleteRetentionDays=7)]},
        skip={1: AAD, 2: AAD},
    ),
]


# -- sending and comparing ------------------------------------------------------------------------------

_ID_SEGMENT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$|^[0-9a-f]{32}$")
_AFTER_OPERATION = {"operationresults", "operationstatuses", "asyncoperations"}


def _url_key(url: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """A URL as a client follows it: host without the default port, path and query case as is, query
    order ignored (Key Vault's nextLink carries `:443` and reorders `maxresults`)."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    query = tuple(sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)))
    return host, urllib.parse.unquote(parts.path).lower(), query


def _url_shape(url: str) -> tuple[str, str, str | None]:
    """What an LRO header must agree on: host, path with generated ids as `{id}`, api-version."""
    parts = urllib.parse.urlsplit(url)
    segments = []
    previous = ""
    for seg in urllib.parse.unquote(parts.path).lower().split("/"):
        segments.append("{id}" if _ID_SEGMENT.match(seg) or previous in _AFTER_OPERATION else seg)
        previous = seg
    api = dict(urllib.parse.parse_qsl(parts.query)).get("api-version")
    return (parts.hostname or "").lower(), "/".join(segments), api


def _error(body: Any) -> tuple[str | None, str | None]:
    """(code, message) of an ARM envelope, Key Vault's, or the Activity Log's PascalCase one."""
    if not isinstance(body, dict):
        return None, None
    err = body.get("error") if isinstance(body.get("error"), dict) else body
    return err.get("code") or err.get("Code"), err.get("message") or err.get("Message")


@dataclass
class Replay:
    """One recording played against the emulator."""

    scenario: Scenario
    emulator: Any
    links: dict[tuple[str, str, tuple[tuple[str, str], ...]], str] = field(default_factory=dict)
    session: requests.Session | None = None

    def send(self, it: Interaction) -> requests.Response:
        url = self.links.get(_url_key(it.url), it.url)
        challenge = it.status == 401 and it.header("www-authenticate")
        headers = {} if challenge else {"Authorization": f"Bearer {STATIC_TOKEN}"}
        data = None
        if it.request_body is not None:
            data = it.request_body if isinstance(it.request_body, str) else json.dumps(it.request_body)
            headers["Content-Type"] = "application/json"
        assert self.session is not None
        return self.session.request(
            it.method, url, data=data, headers=headers, verify=self.emulator.ca_file, timeout=30
        )

    def learn_links(self, it: Interaction, resp: requests.Response, body: Any) -> None:
        for name in ("azure-asyncoperation", "location"):
            recorded, actual = it.header(name), resp.headers.get(name)
            if recorded and actual:
                self.links[_url_key(recorded)] = actual
        if isinstance(it.body, dict) and isinstance(body, dict):
            recorded, actual = it.body.get("nextLink"), body.get("nextLink")
            if recorded and actual:
                self.links[_url_key(recorded)] = actual


def compare(it: Interaction, resp: requests.Response) -> tuple[Difference, list[str]]:
    """The differences of one answer: (the structured part a Difference can document, all as text)."""
    text: list[str] = []
    if resp.status_code != it.status:
        text.append(f"status {resp.status_code}, recorded {it.status}: {resp.text[:300]}")
        return Difference("status"), text
    for name in ("azure-asyncoperation", "location", "www-authenticate"):
        recorded, actual = it.header(name), resp.headers.get(name)
        if name == "location" and it.status == 201 and not recorded:
            continue  # a 201's Location is optional (recordings of the same call differ)
        if bool(recorded) != bool(actual):
            text.append(f"header {name}: emulator {actual!r}, recorded {recorded!r}")
        elif recorded and actual and name == "www-authenticate":
            if 'resource="https://vault.azure.net"' not in actual:
                text.append(f"header {name}: {actual!r} names no Key Vault resource")
        elif recorded and actual and _url_shape(recorded) != _url_shape(actual):
            text.append(f"header {name}: emulator {_url_shape(actual)}, recorded {_url_shape(recorded)}")
    body: Any = None
    if resp.content:
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
    if it.body is None and body is not None:
        text.append(f"body: emulator answered {resp.text[:200]!r}, recorded an empty body")
    if it.body is not None and body is None:
        text.append("body: emulator answered an empty body")
    missing, extra = shape_difference(it.body, body)
    if missing:
        text.append(f"body lacks {sorted(missing)}")
    if extra:
        text.append(f"body has extra {sorted(extra)}")
    message = False
    if it.status >= 400:
        (code, msg), (rcode, rmsg) = _error(body), _error(it.body)
        if code != rcode:
            text.append(f"error code {code!r}, recorded {rcode!r}")
        if msg != rmsg:
            message = True
            text.append(f"error message {msg!r}, recorded {rmsg!r}")
    return Difference("", frozenset(missing), frozenset(extra), message), text


def _ordered(scenario: Scenario) -> list[Interaction]:
    recorded = list(load(scenario.recording))
    if scenario.time_order:
        recorded.sort(key=lambda it: (it.date or datetime.min, it.index))
    return recorded


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: Path(s.recording).stem[:60])
def test_emulator_answers_the_recorded_session(emulator: Any, scenario: Scenario) -> None:
    recorded = _ordered(scenario)
    tally = TALLY.recording(scenario.recording)
    tally.interactions = len(recorded)
    first = min(it.date for it in recorded if it.date is not None)
    emulator.configure(durations=DURATIONS, **({"tenant_id": scenario.tenant} if scenario.tenant else {}))
    emulator.set_clock((first - timedelta(seconds=30)).isoformat())
    emulator.seed(scenario.estate)
    replay = Replay(scenario, emulator, session=redirect_session(emulator.running.port))
    now = first - timedelta(seconds=30)
    failures: list[str] = []
    for it in recorded:
        if it.index in scenario.skip:
            tally.skipped.append(f"[{it.index}] {scenario.skip[it.index]}")
            continue
        if it.date is not None and it.date > now:  # the recorded moment (never backwards)
            now = it.date
            emulator.set_clock(now.isoformat())
        resp = replay.send(it)
        tally.replayed += 1
        diff, text = compare(it, resp)
        body = resp.json() if resp.content and "json" in resp.headers.get("content-type", "") else None
        replay.learn_links(it, resp, body)
        documented = scenario.documented.get(it.index)
        if not text:
            tally.matched += 1
            if documented is not None:
                failures.append(f"[{it.index}] documented difference no longer differs: {documented.why}")
            continue
        if documented is not None and (documented.missing, documented.extra, documented.message) == (
            diff.missing,
            diff.extra,
            diff.message,
        ):
            tally.documented.append(f"[{it.index}] {documented.why}")
            continue
        line = f"{it.label}: " + "; ".join(text)
        tally.mismatched.append(f"[{it.index}] " + "; ".join(text)[:300])
        failures.append(line)
    assert not failures, "\n".join(failures)


# -- the comparison itself, and the README's lists --------------------------------------------------------


def _answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = json.dumps(body).encode() if body is not None else b""
    resp.headers.update(headers or {})
    return resp


def test_compare_flags_what_a_client_would_notice() -> None:
    """The replay fails on a wrong status, a missing LRO header, a missing or extra key path, an error
    with another code: the differences an SDK or the product would trip over."""
    put = load("azure-cli/test_monitor_log_analytics_cluster_default.2025-05.first3.yaml")[1]
    aao, location = put.header("azure-asyncoperation"), put.header("location")
    assert aao and location
    assert compare(put, _answer(202, None, {"Azure-AsyncOperation": aao, "Location": location}))[1] == []
    assert compare(put, _answer(200, None, {"Azure-AsyncOperation": aao, "Location": location}))[1]
    assert compare(put, _answer(202, None, {"Location": location}))[1]
    other_api = aao.replace("2015-11-01-preview", "2025-02-01")
    assert compare(put, _answer(202, None, {"Azure-AsyncOperation": other_api, "Location": location}))[1]
    assert compare(put, _answer(202, {"id": "x"}, {"Azure-AsyncOperation": aao, "Location": location}))[1]
    get = load("azure-cli/test_monitor_log_analytics_cluster_update_key.yaml")[1]
    assert compare(get, _answer(200, get.body))[1] == []
    lacking = json.loads(json.dumps(get.body))
    del lacking["sku"]["lastSkuUpdate"]
    assert compare(get, _answer(200, lacking))[0].missing == {"sku.lastSkuUpdate"}
    tagged = json.loads(json.dumps(get.body)) | {"tags": {"any": "value"}}  # tag names are data
    assert compare(get, _answer(200, tagged))[1] == []
    missing = load("azure-powershell/TestLinkedStorageAccountCRUD.first5.json")[2]
    other = {"error": {"code": "NotFound", "message": missing.body["error"]["message"]}}
    assert compare(missing, _answer(404, other))[1]


def _readme_rows(section: str) -> list[tuple[str, list[int]]]:
    text = (Path(__file__).parent / "README.md").read_text(encoding="utf-8")
    block = text.split(section, 1)[1].split("\n#", 1)[0]
    rows = []
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"(\[\d+\]\s*)+", cells[1]):
            rows.append((cells[0], [int(i) for i in re.findall(r"\d+", cells[1])]))
    return rows


def _named(rows: list[tuple[str, list[int]]]) -> set[tuple[str, int]]:
    out = set()
    for name, indexes in rows:
        parts = name.split("…")
        matches = [s.recording for s in SCENARIOS if all(p in s.recording for p in parts)]
        assert len(matches) == 1, f"README row {name!r} names {matches}"
        out |= {(matches[0], i) for i in indexes}
    return out


def test_readme_lists_every_documented_difference_and_skip() -> None:
    documented = {(s.recording, i) for s in SCENARIOS for i in s.documented}
    skipped = {(s.recording, i) for s in SCENARIOS for i in s.skip}
    assert _named(_readme_rows("### Differences on purpose")) == documented
    assert _named(_readme_rows("### Skipped interactions")) == skipped
