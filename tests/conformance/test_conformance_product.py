"""The product reads real bodies: every recorded success body for clusters, workspaces, linked storage
accounts, Key Vault key versions and operation starts goes through controller/azure's own parsing
(directly, or through the real SDK with the recorded answers played back), plus the REST-spec examples
for what no recording shows (linked services, operation status, the Activity Log, today's cluster).

Expected values come from the recorded REQUESTS (what the client asked for) or are read off the
recording by eye; never from the code under test.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conformance_support import (
    TALLY,
    ReplayTransport,
    StaticCredential,
    example,
    load,
    synthetic,
)

from controller.azure import errors
from controller.azure.clients import AzureClients
from controller.azure.observe import (
    _Acc,
    _read_byos,
    _read_key,
    byos_from_arm,
    byos_link_from_arm,
    cluster_from_arm,
    link_from_arm,
    link_ops_from_events,
    parse_time,
    workspace_from_arm,
)
from controller.azure.operations import Operations, Precheck
from controller.model import compare, ids
from controller.model.observed import ObservedWorkspace
from controller.planning.plan import Action, ByosUnlinkParams, Change

UPDATE_KEY = "azure-cli/test_monitor_log_analytics_cluster_update_key.yaml"
LINKED_STORAGE = "azure-cli/test_monitor_log_analytics_workspace_linked_storage.yaml"
WORKSPACE_RECORDINGS = (
    "azure-cli/test_monitor_log_analytics_workspace_default.first6.yaml",
    LINKED_STORAGE,
    "azure-powershell/TestLinkedStorageAccountCRUD.first5.json",
    "azure-sdk-for-python/test_workspace.pyTestMgmtLogAnalyticsWorkspacetest_loganalytics_workspace.json",
)
KEY_VERSIONS = "azure-sdk-for-python/test_key_client.pyTestKeyClienttest_list_versions[7.3_vault].json"
CLUSTER_CREATES = (
    "azure-cli/test_monitor_log_analytics_cluster_default.2022-07.first8.yaml",
    "azure-cli/test_monitor_log_analytics_cluster_default.2025-05.first3.yaml",
)


def _clients(*interactions: Any, repeat_last: bool = False) -> AzureClients:
    """The product's own client factory, its SDK clients answered by the recording."""
    return AzureClients(
        env={},
        credential=StaticCredential(),  # type: ignore[arg-type]
        polling_interval=0,
        transport=ReplayTransport(interactions, repeat_last=repeat_last),
    )


# -- clusters -------------------------------------------------------------------------------------------


def test_2020_key_update_bodies_give_the_cluster_azure_reports() -> None:
    """api 2020-03-01-preview: the PATCH answers a wrapper, the vault comes back with `:443`,
    `lastSkuUpdate` is under `sku`, RFC-1123 dates, a lower-cased sku name, the old key while Updating."""
    recorded = load(UPDATE_KEY)
    patch = recorded[0]
    sent = patch.request_body["properties"]["keyVaultProperties"]
    wanted = ids.KeyRef(ids.parse_vault_uri(sent["keyVaultUri"]), sent["keyName"], sent["keyVersion"])
    cluster_path = ids.id_key(patch.path)
    states = []
    for it in recorded:
        c = cluster_from_arm(it.body)
        TALLY.parsed(UPDATE_KEY)
        assert ids.id_key(c.id) == cluster_path
        assert c.name == "yu-test-cluster2" and c.resource_group == "azure-cli-test-scus"
        assert c.location == "southcentralus"  # "South Central US" on the wire
        assert c.capacity == 1100
        assert c.last_sku_update == datetime(2020, 4, 24, 3, 27, 36, tzinfo=UTC)  # rule C4, under `sku`
        assert c.principal_id == "84264fae-795d-47b4-ba26-659606ff1b36"
        assert c.key is not None
        # `https://yu-vault-1.vault.azure.net:443` is the vault the spec names without a port
        assert c.key.vault_uri == wanted.vault_uri
        assert c.key.key() == ids.KeyRef("https://yu-vault-1.vault.azure.net/", c.key.name).key()
        states.append((c.provisioning_state, c.busy, c.key.same_as(wanted)))
    # the PATCH answer and the polls show the old key while Updating (rule C6: busy), then the new one
    assert states == [("Updating", True, False)] * 5 + [("Succeeded", False, True)] * 2


