"""Pure conversions at the Azure boundary: the wire shapes real Azure sends (docs/azure-wire.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.azure.observe import (
    cluster_from_arm,
    link_ops_from_events,
    parse_time,
    vault_from_arm,
    workspace_from_arm,
)
from controller.model import ids

SUB = "00000000-0000-0000-0000-0000000000a1"
RG_A = f"/subscriptions/{SUB}/resourceGroups/rg-A"
WS_RG = f"/subscriptions/{SUB}/resourcegroups/rg-a/providers/microsoft.operationalinsights/workspaces"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Thu, 08 May 2025 07:36:20 GMT", datetime(2025, 5, 8, 7, 36, 20, tzinfo=UTC)),
        ("2025-05-08T07:36:20.1739596Z", datetime(2025, 5, 8, 7, 36, 20, 173959, tzinfo=UTC)),
        ("2025-05-08T09:36:20+02:00", datetime(2025, 5, 8, 7, 36, 20, tzinfo=UTC)),
        ("2025-05-08T07:36:20", datetime(2025, 5, 8, 7, 36, 20, tzinfo=UTC)),
        ("not a date", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_time_accepts_both_azure_date_formats(raw: str | None, expected: datetime | None) -> None:
    assert parse_time(raw) == expected


def _cluster(**props: object) -> dict[str, object]:
    return {
        "id": f"{RG_A}/providers/Microsoft.OperationalInsights/clusters/CluA",
        "name": "CluA",
        "location": "West Europe",
        "identity": {"type": "SystemAssigned", "principalId": "p-1", "tenantId": "t-1"},
        "sku": {
            "name": "CapacityReservation",
            "capacity": 1000,
            "lastSkuUpdate": "Thu, 08 May 2025 07:36:20 GMT",
        },
        "properties": {
            "provisioningState": "Succeeded",
            "isDoubleEncryptionEnabled": False,
            "keyVaultProperties": {
                "keyVaultUri": "https://KV1.vault.azure.net",
                "keyName": "k1",
                "keyVersion": "",
            },
            "associatedWorkspaces": [
                {
                    "workspaceName": "WS1",
                    "resourceId": f"/subscriptions/{SUB}/resourcegroups/rg-a/providers/"
                    "microsoft.operationalinsights/workspaces/ws1",
                    "associateDate": "Fri, 09 May 2025 10:00:00 GMT",
                }
            ],
            **props,
        },
    }


def test_cluster_reads_location_key_and_links_as_real_azure_sends_them() -> None:
    c = cluster_from_arm(_cluster())
    assert c.location == "westeurope"
    assert c.subscription == SUB and c.resource_group == "rg-A" and c.name == "CluA"
    assert c.key is not None and c.key.version is None  # empty keyVersion = versionless
    assert c.key.vault_uri == "https://kv1.vault.azure.net/"
    assert c.last_sku_update == datetime(2025, 5, 8, 7, 36, 20, tzinfo=UTC)  # rule C4 needs it
    assert c.double_encryption is False
    assert c.principal_id == "p-1"
    ws_key = f"{WS_RG}/ws1"
    assert c.associated_workspaces == {ws_key: datetime(2025, 5, 9, 10, tzinfo=UTC)}
    assert not c.busy


def test_cluster_without_key_and_still_creating_is_busy() -> None:
    c = cluster_from_arm(_cluster(keyVaultProperties=None, provisioningState="Creating"))
    assert c.key is None
    assert c.busy  # rule C6


def test_user_assigned_identity_principal_comes_from_the_identity_map() -> None:
    data = _cluster()
    uai = f"{RG_A}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
    data["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {uai: {"principalId": "p-uai"}}}
    c = cluster_from_arm(data)
    assert c.identity_type == "UserAssigned"
    assert c.user_assigned_identities == (uai,)
    assert c.principal_id == "p-uai"


def test_workspace_link_state_comes_from_features() -> None:
    cid = f"{RG_A}/providers/Microsoft.OperationalInsights/clusters/CluA"
    w = workspace_from_arm(
        {
            "id": f"{WS_RG}/ws1",
            "name": "ws1",
            "location": "westeurope",
            "properties": {"provisioningState": "Succeeded", "features": {"clusterResourceId": cid}},
        }
    )
    assert w.cluster_id == cid
    unlinked = workspace_from_arm({"id": w.id, "location": "westeurope", "properties": {}})
    assert unlinked.cluster_id is None


def test_vault_without_purge_protection_field_means_off() -> None:
    v = vault_from_arm(
        {
            "location": "westeurope",
            "properties": {
                "vaultUri": "https://kv1.vault.azure.net/",
                "tenantId": "t-1",
                "enableSoftDelete": True,
                "accessPolicies": [
                    {
                        "tenantId": "t-1",
                        "objectId": "P-1",
                        "permissions": {"keys": ["Get", "WrapKey", "UnwrapKey"]},
                    }
                ],
            },
        }
    )
    assert v.purge_protection is False  # rule C7: absent in real responses when never set
    assert v.grants_key_access("p-1") is True
    assert v.grants_key_access("someone-else") is False


def test_activity_log_counts_one_operation_per_succeeded_correlation() -> None:
    ls = f"{WS_RG}/ws1/linkedservices/cluster"
    write = "Microsoft.OperationalInsights/workspaces/linkedServices/write"
    events = [
        {
            "operationName": {"value": write},
            "status": {"value": "Started"},
            "correlationId": "c1",
            "resourceId": ls,
            "eventTimestamp": "2026-11-01T10:00:00.0000000Z",
        },
        {
            "operationName": {"value": write},
            "status": {"value": "Succeeded"},
            "correlationId": "c1",
            "resourceId": ls,
            "eventTimestamp": "2026-11-01T10:18:00.0000000Z",
        },
        {
            "operationName": {"value": write.replace("write", "delete")},
            "status": {"value": "Succeeded"},
            "correlationId": "c2",
            "resourceId": ls,
            "eventTimestamp": "2026-11-10T10:00:00Z",
        },
        {
            "operationName": {"value": write},
            "status": {"value": "Failed"},
            "correlationId": "c3",
            "resourceId": ls,
            "eventTimestamp": "2026-11-11T10:00:00Z",
        },
        {
            "operationName": {"value": "Microsoft.OperationalInsights/clusters/write"},
            "status": {"value": "Succeeded"},
            "correlationId": "c4",
            "resourceId": ls,
            "eventTimestamp": "2026-11-12T10:00:00Z",
        },
    ]
    ops = link_ops_from_events(events)
    assert [(o.kind, o.at.day) for o in ops] == [("link", 1), ("unlink", 10)]
    assert all(o.workspace_key.endswith("/workspaces/ws1") for o in ops)
    assert all(o.source == "activityLog" for o in ops)


def test_an_attempt_without_a_final_status_is_a_link_in_progress() -> None:
    from controller.azure.observe import pending_links

    ls = f"{WS_RG}/ws9/linkedservices/cluster"
    write = "Microsoft.OperationalInsights/workspaces/linkedServices/write"
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    running = [
        {
            "operationName": {"value": write},
            "status": {"value": s},
            "correlationId": "r1",
            "resourceId": ls,
            "eventTimestamp": "2026-11-30T11:30:00Z",
        }
        for s in ("Started", "Accepted")
    ]
    stale = [{**running[0], "correlationId": "r0", "eventTimestamp": "2026-11-20T11:30:00Z"}]
    assert list(pending_links(running + stale, now).items()) == [(f"{WS_RG}/ws9", "InProgress")]
    # it counts against the W3 budget from its start, before it finishes
    ops = link_ops_from_events(running + stale, now=now)
    assert [(o.kind, o.at.hour) for o in ops] == [("link", 11)]
    # without `now`: Azure accepted it, so it spent budget whatever comes next; the stale start that was
    # never accepted did not
    assert [(o.kind, o.at.hour) for o in link_ops_from_events(running + stale)] == [("link", 11)]


_ID_PARTS = ("", SUB, "resourceGroups", "rg-a", "Microsoft.OperationalInsights", "workspaces", "law-01", "")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.dictionaries(
        st.integers(0, len(_ID_PARTS) - 1),
        st.one_of(
            st.sampled_from([".", "..", "", " ", "/", "\n", "/linkedServices/cluster", "resourceGroup", "A"]),
            st.text(alphabet="aZ09_.()-?#%& \n\u00e9", max_size=5),
        ),
        max_size=2,
    ),
    upper=st.booleans(),
)
def test_an_id_from_azure_is_parsed_alike_by_the_one_match_path_and_the_checked_path(
    edits: dict[int, str], upper: bool
) -> None:
    """Most ids (Azure's lists, most specs) take one regular-expression match; whatever an id holds
    (URL syntax, dot segments, spaces, non-ASCII, a bad GUID), it is parsed, or refused, exactly as
    the path that checks every segment would."""
    prefix, sub, word, group, namespace, kind, name, suffix = (
        edits.get(i, part.upper() if upper else part) for i, part in enumerate(_ID_PARTS)
    )
    value = f"{prefix}/subscriptions/{sub}/{word}/{group}/providers/{namespace}/{kind}/{name}{suffix}"

    def general() -> tuple[str, ...] | str:
        try:
            sub, group, namespace, types, names = ids._split(value)
        except ids.InvalidId as e:
            return str(e)
        return (sub.lower(), group, namespace, *types, "|", *names)

    try:
        rid = ids.ResourceId._parse(value, None)
        got: tuple[str, ...] | str = (rid.subscription, rid.resource_group, rid.namespace, *rid.types, "|",
                                      *rid.names)
    except ids.InvalidId as e:
        got = str(e)
    assert got == general()
    # the lists' shortcut: the same subscription, group and name, or no answer
    parts = ids.simple_parts(value)
    if parts is not None:
        assert isinstance(got, tuple) and parts == (got[0], got[1], got[-1])
