"""The service's rules, by the ids of docs/rules.md, so plans and errors can cite them."""

from __future__ import annotations

from enum import StrEnum


class Rule(StrEnum):
    C1 = "C1"
    C2 = "C2"
    C3 = "C3"
    C4 = "C4"
    C5 = "C5"
    C6 = "C6"
    C7 = "C7"
    C8 = "C8"
    C9 = "C9"
    C10 = "C10"
    C11 = "C11"
    C12 = "C12"
    C13 = "C13"
    W1 = "W1"
    W2 = "W2"
    W3 = "W3"
    W4 = "W4"
    W5 = "W5"
    W6 = "W6"
    K1 = "K1"
    K2 = "K2"
    K3 = "K3"
    B1 = "B1"
    B2 = "B2"


RULE_TEXT: dict[Rule, str] = {
    Rule.C1: "cluster name: 3-63 characters, a-z A-Z 0-9 only",
    Rule.C2: "at most N clusters per region per subscription (limits profile)",
    Rule.C3: "sku CapacityReservation; capacity from the profile's allowed tiers",
    Rule.C4: "capacity decrease only 30 days after the last SKU update",
    Rule.C5: "identity required at creation; with SystemAssigned the key is set after creation",
    Rule.C6: "create, key update and delete are asynchronous; no update while one runs",
    Rule.C7: "key must exist, identity needs get/wrapKey/unwrapKey, vault soft delete + purge protection",
    Rule.C8: "Key Vault, cluster and workspaces in the same region and tenant",
    Rule.C9: "double encryption is fixed at creation",
    Rule.C10: "a cluster cannot move to another resource group or subscription",
    Rule.C11: "a deleted cluster stays soft-deleted 14 days; its name stays reserved",
    Rule.C12: "identity None revokes access irreversibly",
    Rule.C13: "a key is removed by sending keyVaultUri, keyName, keyVersion as empty strings",
    Rule.W1: "at most 1000 workspaces linked to one cluster",
    Rule.W2: "a workspace is linked to at most one cluster; a move is unlink + link",
    Rule.W3: "at most 2 link or unlink operations per workspace in any 30 days",
    Rule.W4: "link only after the cluster's provisioning and key update succeeded (else data is dropped)",
    Rule.W5: "link and unlink are asynchronous; one at a time per workspace",
    Rule.W6: "unlinked, new data is stored with Microsoft keys",
    Rule.K1: "disabling or deleting the key version in use before rotating = revocation",
    Rule.K2: "revocation drops new data within an hour",
    Rule.K3: "storage rides out short Key Vault outages from cache",
    Rule.B1: "one storage account per data source type, in the workspace's region",
    Rule.B2: "linking a Query storage account removes the workspace's saved searches",
}