def test_recorded_key_update_is_running_then_done_with_the_443_vault() -> None:
    """Operations re-reads the cluster through the real SDK: while the recorded GETs say Updating a key
    change is in progress (rule C6); once they show key2 at `https://yu-vault-1.vault.azure.net:443`, the
    change the PATCH asked for (vault with a slash, no port) is done and verifies."""
    recorded = load(UPDATE_KEY)
    patch = recorded[0]
    sent = patch.request_body["properties"]["keyVaultProperties"]
    rid = ids.ResourceId.parse(patch.path)
    change = Change(
        id="k1",
        action=Action.SET_KEY,
        address=f"cluster.{rid.name}",
        resource_id=str(rid),
        parameters={
            "subscription": rid.subscription,
            "resource_group": rid.resource_group,
            "name": rid.name,
            "key": {"vault_uri": sent["keyVaultUri"], "name": sent["keyName"], "version": sent["keyVersion"]},
        },
    )
    assert Operations(_clients(recorded[1])).precheck(change) is Precheck.IN_PROGRESS
    assert Operations(_clients(recorded[5])).precheck(change) is Precheck.DONE
    Operations(_clients(recorded[6])).verify(change)  # raises InconsistentResult on a mismatch
    TALLY.parsed(UPDATE_KEY, 3)


def test_todays_cluster_example_reads_iso_dates_and_linked_workspaces() -> None:
    body = example("2025-07-01/ClustersGet.json")["responses"]["200"]["body"]
    c = cluster_from_arm(body)
    TALLY.parsed("rest-api-specs-examples/2025-07-01/ClustersGet.json")
    assert c.last_sku_update == datetime(2020, 1, 13, 17, 40, 33, tzinfo=UTC)  # capacityReservationProperties
    assert c.created == datetime(2020, 1, 13, 17, 40, 33, tzinfo=UTC)
    linked = {ids.id_key(w["resourceId"]) for w in body["properties"]["associatedWorkspaces"]}
    assert set(c.associated_workspaces) == linked  # rule W1 count, W3 history
    assert set(c.associated_workspaces.values()) == {datetime(2020, 1, 13, 23, 40, 33, tzinfo=UTC)}
    assert c.key is not None and c.key.vault_uri == "https://aztest2170.vault.azure.net/"


def test_cluster_create_start_journals_the_recorded_status_url_and_waits_without_resending() -> None:
    """A real 202 (2022: RFC-1123 startTime; 2025: ISO, signed URLs): the product hands the
    Azure-AsyncOperation URL and a continuation token to the journal, then polls the recorded
    `InProgress` until its timeout and says the operation is still running (never re-sent)."""
    for name in CLUSTER_CREATES:
        recorded = load(name)
        put = recorded[1]
        rid = ids.ResourceId.parse(put.path)
        ops = Operations(_clients(*recorded[1:], repeat_last=True), operation_timeout=0.2)
        change = Change(
            id="c1",
            action=Action.CREATE,
            address=f"cluster.{rid.name}",
            resource_id=str(rid),
            parameters={
                "subscription": rid.subscription,
                "resource_group": rid.resource_group,
                "name": rid.name,
                "location": put.request_body["location"],
                "capacity": put.request_body["sku"]["capacity"],
                "identity": {"type": "SystemAssigned"},
                "billing_type": "Cluster",
                "double_encryption": True,
                "availability_zones": True,
            },
        )
        journal: list[tuple[str | None, str | None]] = []

        def on_sent(url: str | None, token: str | None, journal: list[Any] = journal) -> None:
            journal.append((url, token))

        handle = ops.start(change, on_sent)
        TALLY.parsed(name)
        assert journal and journal[0][0] == put.header("azure-asyncoperation")
        assert journal[0][1]  # a continuation token to resume from after a crash
        with pytest.raises(errors.StillRunning):
            ops.wait(handle)
        sent = ops.clients._transport.sent  # type: ignore[attr-defined]
        assert sum(1 for s in sent if s.startswith("PUT ")) == 1
        TALLY.parsed(name, len(recorded) - 2)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Fri, 01 Jul 2022 12:54:08 GMT", datetime(2022, 7, 1, 12, 54, 8, tzinfo=UTC)),  # 2022 poll
        ("2025-05-08T07:36:20.1739596Z", datetime(2025, 5, 8, 7, 36, 20, 173959, tzinfo=UTC)),  # 2025
        ("2017-01-01T16:13:13.933Z", datetime(2017, 1, 1, 16, 13, 13, 933000, tzinfo=UTC)),  # example
    ],
)
def test_operation_status_times_in_every_recorded_format(raw: str, expected: datetime) -> None:
    recorded = [it for name in CLUSTER_CREATES for it in load(name)]
    polls = [it.body["startTime"] for it in recorded if "/operationstatuses/" in it.path.lower()]
    status = example("2025-07-01/OperationStatusesGet.json")["responses"]["200"]["body"]
    assert raw in [*polls, status["endTime"]]  # the strings are the recorded ones
    assert parse_time(raw) == expected


# -- workspaces -----------------------------------------------------------------------------------------


