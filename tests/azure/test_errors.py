"""map_error through the emulator: each class of the error tree provoked for real, with the SDK's own
exception, and Azure's code and message kept verbatim."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from tests_azure_support import CLUSTER, CLUSTER_ID, KEY_V2, LOCATION, RG, SUB, VAULT_URI, estate

from controller.azure.clients import AzureClients
from controller.azure.errors import (
    AzureError,
    Busy,
    Forbidden,
    NotFound,
    OutcomeUnknown,
    RuleViolation,
    Terminal,
    Transient,
    map_error,
)
from controller.model.rules import Rule

# Today's codes for refusals: generic; the rule is in the message.
GENERIC_CODES = {"BadRequest", "InvalidInput", "InvalidParameter", "Conflict"}


def _raised(fn: Callable[[], Any]) -> AzureError:
    with pytest.raises(Exception) as caught:
        fn()
    return map_error(caught.value)


def _cluster_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location": LOCATION,
        "identity": {"type": "SystemAssigned"},
        "sku": {"name": "CapacityReservation", "capacity": 1000},
    }
    body.update(extra)
    return body


def _seed_cluster(name: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"subscription": SUB, "resource_group": RG, "name": name, "location": LOCATION}
    doc.update(extra)
    return doc


def test_missing_cluster_is_not_found_with_azures_words(emulator: Any, clients: AzureClients) -> None:
    err = _raised(lambda: clients.loganalytics(SUB).clusters.get(RG, "nosuchcluster"))
    assert isinstance(err, NotFound)
    assert err.status == 404 and err.code == "ResourceNotFound"
    assert err.azure_message == (  # ARM's generic 404, verbatim
        f"The Resource 'Microsoft.OperationalInsights/clusters/nosuchcluster' under resource group '{RG}' "
        "was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )


def test_soft_deleted_cluster_is_not_found_and_says_so_c11(emulator: Any, clients: AzureClients) -> None:
    emulator.seed({"clusters": [_seed_cluster("cla09", deleted="2026-11-25T00:00:00Z")]})
    err = _raised(lambda: clients.loganalytics(SUB).clusters.get(RG, "cla09"))
    assert isinstance(err, NotFound) and err.code == "ResourceNotFound"
    assert err.azure_message is not None and "deletion process" in err.azure_message


# (estate, the failing call, the rule) — each a refusal the service documents (docs/rules.md catalogue)
RULE_CASES: list[tuple[str, dict[str, Any], Callable[[AzureClients], Any], Rule]] = [
    (
        "C1 invalid name",
        {"resource_groups": [{"subscription": SUB, "name": RG, "location": LOCATION}]},
        lambda c: c.loganalytics(SUB).clusters.begin_create_or_update(RG, "bad_name!", _cluster_body()),
        Rule.C1,
    ),
    (
        "C2 sixth active cluster in a region",
        {"clusters": [_seed_cluster(f"cla0{i}") for i in range(1, 6)]},
        lambda c: c.loganalytics(SUB).clusters.begin_create_or_update(RG, "cla06", _cluster_body()),
        Rule.C2,
    ),
    (
        "C4 capacity decrease inside the lock",
        {"clusters": [_seed_cluster("cla01", capacity=2000, last_sku_update="2026-11-20T00:00:00Z")]},
        lambda c: c.loganalytics(SUB).clusters.begin_update(
            RG, "cla01", {"sku": {"name": "CapacityReservation", "capacity": 1000}}
        ),
        Rule.C4,
    ),
    (
        "C5 key set at creation with SystemAssigned",
        {"resource_groups": [{"subscription": SUB, "name": RG, "location": LOCATION}]},
        lambda c: c.loganalytics(SUB).clusters.begin_create_or_update(
            RG,
            "cla04",
            _cluster_body(properties={"keyVaultProperties": {"keyVaultUri": VAULT_URI, "keyName": "cmk"}}),
        ),
        Rule.C5,
    ),
    (
        "C9 availability zones changed after creation",
        {"clusters": [_seed_cluster("cla13")]},
        lambda c: c.loganalytics(SUB).clusters.begin_update(
            RG, "cla13", {"properties": {"isAvailabilityZonesEnabled": False}}
        ),
        Rule.C9,
    ),
    (
        "C11 name of a soft-deleted cluster",
        {"clusters": [_seed_cluster("cla05", deleted="2026-11-25T00:00:00Z")]},
        lambda c: c.loganalytics(SUB).clusters.begin_create_or_update(RG, "cla05", _cluster_body()),
        Rule.C11,
    ),
    (
        "C3 capacity outside the commitment tiers",
        {"resource_groups": [{"subscription": SUB, "name": RG, "location": LOCATION}]},
        lambda c: c.loganalytics(SUB).clusters.begin_create_or_update(
            RG, "cla07", _cluster_body(sku={"name": "CapacityReservation", "capacity": 1001})
        ),
        Rule.C3,
    ),
    (
        "C5 no identity at creation",
        {"resource_groups": [{"subscription": SUB, "name": RG, "location": LOCATION}]},
        lambda c: c.loganalytics(SUB).clusters.begin_create_or_update(
            RG, "cla08", _cluster_body(identity={"type": "None"})
        ),
        Rule.C5,
    ),
    (
        "C7 key the cluster may not use",
        estate(vault_overrides={"accessPolicies": []}),
        lambda c: c.loganalytics(SUB).clusters.begin_update(
            RG,
            CLUSTER,
            {"properties": {"keyVaultProperties": {"keyVaultUri": VAULT_URI, "keyName": "cmk",
                                                   "keyVersion": KEY_V2}}},
        ),
        Rule.C7,
    ),
    (
        "W2 workspace linked to another cluster",
        {**estate(), "clusters": [*estate()["clusters"], _seed_cluster("cla10")]},
        lambda c: c.loganalytics(SUB).linked_services.begin_create_or_update(
            "rg-apps",
            "wks1",
            "cluster",
            {"properties": {"writeAccessResourceId": CLUSTER_ID.replace(CLUSTER, "cla10")}},
        ),
        Rule.W2,
    ),
    (
        "W3 third link operation in 30 days",
        estate(),
        lambda c: c.loganalytics(SUB).linked_services.begin_create_or_update(
            "rg-apps",
            "wks3",
            "cluster",
            {"properties": {"writeAccessResourceId": CLUSTER_ID}},
        ),
        Rule.W3,
    ),
]


@pytest.mark.parametrize(
    ("seed", "call", "rule"), [c[1:] for c in RULE_CASES], ids=[c[0] for c in RULE_CASES]
)
def test_service_refusals_map_to_the_rule_they_enforce(
    emulator: Any,
    clients: AzureClients,
    seed: dict[str, Any],
    call: Callable[[AzureClients], Any],
    rule: Rule,
) -> None:
    if rule is Rule.W3:  # wks3 already had a link and an unlink in the window
        seed = dict(seed)
        seed["workspaces"] = [
            *seed["workspaces"],
            {
                "subscription": SUB,
                "resource_group": "rg-apps",
                "name": "wks3",
                "location": LOCATION,
                "link_ops": [
                    {"time": "2026-11-10T00:00:00Z", "kind": "link"},
                    {"time": "2026-11-12T00:00:00Z", "kind": "unlink"},
                ],
            },
        ]
    emulator.seed(seed)
    err = _raised(lambda: call(clients))
    assert isinstance(err, RuleViolation), repr(err)
    assert err.rule_id is rule
    assert err.code in GENERIC_CODES, err.code  # recognised by the words: the code names no rule
    assert err.azure_message  # Azure's words kept for the user
    assert f"rule {rule.value}" in str(err)


def test_update_while_creating_is_busy_c6(emulator: Any, clients: AzureClients) -> None:
    emulator.seed(
        {"clusters": [_seed_cluster("cla06", provisioning_state="Creating", remaining_seconds=3600)]}
    )
    err = _raised(
        lambda: clients.loganalytics(SUB).clusters.begin_update(RG, "cla06", {"tags": {"team": "x"}})
    )
    assert isinstance(err, Busy) and err.rule_id is Rule.C6


def test_second_link_while_one_runs_is_busy_w5(emulator: Any, clients: AzureClients) -> None:
    emulator.configure(durations={"link": 3600})
    emulator.seed(estate())
    la = clients.loganalytics(SUB)
    body = {"properties": {"writeAccessResourceId": CLUSTER_ID}}
    la.linked_services.begin_create_or_update("rg-apps", "wks2", "cluster", body, polling=False)
    err = _raised(lambda: la.linked_services.begin_delete("rg-apps", "wks2", "cluster", polling=False))
    assert isinstance(err, Busy) and err.rule_id is Rule.W5
    assert err.status == 409


def test_throttled_patch_without_retry_after_is_transient_and_not_auto_retried(
    emulator: Any, clients: AzureClients
) -> None:
    emulator.seed(estate())
    emulator.fault(
        method="PATCH",
        path="clusters",
        status=429,
        code="SubscriptionRequestsThrottled",
        message="Number of 'write' requests exceeded. Please try again after '7' seconds.",
    )
    emulator.clear_requests()
    err = _raised(lambda: clients.loganalytics(SUB).clusters.begin_update(RG, CLUSTER, {"tags": {"a": "b"}}))
    assert isinstance(err, Transient)
    assert err.retry_after == 7  # read from Azure's message when no header says it
    # azure-core does not retry 429 on PATCH by itself (facts §1.7): the caller backs off
    assert [r["method"] for r in emulator.requests()] == ["PATCH"]


def test_throttled_patch_with_retry_after_is_retried_by_the_sdk(emulator: Any, clients: AzureClients) -> None:
    """With a Retry-After header azure-core waits and re-sends any method, PATCH included."""
    emulator.seed(estate())
    emulator.fault(
        method="PATCH",
        path="clusters",
        status=429,
        retry_after=1,
        count=1,
        code="SubscriptionRequestsThrottled",
        message="Please try again after '1' seconds.",
    )
    emulator.clear_requests()
    clients.loganalytics(SUB).clusters.begin_update(RG, CLUSTER, {"tags": {"a": "b"}}).result()
    patches = [r["status"] for r in emulator.requests() if r["method"] == "PATCH"]
    assert patches == [429, 200]


def test_persistent_server_error_is_transient_after_the_sdk_retries(
    emulator: Any, clients: AzureClients
) -> None:
    emulator.fault(
        method="GET", path="clusters$", status=503, code="ServiceUnavailable", message="Try later."
    )
    err = _raised(lambda: list(clients.loganalytics(SUB).clusters.list()))
    assert isinstance(err, Transient) and err.status == 503
    assert len(emulator.requests()) > 1  # the SDK retried GET once configured here


def test_lost_link_response_is_outcome_unknown_and_not_resent(emulator: Any, clients: AzureClients) -> None:
    emulator.seed(estate())
    emulator.fault(method="PUT", path="linkedServices/cluster", reset=True, count=1)
    emulator.clear_requests()
    la = clients.loganalytics(SUB)
    body = {"properties": {"writeAccessResourceId": CLUSTER_ID}}
    err = _raised(
        lambda: la.linked_services.begin_create_or_update("rg-apps", "wks2", "cluster", body)
    )
    assert isinstance(err, OutcomeUnknown)
    assert "re-observe" in str(err)
    puts = [r for r in emulator.requests() if r["method"] == "PUT"]
    assert len(puts) == 1  # a second PUT could cost another W3 operation


def test_key_vault_refusal_is_forbidden(emulator: Any, clients: AzureClients) -> None:
    emulator.seed(estate(vault_overrides={"callerDenied": True}))
    err = _raised(lambda: list(clients.keys(VAULT_URI).list_properties_of_key_versions("cmk")))
    assert isinstance(err, Forbidden) and err.status == 403


def test_unreachable_azure_is_transient(monkeypatch: pytest.MonkeyPatch, emulator: Any) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = AzureClients(
        env={
            "CMKCTL_EMULATOR": f"https://127.0.0.1:{port}",
            "CMKCTL_CA_BUNDLE": emulator.ca_file,
            "CMKCTL_AZURE_RETRY_TOTAL": "0",
        }
    )
    err = _raised(lambda: list(dead.loganalytics(SUB).clusters.list()))
    assert isinstance(err, Transient)
    assert "could not reach Azure" in str(err)


def test_an_unrecognised_refusal_is_terminal_and_keeps_the_code() -> None:
    from azure.core.exceptions import HttpResponseError

    err = map_error(HttpResponseError(message="(Weird) Something odd"))
    assert isinstance(err, Terminal)
    assert map_error(err) is err  # mapping twice changes nothing


def test_errors_name_the_workspace_and_never_the_token(emulator: Any, clients: AzureClients) -> None:
    emulator.seed(estate())
    err = _raised(lambda: clients.loganalytics(SUB).workspaces.get("rg-apps", "nosuchws"))
    assert isinstance(err, NotFound)
    assert "cmkctl-emulator-token" not in str(err) and "Bearer" not in str(err)
    assert "nosuchws" in str(err) or "Workspace not found" in str(err)


# Azure's published refusal texts (docs/azure-wire.md error catalogue: real responses and the service's
# documented error list), each with its status and the rule it is about. These are the product's
# evidence, independent of what the emulator happens to say.
PUBLISHED: list[tuple[int, str, Rule, type[AzureError]]] = [
    (409, "Workspace link or unlink operation in process.", Rule.W5, Busy),
    (400, "Operation can't be executed now. Async operation is in a state other than succeeded. Cluster "
          "must complete its operation before any update operation is performed.", Rule.C6, Busy),
    (400, "Operation cannot be executed now. Wait for the Async operation to complete and try again.",
     Rule.C6, Busy),
    (400, "Cluster is in deleting state. Wait for the Async operation to complete and try again.",
     Rule.C6, Busy),
    (409, "Can't delete a cluster while in provisioning state. Wait for the Async operation to complete "
          "and try again.", Rule.C6, Busy),
    (409, "Another operation on this or dependent resource is in progress.", Rule.C6, Busy),
    (400, "Cluster name isn't valid. Cluster name can contain characters a-z, A-Z, 0-9 and a length of "
          "3-63.", Rule.C1, RuleViolation),
    (400, "CapacityReservationLevel must be an allowed value: [GB500,T1,T2,T5]. Operation Id: "
          "'ed0110b012e5b17debb84dd517476a6d'", Rule.C3, RuleViolation),
    (400, "CapacityReservationLevel must be in the range of 1000-3000. Contact us to increase the limit "
          "LAIngestionRate@microsoft.com", Rule.C3, RuleViolation),
    (400, "Missing Capacity in SKU. Set Capacity value to 100, 200, 300, 400, 500, 1000, 2000, 5000, "
          "10000, 25000, 50000 GB per day.", Rule.C3, RuleViolation),
    (400, "Capacity is locked for 30 days. Decreasing capacity is permitted 30 days after update.",
     Rule.C4, RuleViolation),
    (400, "Identity is null or empty. Set Identity with systemAssigned type.", Rule.C5, RuleViolation),
    (400, "KeyVaultProperties are set on creation. Update KeyVaultProperties after cluster creation.",
     Rule.C5, RuleViolation),
    (400, "KeyVaultProperties isn't empty but has a bad format.", Rule.C7, RuleViolation),
    (400, "Failed to validate key in Key Vault. Could be due to lack of permissions or when key doesn't "
          "exist. Verify that you set key and access policy in Key Vault.", Rule.C7, RuleViolation),
    (400, "Key isn't recoverable. Key Vault must be set to Soft-delete and Purge-protection.", Rule.C7,
     RuleViolation),
    (400, "westus3 doesn't support Double Encryption for clusters.", Rule.C9, RuleViolation),
    (400, "Moving a cluster to another resource group or subscription isn't currently supported.",
     Rule.C10, RuleViolation),
    (400, "A maximum of two workspace link operations on particular workspace is allowed in 30 day "
          "period.", Rule.W3, RuleViolation),
    (400, "A maximum of 1,000 Log Analytics workspaces can be linked to a cluster.", Rule.W1, RuleViolation),
    (400, "A maximum of five active clusters can be created in each region and subscription.", Rule.C2,
     RuleViolation),
]


@pytest.mark.parametrize(("status", "text", "rule", "kind"), PUBLISHED, ids=[p[2] + ":" + p[1][:30]
                                                                           for p in PUBLISHED])
@pytest.mark.parametrize("code", ["BadRequest", "InvalidInput", "Conflict"])
def test_published_refusals_are_classified_by_their_words_whatever_the_code(
    status: int, text: str, rule: Rule, kind: type[AzureError], code: str
) -> None:
    err = map_error(_http_error(status, code, text))
    assert type(err) is kind and err.rule_id is rule, repr(err)  # type: ignore[attr-defined]
    assert err.code == code and err.azure_message == text


@pytest.mark.parametrize(
    ("status", "text"),
    [
        # an invalid request Azure does not tie to a rule: permanent, shown as is
        (400, "'properties.associatedWorkspaces' is a read only property and cannot be set."),
        (400, "sku.name can not be changed while workspace is linked to cluster"),
        # a 409 about a link that is not "in process": not busy, so never retried
        (409, "The link cannot be updated or deleted because it is linked to Update Management and/or "
              "ChangeTracking Solutions"),
    ],
)
def test_other_refusals_are_terminal_not_retried(status: int, text: str) -> None:
    err = map_error(_http_error(status, "Conflict" if status == 409 else "BadRequest", text))
    assert type(err) is Terminal, repr(err)
    assert text in str(err)


def test_invented_codes_name_no_rule() -> None:
    """The code is not evidence: a rule-sounding code with an unrelated message is not that rule."""
    err = map_error(_http_error(400, "WorkspaceLinkOperationsLimitExceeded", "Something else went wrong."))
    assert type(err) is Terminal


def test_operation_that_ends_failed_maps_like_the_refusal_it_reports_c7(
    emulator: Any, clients: AzureClients
) -> None:
    """Azure accepted the create, then the operation failed validating the key: the SDK's poller raises
    on the final status (HTTP 200, `error` in the body); it is the same C7 as a synchronous refusal."""
    emulator.seed({"resource_groups": [{"subscription": SUB, "name": RG, "location": LOCATION}]})
    text = (
        "Failed to validate key in Key Vault. Could be due to lack of permissions or when key doesn't exist."
    )
    emulator.fault(method="PUT", path="/clusters/cla11$", fail_operation=True, code="BadRequest",
                   message=text, count=1)
    poller = clients.loganalytics(SUB).clusters.begin_create_or_update(RG, "cla11", _cluster_body())
    err = _raised(lambda: poller.result())
    assert isinstance(err, RuleViolation) and err.rule_id is Rule.C7, repr(err)
    assert err.azure_message == text and "operation failed" in str(err)


def test_operation_that_ends_failed_without_a_rule_is_terminal(emulator: Any, clients: AzureClients) -> None:
    emulator.seed({"resource_groups": [{"subscription": SUB, "name": RG, "location": LOCATION}]})
    emulator.fault(method="PUT", path="/clusters/cla12$", fail_operation=True, count=1)
    poller = clients.loganalytics(SUB).clusters.begin_create_or_update(RG, "cla12", _cluster_body())
    err = _raised(lambda: poller.result())
    assert type(err) is Terminal and err.code == "InternalServerError", repr(err)


def _http_error(status: int, code: str, message: str) -> Exception:
    """What azure-core raises for an ARM error response (it parses the body itself, as for the SDK)."""
    import json

    from azure.core.exceptions import HttpResponseError

    class _Response:  # duck-typed: what HttpResponseError reads from a response
        status_code = status
        reason = "Bad Request" if status == 400 else "Conflict"
        headers: ClassVar[dict[str, str]] = {"Content-Type": "application/json"}
        content_type = "application/json"
        request = None

        def text(self, encoding: str | None = None) -> str:
            return json.dumps({"error": {"code": code, "message": message}})

        def json(self) -> Any:
            return json.loads(self.text())

    return HttpResponseError(response=_Response())
