"""The service's rules as data: ids that plans and errors cite, and the reference text of each.

docs/rules.md is generated from `RULES` (`cmkctl explain --all --format markdown`) and a test keeps
the two equal, so the reference a user reads and the text `cmkctl explain C4` prints never disagree.
Each rule says what Azure does today, what the 2021 documentation said where it differs (the `seed`
limits profile), what cmkctl does about it and where, and the public source it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
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


class Group(StrEnum):
    CLUSTERS = "Clusters"
    LINKS = "Workspace links"
    KEYS = "Keys"
    BYOS = "BYOS (saved queries and alerts)"


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """One rule of the service, in our own words."""

    id: Rule
    group: Group
    title: str  # one line, used in plans and messages
    azure: str  # what Azure does today
    seed: str | None  # the 2021 documentation (`seed` limits profile), only where it differs
    cmkctl: str  # what cmkctl does about it
    enforced_in: tuple[str, ...]  # repository files that cite the rule id where they enforce it
    sources: tuple[str, ...]  # public material the rule comes from, described


_DC_DOC = 'Microsoft Learn, Azure Monitor Logs dedicated clusters ("Limits and constraints" and error list)'
_CMK_DOC = "Microsoft Learn, Azure Monitor customer-managed keys"
_SEED_DOC = "the 2021 revision of the customer-managed key page this project started from"
_SPEC = "REST API specification Microsoft.OperationalInsights, Clusters (2022-10-01 to 2025-07-01)"

_RULES: tuple[RuleInfo, ...] = (
    RuleInfo(
        Rule.C1,
        Group.CLUSTERS,
        "cluster name: 4-63 characters, letters, digits and inner hyphens",
        azure="The REST specification constrains the cluster name in the URL to the pattern "
        "`^[A-Za-z0-9][A-Za-z0-9-]+[A-Za-z0-9]$` with 4 to 63 characters: letters and digits, and "
        "hyphens anywhere but at either end. Clusters with hyphens exist (a recorded azure-cli test "
        "created `clitest-cluster-000002` in 2025).",
        seed="The 2021 page (and the error text Azure still documents) speaks of 3-63 characters, "
        "a-z, A-Z and 0-9 only.",
        cmkctl="`cmkctl validate` refuses a name that does not match (the Azure name is `spec.name`, "
        "else `metadata.name`); the planner blocks the create as well. The emulator answers a create "
        "with such a name 400.",
        enforced_in=(
            "controller/loading/validate.py",
            "controller/planning/kinds/cluster.py",
            "emulator/resources/clusters.py",
        ),
        sources=(_SPEC, "azure-cli recorded cluster tests (2025)", _SEED_DOC),
    ),
    RuleInfo(
        Rule.C2,
        Group.CLUSTERS,
        "at most N active (and M reserved) clusters per region and subscription (limits profile)",
        azure="At most 5 active clusters per region and subscription, and at most 7 reserved: active "
        "ones plus those deleted in the last 14 days (C11).",
        seed="At most 2 clusters per region and subscription; soft-deleted ones are not counted.",
        cmkctl="The planner counts the clusters Azure lists per subscription and region, plus the "
        "deletions in its journal still inside the 14 days when the profile counts reserved slots. A "
        "create that finds no slot is blocked, waits for a delete in the same plan, or is deferred to "
        "the day a soft-deleted slot frees. The emulator refuses the create.",
        enforced_in=(
            "controller/planning/kinds/cluster.py",
            "emulator/resources/clusters.py",
        ),
        sources=(_DC_DOC, _CMK_DOC, _SEED_DOC),
    ),
    RuleInfo(
        Rule.C3,
        Group.CLUSTERS,
        "sku CapacityReservation; capacity one of the profile's commitment tiers",
        azure="`sku.name` must be `CapacityReservation`. `sku.capacity` (GB/day) must be a commitment "
        "tier: 100, 200, 300, 400, 500, 1000, 2000, 5000, 10000, 25000 or 50000. The CLI and templates "
        "start at 500; the REST API takes 100.",
        seed="Capacity at least 1000 GB/day, in steps of 100.",
        cmkctl="`cmkctl validate` refuses a capacity the chosen profile does not allow and names the "
        "profile and the allowed values; the planner blocks the create or update. The emulator "
        "answers 400 with the allowed values.",
        enforced_in=(
            "controller/loading/validate.py",
            "controller/planning/kinds/cluster.py",
            "emulator/resources/clusters.py",
        ),
        sources=(_SPEC, _DC_DOC, _SEED_DOC),
    ),
    RuleInfo(
        Rule.C4,
        Group.CLUSTERS,
        "capacity decrease only after the commitment period since the last SKU update",
        azure="Capacity may go up at any time. It may go down only when the commitment period since the "
        "last SKU change has passed: the documentation speaks of 31 days, the error text of 30. The "
        "cluster shows the date as `capacityReservationProperties.lastSkuUpdate`.",
        seed="30 days.",
        cmkctl="The lock length is data in the limits profile (`current`: 31 days, so a decrease is "
        "never sent on a day Azure may still refuse it; `seed`: 30). The planner defers a decrease to "
        "`lastSkuUpdate` + the lock, with that date; `report` shows it in the calendar and the "
        "controller wakes for it. The emulator refuses an early decrease with 400.",
        enforced_in=(
            "controller/planning/kinds/cluster.py",
            "controller/reporting/build.py",
            "emulator/resources/clusters.py",
        ),
        sources=(_DC_DOC, _SEED_DOC),
    ),
    RuleInfo(
        Rule.C5,
        Group.CLUSTERS,
        "identity required at creation; with SystemAssigned the key is set after creation",
        azure="A cluster needs a managed identity when it is created. A system-assigned identity only "
        "exists once the cluster does, so its key can be set only afterwards: create, grant the "
        "identity access in Key Vault, then update the key. A user-assigned identity that already has "
        "access may carry the key in the create call.",
        seed="The 2021 page refused keyVaultProperties in any create with a hard 400.",
        cmkctl="The planner puts the key into the create only for a UserAssigned identity the spec "
        "declares as granted (`keyAccessGranted: true`); otherwise it plans create, then a separate "
        "set-key step with a warning to grant access in between. A cluster without identity is "
        "blocked. The emulator refuses a key at creation with SystemAssigned.",
        enforced_in=(
            "controller/planning/kinds/cluster.py",
            "controller/azure/operations.py",
            "emulator/resources/clusters.py",
        ),
        sources=(_DC_DOC, _CMK_DOC, _SEED_DOC),
    ),
    RuleInfo(
        Rule.C6,
        Group.CLUSTERS,
        "create, key update and delete are asynchronous; nothing else runs on the cluster meanwhile",
        azure="Create, key update and delete answer 202 (or 200 with a running state) and an "
        "`Azure-AsyncOperation` URL; the operation runs for minutes to hours. While it runs, another "
        "update fails with 400 and a delete of a cluster being provisioned fails with 409.",
        seed=None,
        cmkctl="The plan chains a cluster's steps; the executor runs one operation per cluster at a "
        "time, journals each operation before waiting on it and resumes it after a crash instead of "
        "re-sending it. A cluster that is busy is deferred without a date. The emulator refuses "
        "overlapping operations.",
        enforced_in=(
            "controller/planning/kinds/cluster.py",
            "controller/execution/executor.py",
            "controller/azure/operations.py",
            "emulator/resources/clusters.py",
        ),
        sources=(_DC_DOC, "recorded cluster create, update and delete sessions (azure-cli 2020-2025)"),
    ),
    RuleInfo(
        Rule.C7,
        Group.CLUSTERS,
        "the key must exist, the identity needs get/wrapKey/unwrapKey, the vault must be recoverable",
        azure="A key update is checked: the key (and version) must exist, the cluster's identity "
        "must have Get, Wrap Key and Unwrap Key on it (access policy or RBAC), and the vault must have "
        "soft delete and purge protection. A malformed keyVaultProperties is refused.",
        seed=None,
        cmkctl="Observe reads the vault, its access policies and the key; the planner blocks or defers "
        "a key step that would be refused (missing key, no purge protection, access not granted yet) "
        "and `report` flags vaults that are not recoverable. The emulator validates the key through "
        "its Key Vault.",
        enforced_in=(
            "controller/planning/kinds/cluster_key.py",
            "controller/reporting/build.py",
            "emulator/keyvault.py",
        ),
        sources=(_CMK_DOC, _DC_DOC),
    ),
    RuleInfo(
        Rule.C8,
        Group.CLUSTERS,
        "Key Vault, cluster and workspaces in the same region and tenant",
        azure="The vault, the cluster and its linked workspaces must be in one region and one Entra "
        "tenant; subscriptions may differ.",
        seed=None,
        cmkctl="The planner blocks a key in another region or tenant (the vault's region comes from "
        "the `x-ms-keyvault-region` header) and a link from a workspace in another region. The "
        "emulator refuses both.",
        enforced_in=(
            "controller/planning/kinds/cluster_key.py",
            "controller/planning/kinds/workspace_link.py",
            "emulator/keyvault.py",
            "emulator/resources/clusters.py",
            "emulator/resources/links.py",
        ),
        sources=(_CMK_DOC,),
    ),
    RuleInfo(
        Rule.C9,
        Group.CLUSTERS,
        "double encryption and availability zones are fixed at creation",
        azure="`isDoubleEncryptionEnabled` is set at creation and never changes; some regions do not "
        "support it, and a create there fails unless it is false. `isAvailabilityZonesEnabled` is also "
        "fixed at creation and may be true only in regions with zone support; when the create omits "
        "it, Azure decides by region.",
        seed="The 2021 page mentions double encryption only.",
        cmkctl="The planner blocks a change of double encryption on a live cluster (a new cluster is "
        "needed). The create sends `isAvailabilityZonesEnabled` only when the spec sets "
        "`availabilityZones`; then a live cluster that differs is reported as drift with a "
        "warning. The emulator refuses double encryption where configured off, refuses zones "
        "in a region without zone support, and chooses by region when the field is missing.",
        enforced_in=(
            "controller/planning/kinds/cluster.py",
            "controller/azure/operations.py",
            "emulator/resources/clusters.py",
        ),
        sources=(_DC_DOC, _SPEC, "Microsoft Learn, Azure regions with availability zones"),
    ),
    RuleInfo(
        Rule.C10,
        Group.CLUSTERS,
        "a cluster cannot move to another resource group or subscription",
        azure="Dedicated clusters cannot be moved between resource groups, subscriptions or regions.",
        seed=None,
        cmkctl="When the spec names a cluster under another subscription or resource group than the "
        "live one, the planner blocks the create and says where the cluster is. The emulator refuses "
        "a move.",
        enforced_in=(
            "controller/planning/kinds/cluster.py",
            "emulator/resources/resource_groups.py",
        ),
        sources=(_DC_DOC,),
    ),
    RuleInfo(
        Rule.C11,
        Group.CLUSTERS,
        "a deleted cluster stays soft-deleted 14 days; its name stays reserved",
        azure="A deleted cluster is kept for 14 days: a GET answers 404, but a create with the same "
        "name conflicts, and it counts against the reserved slots of C2.",
        seed=None,
        cmkctl="The journal records every cluster delete. The planner defers a create that reuses a "
        "reserved name until the 14 days end; `report` shows the date the name frees. The emulator "
        "keeps soft-deleted clusters and answers 409 to a create with their name.",
        enforced_in=(
            "controller/planning/kinds/cluster.py",
            "controller/reporting/build.py",
            "emulator/resources/clusters.py",
        ),
        sources=(_DC_DOC, _SEED_DOC),
    ),
    RuleInfo(
        Rule.C12,
        Group.CLUSTERS,
        "identity None revokes key access irreversibly",
        azure="Setting the identity type to `None` (or removing the user-assigned identity) cuts the "
        "cluster off from its key for good; only a support request restores it.",
        seed=None,
        cmkctl="A spec with `identity.type: None` is refused unless it sets `allowAccessRevocation: "
        "true`; the plan then shows the step as destructive. The emulator records the revocation as "
        "harm.",
        enforced_in=(
            "controller/model/spec.py",
            "controller/planning/kinds/cluster.py",
            "emulator/resources/clusters.py",
        ),
        sources=(_CMK_DOC, _SEED_DOC),
    ),
    RuleInfo(
        Rule.C13,
        Group.CLUSTERS,
        "removing the key takes keyVaultUri, keyName and keyVersion as empty strings",
        azure="To remove the key from a cluster (needed before switching a UserAssigned identity to "
        "SystemAssigned) the update sends `keyVaultUri`, `keyName` and `keyVersion` as empty strings. "
        "An empty `keyVaultProperties` object is ignored.",
        seed=None,
        cmkctl="The identity switch is planned as four steps (clear the key, change the identity, grant "
        "the new principal, set the key again); identity and key never change in one call. The clear "
        "step sends the three fields as empty strings. A spec that merely leaves out the key never "
        "removes a live one (new data would fall back to Microsoft keys, W6): drift and a warning. "
        "The emulator ignores `{}` and removes the key only on empty strings.",
        enforced_in=(
            "controller/planning/kinds/cluster.py",
            "controller/azure/operations.py",
            "emulator/resources/clusters.py",
        ),
        sources=(_DC_DOC + ', "Change managed identity type"',),
    ),
    RuleInfo(
        Rule.W1,
        Group.LINKS,
        "at most 1000 workspaces linked to one cluster",
        azure="A cluster accepts at most 1000 linked workspaces.",
        seed=None,
        cmkctl="`cmkctl validate` counts the workspaces every WorkspaceSet puts on a cluster; the "
        "planner counts live links, the unlinks and links of the plan, and defers or blocks links "
        "beyond the limit. The emulator refuses the 1001st link.",
        enforced_in=(
            "controller/loading/validate.py",
            "controller/planning/kinds/workspace_link.py",
            "emulator/resources/links.py",
        ),
        sources=(_DC_DOC,),
    ),
    RuleInfo(
        Rule.W2,
        Group.LINKS,
        "a workspace links to at most one cluster; a move is unlink + link",
        azure="A workspace is linked to one cluster at most. Linking it to another fails until it is "
        "unlinked, so a move costs two operations.",
        seed=None,
        cmkctl="`cmkctl validate` refuses a workspace listed twice. The planner plans a move as an "
        "unlink followed by a link and blocks a link to a workspace that does not exist. The emulator "
        "refuses a link while the workspace is linked elsewhere.",
        enforced_in=(
            "controller/loading/validate.py",
            "controller/planning/kinds/workspace_link.py",
            "emulator/resources/links.py",
        ),
        sources=(_DC_DOC, _SEED_DOC),
    ),
    RuleInfo(
        Rule.W3,
        Group.LINKS,
        "at most 2 link or unlink operations per workspace in any 30 days",
        azure="A workspace allows two link operations in any 30 days; beyond that only support can "
        "help. The documentation does not say whether an unlink counts, so cmkctl counts both. Only "
        "events on `.../linkedServices/cluster` count, and one ARM deployment shares one correlation "
        "id across many workspaces.",
        seed=None,
        cmkctl="History is the journal, the clusters' `associateDate` and the Activity Log, counted "
        "per resource. The planner defers a link to the day the rolling window frees a slot and "
        "blocks one that can never fit; a link is never re-sent by a transport retry, and one whose "
        "answer was lost is read back before anything else is done. The emulator refuses the third "
        "operation.",
        enforced_in=(
            "controller/planning/budget.py",
            "controller/planning/kinds/workspace_link.py",
            "controller/execution/executor.py",
            "controller/azure/observe.py",
            "emulator/resources/links.py",
        ),
        sources=(_DC_DOC, _SEED_DOC, "Azure Monitor Activity Log REST API (2015-04-01)"),
    ),
    RuleInfo(
        Rule.W4,
        Group.LINKS,
        "link only after the cluster is provisioned and its key is set",
        azure="Data ingested into a workspace linked before the cluster finished provisioning is "
        "dropped and cannot be recovered. Linking after the key is set means new data is encrypted "
        "with it from the start.",
        seed=None,
        cmkctl="Every link depends on every step of its cluster in the plan (create, identity, key, "
        "update) and waits while the cluster is not `Succeeded`. The emulator accepts an early link and "
        "records the dropped data as harm.",
        enforced_in=(
            "controller/planning/kinds/cluster.py",
            "controller/planning/kinds/workspace_link.py",
            "emulator/resources/links.py",
        ),
        sources=(_CMK_DOC,),
    ),
    RuleInfo(
        Rule.W5,
        Group.LINKS,
        "link and unlink are asynchronous; one at a time per workspace",
        azure="Link and unlink run as long operations (up to about 90 minutes). A second one on the "
        "same workspace while one runs fails with 409.",
        seed=None,
        cmkctl="Observe marks a workspace whose link operation is still running; the planner defers "
        "it, and the executor runs one link operation per workspace at a time and waits rather than "
        "re-sending. The emulator answers 409.",
        enforced_in=(
            "controller/planning/kinds/workspace_link.py",
            "controller/execution/executor.py",
            "controller/azure/observe.py",
            "emulator/resources/links.py",
        ),
        sources=(_DC_DOC,),
    ),
    RuleInfo(
        Rule.W6,
        Group.LINKS,
        "unlinked, a workspace's new data is stored with Microsoft keys",
        azure="After an unlink, new data is stored with Microsoft-managed keys; data from before and "
        "after stays queryable.",
        seed=None,
        cmkctl="Plans warn on every unlink (prune and moves), and a move's unlink waits with its link "
        "so a workspace is not left on Microsoft keys. Prune unlinks only links cmkctl made (its "
        "journal) or on clusters it created (the `cmkctl-scope` tag); other links are reported, never "
        "unlinked. `report` lists workspaces the spec puts on a cluster that are not linked.",
        enforced_in=("controller/planning/kinds/workspace_link.py", "controller/reporting/build.py"),
        sources=(_CMK_DOC,),
    ),
    RuleInfo(
        Rule.K1,
        Group.KEYS,
        "rotation is explicit: disabling or deleting the key version in use is a revocation",
        azure="A cluster pinned to a key version keeps it until the cluster is updated; a versionless "
        "key (empty `keyVersion`) follows the key's current version. Disabling, deleting or letting "
        "expire the version in use before the cluster moves off it revokes access.",
        seed=None,
        cmkctl="A pinned `version` is rotated by changing it in the spec. The planner refuses to move "
        "to a version that cannot wrap and warns when the version in use is disabled or expiring; "
        "`report` lists key expiries. The emulator revokes clusters on a disabled or deleted version.",
        enforced_in=(
            "controller/planning/kinds/cluster_key.py",
            "controller/reporting/build.py",
            "emulator/keyvault.py",
        ),
        sources=(_CMK_DOC,),
    ),
    RuleInfo(
        Rule.K2,
        Group.KEYS,
        "revocation: within an hour storage is unavailable and new data is dropped",
        azure="When the cluster loses its key (disabled, access removed), storage becomes unavailable "
        "within an hour: new data is dropped and queries fail. When access returns, the service "
        "resumes within 30 minutes.",
        seed=None,
        cmkctl="Plans and `report` raise a critical finding for a cluster whose key is unusable; an "
        "identity switch that would revoke access is blocked unless the new identity is granted. The "
        "emulator models revocation and its end.",
        enforced_in=(
            "controller/planning/kinds/cluster_key.py",
            "controller/reporting/build.py",
            "emulator/keyvault.py",
        ),
        sources=(_CMK_DOC,),
    ),
    RuleInfo(
        Rule.K3,
        Group.KEYS,
        "short Key Vault outages are ridden out from cache",
        azure="Storage unwraps the key every few seconds to a minute and rides out transient Key Vault "
        "errors from its cache; after about 30 minutes of unavailability storage becomes unavailable.",
        seed=None,
        cmkctl="Nothing to plan: cmkctl treats Key Vault errors while observing as unknown, never as a "
        "missing key. The emulator can simulate a vault outage and revokes after 30 minutes of it.",
        enforced_in=("emulator/keyvault.py", "emulator/state.py"),
        sources=(_CMK_DOC,),
    ),
    RuleInfo(
        Rule.B1,
        Group.BYOS,
        "one storage account per data source type, in the workspace's region",
        azure="A workspace links one storage account for `Query` (saved searches) and one for "
        "`Alerts` (log alert queries), in the workspace's region.",
        seed=None,
        cmkctl="The spec takes one `query` and one `alerts` storage account id per workspace and "
        "validates that they are storage accounts; the planner links or replaces them and reports "
        "drift. The emulator refuses several ids or another region.",
        enforced_in=(
            "controller/model/spec.py",
            "controller/planning/kinds/byos.py",
            "emulator/resources/linked_storage.py",
        ),
        sources=(_CMK_DOC,),
    ),
    RuleInfo(
        Rule.B2,
        Group.BYOS,
        "linking a Query storage account removes the workspace's saved searches",
        azure="Linking a storage account for `Query` removes the saved searches the workspace already has.",
        seed=None,
        cmkctl="The plan blocks it unless the workspace's `byos` sets `allowSavedSearchLoss: true`, "
        "and then shows a critical warning. The emulator records the loss as harm.",
        enforced_in=(
            "controller/planning/kinds/byos.py",
            "emulator/resources/linked_storage.py",
        ),
        sources=(_CMK_DOC, _SEED_DOC),
    ),
)

RULES: dict[Rule, RuleInfo] = {info.id: info for info in _RULES}

RULE_TEXT: dict[Rule, str] = {info.id: info.title for info in _RULES}


class UnknownRule(ValueError):
    """A rule id that is not one of `Rule`; the message lists the valid ids."""


def lookup(rule_id: str) -> RuleInfo:
    """The rule for an id as a user types it (`c4`, ` C4 `), or UnknownRule naming the valid ids."""
    wanted = rule_id.strip().upper()
    for rule, info in RULES.items():
        if rule.value == wanted:
            return info
    valid = ", ".join(r.value for r in Rule)
    raise UnknownRule(f"unknown rule id '{rule_id}'; valid ids: {valid}")