def _workspace_bodies() -> list[tuple[str, Any]]:
    out = []
    for name in WORKSPACE_RECORDINGS:
        recorded = load(name)
        for it in recorded:
            kind = it.body.get("type", "") if isinstance(it.body, dict) else ""
            if it.status in (200, 201) and kind.endswith("/workspaces"):
                out.append((name, it))
    return out


@pytest.mark.parametrize(("name", "it"), _workspace_bodies(), ids=lambda v: getattr(v, "label", ""))
def test_workspace_bodies_keep_the_name_and_match_the_requested_id(name: str, it: Any) -> None:
    """Ids come back lower-cased (`aztestps2609`) while `name` keeps the requested case
    (`AzTestps2609`); both date formats; `East US` is `eastus`."""
    w = workspace_from_arm(it.body)
    TALLY.parsed(name)
    requested = ids.ResourceId.parse(it.path)
    assert w.name == requested.name  # as the user wrote it, whatever the id's casing
    assert ids.id_key(w.id) == requested.key()  # the spec's id finds the observed workspace
    assert w.subscription == requested.subscription
    assert w.resource_group.lower() == requested.resource_group.lower()
    put = next(x for x in load(name) if x.method == "PUT" and ids.id_key(x.path) == requested.key())
    assert w.location == ids.normalise_location(put.request_body["location"])
    assert w.provisioning_state == it.body["properties"]["provisioningState"]
    assert w.cluster_id is None


# -- linked storage accounts (BYOS) ---------------------------------------------------------------------


def test_linked_storage_bodies_give_the_accounts_that_were_put() -> None:
    """PUT and GET answers lower-case `dataSourceType` and `name` (`customlogs`); the accounts are the
    ones the PUT sent, in order."""
    recorded = load(LINKED_STORAGE)
    last_put: dict[str, list[str]] = {}
    for it in recorded:
        if "/linkedstorageaccounts/" not in it.path.lower():
            continue
        kind = it.path.rsplit("/", 1)[-1].lower()
        if it.method == "PUT":
            last_put[kind] = it.request_body["properties"]["storageAccountIds"]
        if it.method in ("PUT", "GET") and it.status == 200:
            ws_id = it.path.rsplit("/linkedStorageAccounts", 1)[0]
            view = byos_link_from_arm(ws_id, it.body)
            TALLY.parsed(LINKED_STORAGE)
            assert view.byos == {kind: last_put[kind][0]}


def test_observe_reads_byos_from_the_recorded_list_through_the_sdk() -> None:
    recorded = load(LINKED_STORAGE)
    listing = recorded[13]
    ws_id = listing.path.rsplit("/linkedStorageAccounts", 1)[0]
    rid = ids.ResourceId.parse(ws_id)
    acc = _Acc()
    key = ids.id_key(ws_id)
    acc.workspaces[key] = ObservedWorkspace(
        ws_id, rid.subscription, rid.resource_group, rid.name, "eastus", "Succeeded", None
    )
    _read_byos(ws_id, _clients(listing), acc)
    TALLY.parsed(LINKED_STORAGE)
    puts = {
        it.path.rsplit("/", 1)[-1].lower(): it.request_body["properties"]["storageAccountIds"][0]
        for it in recorded[:13]
        if it.method == "PUT" and "/linkedstorageaccounts/" in it.path.lower()
    }
    assert acc.warnings == []
    assert acc.workspaces[key].byos_read is True
    assert acc.workspaces[key].byos == puts  # {"customlogs": ..., "azurewatson": ...}


def test_byos_link_and_unlink_take_the_recorded_synchronous_answers() -> None:
    """Linked storage PUT answers 200 at once (no async header) and DELETE 200 with an empty body: the
    product's BYOS link and unlink go through the real SDK on those answers, and the link verifies."""
    recorded = load(LINKED_STORAGE)
    put, get, delete = recorded[3], recorded[4], recorded[14]
    ws_id = put.path.rsplit("/linkedStorageAccounts", 1)[0]
    account = put.request_body["properties"]["storageAccountIds"][0]
    link = Change(
        id="b1",
        action=Action.BYOS_LINK,
        address="workspace.clitest000006.byos",
        resource_id=ws_id,
        parameters={"workspace_id": ws_id, "data_source_type": "CustomLogs", "storage_account_id": account},
        after={"storage_account_id": account},
    )
    journal: list[Any] = []
    handle = Operations(_clients(put)).start(link, lambda url, token: journal.append((url, token)))
    assert handle.poller is None and journal == [(None, None)]  # synchronous: nothing to resume
    Operations(_clients(get)).verify(link)  # raises InconsistentResult on a mismatch
    unlink = Change(id="b2", action=Action.BYOS_UNLINK, address=link.address, resource_id=ws_id,
                    parameters=ByosUnlinkParams(workspace_id=ws_id, data_source_type="AzureWatson"))
    assert Operations(_clients(delete)).start(unlink, lambda url, token: None).poller is None
    TALLY.parsed(LINKED_STORAGE, 3)


def test_linked_storage_example_lists_every_data_source_type() -> None:
    body = example("2025-07-01/LinkedStorageAccountsListByWorkspace.json")["responses"]["200"]["body"]
    byos = byos_from_arm(body["value"])
    TALLY.parsed("rest-api-specs-examples/2025-07-01/LinkedStorageAccountsListByWorkspace.json")
    assert byos == {
        item["properties"]["dataSourceType"].lower(): item["properties"]["storageAccountIds"][0]
        for item in body["value"]
    }
    assert {"query", "alerts"} <= set(byos)  # rule B1 types


# -- linked services (workspace -> cluster) -------------------------------------------------------------

SUB = "00000000-0000-0000-0000-000000000005"
WS_ID = (
    f"/subscriptions/{SUB}/resourceGroups/mms-eus/providers/Microsoft.OperationalInsights/workspaces/TestLinkWS"
)


def _link_change(cluster_id: str) -> Change:
    return Change(
        id="l1",
        action=Action.LINK,
        address="workspace.TestLinkWS",
        resource_id=WS_ID,
        parameters={"workspace_id": WS_ID, "cluster_id": cluster_id},
    )


@pytest.mark.parametrize(
    ("file", "status", "expected"),
    [
        ("LinkedServicesCreate.json", "200", Precheck.IN_PROGRESS),  # ProvisioningAccount: rule W5
        ("LinkedServicesGet.json", "200", Precheck.DONE),
    ],
)
def test_link_bodies_say_whether_a_link_is_running(file: str, status: str, expected: Precheck) -> None:
    body = example(f"2025-07-01/{file}")["responses"][status]["body"]
    view = link_from_arm(WS_ID, body)
    cluster = body["properties"]["writeAccessResourceId"]
    assert ids.id_key(view.cluster_id or "") == ids.id_key(cluster)
    assert compare.busy(view.link_state) is (expected is Precheck.IN_PROGRESS)
    url = f"https://management.azure.com{WS_ID}/linkedServices/cluster"
    ops = Operations(_clients(synthetic("GET", url, 200, body)))
    assert ops.precheck(_link_change(cluster)) is expected
    TALLY.parsed(f"rest-api-specs-examples/2025-07-01/{file}")


# -- the Activity Log -----------------------------------------------------------------------------------


def test_activity_log_example_event_shape_is_read() -> None:
    """The example's event is a support-ticket write: not a link, so no W3 history. The same event
    shape naming a linkedServices write (and its resource) counts once, at its 7-digit timestamp."""
    event = example("monitor-2015-04-01/GetActivityLogsFiltered.json")["responses"]["200"]["body"]["value"][0]
    TALLY.parsed("rest-api-specs-examples/monitor-2015-04-01/GetActivityLogsFiltered.json")
    at = datetime(2015, 1, 21, 22, 14, 26, 979277, tzinfo=UTC)
    assert link_ops_from_events([event], now=at) == []
    link = copy.deepcopy(event)
    link["operationName"]["value"] = "Microsoft.OperationalInsights/workspaces/linkedServices/write"
    link["resourceId"] = f"{WS_ID}/linkedServices/cluster"
    ops = link_ops_from_events([link], now=at + timedelta(days=1))
    assert [(o.workspace_key, o.kind, o.at) for o in ops] == [(ids.id_key(WS_ID), "link", at)]


# -- Key Vault key versions -----------------------------------------------------------------------------


def test_key_versions_pages_with_443_next_link_give_the_newest_version() -> None:
    """Two pages, versions sorted by id (not by age), a nextLink with `:443`: the current version is
    the one created last, and the vault's region comes from the response header (rule C8)."""
    recorded = load(KEY_VERSIONS)
    creates = [it for it in recorded if it.method == "POST" and it.status == 200]
    name = creates[0].path.split("/")[2]
    newest = creates[-1].body["key"]["kid"].rsplit("/", 1)[-1]
    ref = ids.KeyRef("https://vaultname.vault.azure.net/", name)
    acc = _Acc()
    _read_key(ref, _clients(recorded[10], recorded[11]), acc)
    TALLY.parsed(KEY_VERSIONS, 2)
    key = acc.keys[ref.key()]
    assert acc.warnings == []
    assert key.exists and key.readable
    assert key.current_version == newest
    assert {v.version for v in key.versions} == {c.body["key"]["kid"].rsplit("/", 1)[-1] for c in creates}
    assert key.recovery_level == "CustomizedRecoverable+Purgeable"
    assert acc.vault_regions["vaultname.vault.azure.net"] == "westus2"
