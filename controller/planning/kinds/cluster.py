"""Clusters: create, update (capacity, billing, tags, identity), set_key, delete, and their gates.

Order per cluster (rule C6: one operation at a time, so the steps are chained):
    create → set_key(clear) → update identity → set_key(desired) → update capacity → update billing/tags
and every workspace link into the cluster waits on all of them (rule W4).

Decisions where docs/rules.md is silent:
* C5: the key goes into the create call only with a UserAssigned identity the spec declares as
  already granted (`keyAccessGranted`) and a key that passes the C7/C8 checks; otherwise the cluster
  is created without a key and a `set_key` step follows (for SystemAssigned it carries a warning:
  grant the new principal access between the two steps, the executor stops if the service says no).
* UserAssigned → SystemAssigned walks the documented 4 steps: clear the key, switch identity, grant
  the new principal (the user: its id exists only after step 2), set the key again. Step 4 is
  deferred (C7, no date) until the grant is visible. Identity and key never change in one call.
* SystemAssigned/UserAssigned → another UserAssigned while a key is set needs `keyAccessGranted`
  (the new identity must already unwrap the key, else the switch is a revocation, K2): blocked.
* A capacity decrease waits until lastSkuUpdate + the lock (C4, deferred with that date); with no
  lastSkuUpdate the creation time is used; with neither it is allowed (the service is the judge).
* A `Failed` cluster is not busy: steps for it are planned (re-issuing is what repairs it); links
  into it wait (W4) unless this plan has a step that brings it back to `Succeeded`.
* A busy cluster (Creating, Updating, Deleting...) or one with an operation of ours in flight:
  its steps are deferred (C6) with no date; its links too (W4).
* Fields fixed at creation (double encryption, C9) differ → blocked: a new cluster is needed.
  Availability zones are also fixed: reported as drift and a warning, not blocked; a spec that
  leaves them out lets Azure decide by region, so any live value matches it.
* A spec without a key never removes a live key (C13 allows it, but new data would fall back to
  Microsoft keys, W6): drift + warning, no step. The key is cleared only as step 1 of the identity
  switch below, and set again in step 4.
* Tags in the spec are the complete set (like Terraform): extra live tags are removed.
* C2/C11: active clusters per subscription+region (+ soft-deleted ones when the profile counts
  them) bound creates; a create that needs a slot freed by a delete in this plan depends on it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, TypedDict

from controller.model import compare, ids
from controller.model.access import grant_remedy
from controller.model.observed import ObservedCluster
from controller.model.rules import Rule
from controller.model.spec import Cluster, IdentityType
from controller.planning.context import Workbench, cluster_path
from controller.planning.kinds.cluster_key import check_key, key_params, live_key_health
from controller.planning.plan import (
    Action,
    Change,
    CreateParams,
    DeleteParams,
    IdentityParams,
    KeyParams,
    SetKeyParams,
    Severity,
    UpdateParams,
)

_LINKABLE = "Succeeded"


class _Target(TypedDict):
    """The cluster every parameters model of a cluster step names."""

    subscription: str
    resource_group: str
    name: str


def address_of(cluster: Cluster) -> str:
    return f"cluster.{cluster.metadata.name}"


def _identity(cluster: Cluster) -> dict[str, Any]:
    ident = cluster.spec.identity
    return {"type": str(ident.type), "user_assigned_identity": ident.user_assigned_identity}


def _live_identity(obs: ObservedCluster) -> dict[str, Any]:
    uai = obs.user_assigned_identities[0] if obs.user_assigned_identities else None
    return {"type": obs.identity_type, "user_assigned_identity": uai}


def _identity_matches(cluster: Cluster, obs: ObservedCluster) -> bool:
    ident = cluster.spec.identity
    return compare.same_identity(str(ident.type), ident.user_assigned_identity, obs.identity_type,
                                 obs.user_assigned_identities)


def _busy(wb: Workbench, obs: ObservedCluster) -> bool:
    key = ids.id_key(obs.id)
    return compare.busy(obs.provisioning_state) or any(
        ids.id_key(op.target) == key for op in wb.history.in_flight)


def plan_clusters(wb: Workbench) -> None:
    managed = {ids.id_key(c.arm_id): c for c in wb.desired.clusters}
    _plan_unmanaged(wb, managed)
    slots = _Slots(wb)
    for key in sorted(managed):
        cluster = managed[key]
        obs = wb.observed.clusters.get(key)
        if obs is None:
            _plan_new(wb, cluster, slots)
        else:
            _plan_existing(wb, cluster, obs)


# -- unmanaged clusters in managed scope: drift, and deletes with prune.clusters (C6, C11) --------

def managed_scope(wb: Workbench) -> set[tuple[str, str]]:
    """(subscription, resource group lower) pairs that hold a declared cluster."""
    return {(c.spec.subscription.lower(), c.spec.resource_group.lower()) for c in wb.desired.clusters}


def _plan_unmanaged(wb: Workbench, managed: dict[str, Cluster]) -> None:
    scope = managed_scope(wb)
    prune = wb.desired.settings.prune.clusters
    for key, obs in sorted(wb.observed.clusters.items()):
        if key in managed or (obs.subscription.lower(), obs.resource_group.lower()) not in scope:
            continue
        if any(c.azure_name.lower() == obs.name.lower() for c in managed.values()):
            continue  # a C10 move: reported by the declared cluster, never deleted here
        address = f"cluster.{obs.name}"
        wb.drifted(address=address, resource_id=obs.id, field_="exists", desired=False, live=True)
        step = f"delete:cluster:{cluster_path(obs.subscription, obs.resource_group, obs.name)}"
        owner = compare.owner_scope(obs.tags)
        if prune and owner != wb.desired.scope_id:
            # prune deletes only what this scope created (its ownership tag): a foreign cluster that
            # shares the resource group is reported, never deleted
            whose = f"created by cmkctl scope '{owner}'" if owner else "not created by cmkctl"
            wb.warn("prune-not-owned",
                    f"{address} is in a managed resource group but not in the spec; it is {whose} "
                    f"({compare.OWNER_TAG} is not '{wb.desired.scope_id}'), so prune leaves it alone",
                    address=address)
            continue
        if not prune:
            wb.warn("prune-disabled",
                    f"{address} is in a managed resource group but not in the spec; set "
                    "settings.prune.clusters to delete it", address=address)
            continue
        # the location goes into the journal with the deletion: the name and its region slot stay
        # reserved for the retention period (rules C2, C11)
        params = DeleteParams(subscription=obs.subscription, resource_group=obs.resource_group, name=obs.name,
                              location=obs.location)
        if _busy(wb, obs):
            wb.defer(id=step, action=Action.DELETE, address=address, resource_id=obs.id, rule=Rule.C6,
                     reason=f"{obs.name} is {obs.provisioning_state}; a cluster can't be deleted while an "
                            "operation runs", not_before=None, parameters=params)
        else:
            linked = len(obs.associated_workspaces)
            warns = ["deleting a cluster unlinks its workspaces: their new data uses Microsoft keys (W6); "
                     f"the name stays reserved {wb.limits.soft_delete_retention.days} days (C11)"]
            if linked:
                warns.append(f"{linked} workspace(s) are still linked to it")
            wb.add(Change(id=step, action=Action.DELETE, address=address, resource_id=obs.id,
                          cluster_id=obs.id, parameters=params, before={"provisioning_state":
                          obs.provisioning_state}, after={"exists": False}, reason="not in the spec (prune)",
                          rules=(Rule.C6, Rule.C11), destructive=True, warnings=tuple(warns)))
        wb.deletes[key] = step


# -- new clusters: C2 / C11 slots, C5 key at creation, set_key -------------------------------------

class _Slots:
    """Rules C2 and C11: what is left per (subscription, region) as creates are planned."""

    def __init__(self, wb: Workbench) -> None:
        self.wb = wb
        self.active: dict[tuple[str, str], list[str]] = defaultdict(list)
        for key, obs in wb.observed.clusters.items():
            self.active[(obs.subscription.lower(), ids.normalise_location(obs.location))].append(key)
        self.soft_deleted: dict[tuple[str, str], list[datetime]] = defaultdict(list)
        for d in wb.history.cluster_deletions:
            ends = d.at + wb.limits.soft_delete_retention
            if ends > wb.now and d.cluster_key not in wb.observed.clusters:
                self.soft_deleted[(d.subscription.lower(), ids.normalise_location(d.location))].append(ends)
        self.created: dict[tuple[str, str], int] = defaultdict(int)

    def claim(self, cluster: Cluster, step: str) -> list[str] | None:
        """The deletes the create must wait for, or None when it is deferred/blocked for lack of a slot."""
        wb, spec = self.wb, cluster.spec
        region = (spec.subscription.lower(), spec.location)
        address = address_of(cluster)
        live = self.active[region]
        delete_steps = [wb.deletes[k] for k in sorted(live) if k in wb.deletes]
        ready_deletes = [s for s in delete_steps if s in wb.changes]
        staying = len(live) - len(ready_deletes)
        used = staying + self.created[region]
        limit = wb.limits.clusters_per_region
        if used >= limit:
            names = ", ".join(sorted(wb.observed.clusters[k].name for k in live))
            waiting = [s for s in delete_steps if wb.pending(s)]
            if waiting and used - len(waiting) < limit:
                wb.gate(cluster.arm_id).wait(Rule.C2, "waits for a delete that frees a region slot", None,
                                             waiting[0])
                wb.defer(id=step, action=Action.CREATE, address=address, resource_id=cluster.arm_id,
                         rule=Rule.C2, reason=f"{spec.location} already has {used} clusters in subscription "
                         f"{spec.subscription}; waits for a deferred delete to free a slot",
                         not_before=None, depends_on=waiting)
                return None
            wb.block(id=step, action=Action.CREATE, address=address, resource_id=cluster.arm_id, rule=Rule.C2,
                     reason=f"subscription {spec.subscription} already has {used} of {limit} clusters in "
                            f"{spec.location} ({names})",
                     remedy="delete a cluster there (settings.prune.clusters) or use another region or "
                            "subscription")
            wb.gate(cluster.arm_id).wait(Rule.C2, "its cluster can't be created (blocked, C2)", None, step)
            return None
        deps = ready_deletes if len(live) + self.created[region] >= limit else []
        reserved_limit = wb.limits.reserved_per_region
        if reserved_limit is not None:
            # A deletion seen only in the Activity Log has no region: it may hold a slot in any region of
            # its subscription, so it counts in each (when in doubt, the slot is taken)
            soft = self.soft_deleted[region] + self.soft_deleted.get((region[0], ""), [])
            reserved = len(live) + len(soft) + self.created[region]
            if reserved >= reserved_limit:
                ends = sorted(soft)
                free_at = ends[reserved - reserved_limit] if reserved - reserved_limit < len(ends) else None
                if free_at is None:
                    wb.block(id=step, action=Action.CREATE, address=address, resource_id=cluster.arm_id,
                             rule=Rule.C2, reason=f"{reserved} of {reserved_limit} cluster slots in "
                             f"{spec.location} are taken by active and soft-deleted clusters",
                             remedy="delete a cluster there and wait 14 days, or use another region")
                    wb.gate(cluster.arm_id).wait(Rule.C2, "its cluster can't be created (blocked, C2)", None,
                                                 step)
                    return None
                wb.defer(id=step, action=Action.CREATE, address=address, resource_id=cluster.arm_id,
                         rule=Rule.C11,
                         reason=f"{spec.location} has {reserved} of {reserved_limit} slots taken "
                         "counting soft-deleted clusters; one frees when its 14-day retention ends",
                         not_before=free_at)
                wb.gate(cluster.arm_id).wait(Rule.C11, "its cluster's create is deferred (C11)", free_at,
                                             step)
                return None
        self.created[region] += 1
        return deps


def _plan_new(wb: Workbench, cluster: Cluster, slots: _Slots) -> None:
    spec = cluster.spec
    path = cluster_path(spec.subscription, spec.resource_group, cluster.azure_name)
    address = address_of(cluster)
    step = f"create:cluster:{path}"
    gate = wb.gate(cluster.arm_id)

    if spec.subscription.lower() not in {x.lower() for x in wb.observed.subscriptions}:
        wb.block(id=step, action=Action.CREATE, address=address, resource_id=cluster.arm_id, rule=Rule.C2,
                 reason=f"subscription {spec.subscription} was not read: whether the cluster exists, and how "
                        "many clusters the region holds, is unknown",
                 remedy="grant the controller Reader on the subscription and plan again")
        gate.wait(Rule.C2, "its subscription was not read", None, step)
        return
    moved = _c10_original(wb, cluster)
    if moved is not None:
        wb.block(id=step, action=Action.CREATE, address=address, resource_id=cluster.arm_id, rule=Rule.C10,
                 reason=f"cluster {cluster.azure_name} exists in subscription {moved.subscription}, resource "
                        f"group {moved.resource_group}; a cluster cannot move",
                 remedy=f"set subscription/resourceGroup back to {moved.subscription}/"
                        f"{moved.resource_group}, or declare a new cluster under another name and move the "
                        "workspaces to it")
        gate.wait(Rule.C10, "its cluster is blocked (C10)", None, step)
        return
    groups = wb.observed.resource_groups.get(spec.subscription.lower())
    if groups is not None and spec.resource_group.lower() not in groups:
        # Azure refuses a create into a missing group (ResourceGroupNotFound); cmkctl never creates groups
        wb.block(id=step, action=Action.CREATE, address=address, resource_id=cluster.arm_id, rule=None,
                 reason=f"resource group {spec.resource_group} does not exist in subscription "
                        f"{spec.subscription}",
                 remedy=f"create it (az group create --name {spec.resource_group} --subscription "
                        f"{spec.subscription} --location {spec.location}) or fix spec.resourceGroup")
        gate.wait(Rule.C5, "its cluster's resource group does not exist", None, step)
        _defer_key(wb, cluster, path, [step])
        return
    if not ids.CLUSTER_NAME.match(cluster.azure_name):  # rule C1 (the loader checks it too)
        wb.block(id=step, action=Action.CREATE, address=address, resource_id=cluster.arm_id, rule=Rule.C1,
                 reason=f"'{cluster.azure_name}' is not a valid cluster name ({ids.CLUSTER_NAME_RULE})",
                 remedy="set spec.name to a valid Azure name")
        gate.wait(Rule.C1, "its cluster is blocked (C1)", None, step)
        return
    if not wb.limits.capacity_ok(spec.capacity):
        wb.block(id=step, action=Action.CREATE, address=address, resource_id=cluster.arm_id, rule=Rule.C3,
                 reason=f"capacity {spec.capacity} is not allowed ({wb.limits.capacity_rule_text()})",
                 remedy="set spec.capacity to an allowed value")
        gate.wait(Rule.C3, "its cluster is blocked (C3)", None, step)
        return
    if spec.identity.type is IdentityType.NONE:
        wb.block(id=step, action=Action.CREATE, address=address, resource_id=cluster.arm_id, rule=Rule.C5,
                 reason="a cluster needs an identity at creation", remedy="set identity.type")
        gate.wait(Rule.C5, "its cluster is blocked (C5)", None, step)
        return
    reserved = _reserved_until(wb, cluster)
    if reserved is not None:
        wb.defer(id=step, action=Action.CREATE, address=address, resource_id=cluster.arm_id, rule=Rule.C11,
                 reason=f"the name {cluster.azure_name} is reserved by a soft-deleted cluster until "
                        f"{reserved.isoformat()}", not_before=reserved)
        gate.wait(Rule.C11, "its cluster's create is deferred (C11)", reserved, step)
        _defer_key(wb, cluster, path, [step])
        return
    deps = slots.claim(cluster, step)
    if deps is None:
        _defer_key(wb, cluster, path, [step])
        return

    ref = spec.key.ref() if spec.key is not None else None
    problems = []
    # a user-assigned identity exists before the cluster: its principal's access is checked now (C7)
    principal = (wb.observed.identity_principals.get(ids.id_key(spec.identity.user_assigned_identity))
                 if spec.identity.user_assigned_identity else None)
    if ref is not None:
        problems = check_key(wb, ref, address=address, cluster_location=spec.location, cluster_tenant=None,
                             principal_id=principal, access_granted_by_spec=spec.identity.key_access_granted)
    at_creation = (ref is not None and not problems and spec.identity.type is IdentityType.USER_ASSIGNED
                   and spec.identity.key_access_granted)  # rule C5
    params = CreateParams(
        subscription=spec.subscription, resource_group=spec.resource_group, name=cluster.azure_name,
        location=spec.location, identity=IdentityParams(**_identity(cluster)), capacity=spec.capacity,
        billing_type=str(spec.billing_type), double_encryption=spec.double_encryption,
        availability_zones=spec.availability_zones,
        # the ownership tag: prune.clusters deletes only clusters that carry this scope's id
        tags=dict(sorted({**spec.tags, compare.OWNER_TAG: wb.desired.scope_id}.items())),
        key=KeyParams.of(ref) if at_creation else None,
    )
    after = {"provisioning_state": "Succeeded", "capacity": spec.capacity,
             "billing_type": str(spec.billing_type), "key": key_params(ref) if at_creation else None}
    wb.add(Change(id=step, action=Action.CREATE, address=address, resource_id=cluster.arm_id,
                  cluster_id=cluster.arm_id, depends_on=tuple(sorted(deps)), parameters=params,
                  after=after, reason="declared in the spec, not found", rules=(Rule.C2, Rule.C5, Rule.C6)))
    gate.depends_on.append(step)
    if ref is None or at_creation:
        return
    key_step = f"set_key:cluster:{path}"
    if problems:
        p = problems[0]
        wb.block(id=key_step, action=Action.SET_KEY, address=address, resource_id=cluster.arm_id, rule=p.rule,
                 reason=p.reason, remedy=p.remedy)
        gate.wait(Rule.W4, f"its cluster's key can't be set ({p.rule}): links would store data unencrypted "
                  "by the customer key", None, key_step)
        return
    warns: tuple[str, ...] = ()
    if spec.identity.type is IdentityType.SYSTEM_ASSIGNED:
        warns = (f"grant the new cluster's system-assigned principal (known once it is created) its key "
                 f"access before this step (rules C5, C7): {grant_remedy(ref, None)}",)
    else:
        warns = (f"the user-assigned identity needs key access before this step; once granted, set "
                 f"identity.keyAccessGranted to set the key at creation (C5, C7): "
                 f"{grant_remedy(ref, principal)}",)
    wb.add(Change(id=key_step, action=Action.SET_KEY, address=address, resource_id=cluster.arm_id,
                  cluster_id=cluster.arm_id, depends_on=(step,),
                  parameters=_set_key_params(cluster, ref),
                  after={"key": key_params(ref), "provisioning_state": "Succeeded"},
                  reason="rule C5: the key is set after creation", rules=(Rule.C5, Rule.C7), warnings=warns))
    gate.depends_on.append(key_step)


def _defer_key(wb: Workbench, cluster: Cluster, path: str, deps: list[str]) -> None:
    """When the create waits, its key step waits too (with no date of its own)."""
    if cluster.spec.key is None:
        return
    ref = cluster.spec.key.ref()
    wb.defer(id=f"set_key:cluster:{path}", action=Action.SET_KEY, address=address_of(cluster),
             resource_id=cluster.arm_id, rule=Rule.C5, reason="the key is set once the cluster exists",
             not_before=None, depends_on=deps, parameters=_set_key_params(cluster, ref))


def _set_key_params(cluster: Cluster, ref: ids.KeyRef) -> SetKeyParams:
    return SetKeyParams(subscription=cluster.spec.subscription, resource_group=cluster.spec.resource_group,
                        name=cluster.azure_name, key=KeyParams.of(ref))


def _reserved_until(wb: Workbench, cluster: Cluster) -> datetime | None:
    """Rule C11: a deletion of this name within the retention keeps it reserved until +14 days."""
    key = ids.id_key(cluster.arm_id)
    ends = [d.at + wb.limits.soft_delete_retention for d in wb.history.cluster_deletions
            if d.cluster_key == key or (
                d.subscription.lower() == cluster.spec.subscription.lower()
                and d.name.lower() == cluster.azure_name.lower()
                and ids.id_key(ids.cluster_id(d.subscription, cluster.spec.resource_group, d.name)) == key)]
    ends = [e for e in ends if e > wb.now]
    return max(ends) if ends else None


def _c10_original(wb: Workbench, cluster: Cluster) -> ObservedCluster | None:
    """Rule C10: the same cluster name lives elsewhere in a subscription we read and nothing declares it."""
    declared = {ids.id_key(c.arm_id) for c in wb.desired.clusters}
    for key, obs in sorted(wb.observed.clusters.items()):
        if (obs.name.lower() == cluster.azure_name.lower() and key not in declared
                and ids.normalise_location(obs.location) == cluster.spec.location):
            return obs
    return None


# -- existing clusters: adopt, update, rotate, identity sequence -----------------------------------

def _plan_existing(wb: Workbench, cluster: Cluster, obs: ObservedCluster) -> None:
    spec = cluster.spec
    path = cluster_path(obs.subscription, obs.resource_group, obs.name)
    address = address_of(cluster)
    gate = wb.gate(cluster.arm_id)
    base = _Target(subscription=obs.subscription, resource_group=obs.resource_group, name=obs.name)
    busy = _busy(wb, obs)
    chain: list[str] = []  # steps in this plan, in order (C6: one at a time)
    chain_pending = False  # an earlier step of the chain is deferred/blocked

    def drift(field_: str, desired: Any, live: Any, severity: Severity = Severity.WARNING,
              rule: Rule | None = None) -> None:
        wb.drifted(address=address, resource_id=obs.id, field_=field_, desired=desired, live=live,
                   severity=severity, rule=rule)

    def emit(change: Change) -> None:
        """Add a chained step, or defer it when the cluster is busy or an earlier step waits."""
        nonlocal chain_pending
        deps = tuple(sorted(set(change.depends_on) | ({chain[-1]} if chain else set())))
        if busy or chain_pending:
            rule = Rule.C6
            state = f"is {obs.provisioning_state}" if obs.busy else "has an operation of ours running"
            reason = (f"{obs.name} {state}; no update while an operation runs"
                      if busy else "waits for an earlier step on this cluster")
            wb.defer(id=change.id, action=change.action, address=address, resource_id=obs.id, rule=rule,
                     reason=reason, not_before=None, depends_on=deps, parameters=change.parameters)
            chain_pending = True
        else:
            wb.add(change.model_copy(update={"depends_on": deps}))
        chain.append(change.id)

    if obs.unknown:
        wb.warn("unreadable-fields",
                f"{address}: Azure's answer carries no readable {', '.join(sorted(obs.unknown))}: "
                "unknown, so nothing is changed for it", address=address)
    live_loc = ids.normalise_location(obs.location) if "location" not in obs.unknown else spec.location
    if live_loc != spec.location:
        drift("location", spec.location, obs.location, Severity.CRITICAL, Rule.C10)
        wb.block(id=f"update:cluster:{path}", action=Action.UPDATE, address=address, resource_id=obs.id,
                 rule=Rule.C10, reason=f"the cluster is in {obs.location}, the spec says {spec.location}",
                 remedy="a cluster cannot move: declare a new cluster in the new region")
        gate.wait(Rule.C10, "its cluster is blocked", None, f"update:cluster:{path}")
        return
    if obs.double_encryption != spec.double_encryption:
        drift("double_encryption", spec.double_encryption, obs.double_encryption, rule=Rule.C9)
        wb.block(id=f"update:cluster:{path}:double_encryption", action=Action.UPDATE, address=address,
                 resource_id=obs.id, rule=Rule.C9,
                 reason=f"doubleEncryption is {str(obs.double_encryption).lower()} and fixed at creation",
                 remedy=f"set doubleEncryption: {str(obs.double_encryption).lower()}, or declare a new "
                        "cluster and move the workspaces")
    if spec.availability_zones is not None and obs.availability_zones != spec.availability_zones:  # rule C9
        drift("availability_zones", spec.availability_zones, obs.availability_zones)
        live_zones = "null" if obs.availability_zones is None else str(obs.availability_zones).lower()
        wb.warn("fixed-at-creation", f"{address}: availabilityZones is fixed at creation (live "
                f"{live_zones}, spec {str(spec.availability_zones).lower()})", address=address, rule=Rule.C9)
    if obs.provisioning_state == "Failed" and not busy:
        # A failed provisioning is repaired by re-issuing the PUT (ARM re-drives it); without this
        # step a cluster whose create failed would wait forever and its links with it (W4).
        wb.warn("cluster-failed", f"{address} is Failed; it is re-provisioned first and its links wait "
                "until it is Succeeded", address=address, rule=Rule.C6, severity=Severity.CRITICAL)
        emit(Change(id=f"create:cluster:{path}:repair", action=Action.CREATE, address=address,
                    resource_id=obs.id, cluster_id=obs.id,
                    parameters=CreateParams(
                        **base, location=obs.location, identity=IdentityParams(**_live_identity(obs)),
                        capacity=obs.capacity, billing_type=obs.billing_type,
                        double_encryption=obs.double_encryption, availability_zones=obs.availability_zones,
                        tags=dict(sorted(obs.tags.items())), key=None),
                    before={"provisioning_state": "Failed"},
                    after={"provisioning_state": "Succeeded", "capacity": obs.capacity},
                    reason="its provisioning Failed: re-issue the create to repair it", rules=(Rule.C6,)))

    live_ident, want_ident = _live_identity(obs), _identity(cluster)
    want_key = spec.key.ref() if spec.key is not None else None
    live_key = obs.key
    if live_key is not None:
        live_key_health(wb, live_key, address=address, resource_id=obs.id)
    identity_changes = "identity" not in obs.unknown and not _identity_matches(cluster, obs)
    if identity_changes:
        drift("identity", want_ident, live_ident, Severity.WARNING)
    key_changes = want_key is not None and not compare.same_key(want_key, live_key)
    if want_key is None and live_key is not None:
        drift("key", None, key_params(live_key))
        wb.warn("key-removal-unsupported", f"{address}: the spec has no key but the cluster uses "
                f"{live_key.uri()}; the key is not removed (new data would use Microsoft keys, W6), "
                "nothing is planned",
                address=address)
    if key_changes:
        drift("key", key_params(want_key), key_params(live_key))

    # identity (C12, the 4-step UserAssigned → SystemAssigned sequence)
    key_after_identity = key_changes
    if identity_changes:
        ok = _plan_identity(wb, cluster, obs, path, base, emit, want_ident, live_ident)
        if not ok:
            gate.wait(Rule.C12, "its cluster's identity change is blocked", None,
                      f"update:cluster:{path}:identity")
            return
        if str(want_ident["type"]) == "SystemAssigned" and str(live_ident["type"]) == "UserAssigned" \
                and (want_key is not None or live_key is not None):
            ref = want_key or live_key
            step4 = f"set_key:cluster:{path}"
            wb.defer(id=step4, action=Action.SET_KEY, address=address, resource_id=obs.id, rule=Rule.C7,
                     reason="step 4 of UserAssigned → SystemAssigned: grant the new system-assigned "
                            f"principal get, wrapKey, unwrapKey on {ref.vault_name if ref else ''}, then "
                            "re-plan", not_before=None, depends_on=[chain[-1]],
                     parameters=SetKeyParams(**base, key=KeyParams.of(ref)))
            gate.wait(Rule.C7, "the cluster's key is set again after its new identity is granted", None,
                      step4)
            key_after_identity = False

    # key (C7, C8, K1): rotation to the new version comes before anything else that waits
    if key_after_identity and want_key is not None:
        step = f"set_key:cluster:{path}"
        principal = None if identity_changes else obs.principal_id
        problems = check_key(wb, want_key, address=address, cluster_location=live_loc,
                             cluster_tenant=obs.tenant_id, principal_id=principal,
                             access_granted_by_spec=spec.identity.key_access_granted and identity_changes)
        if problems:
            p = problems[0]
            wb.block(id=step, action=Action.SET_KEY, address=address, resource_id=obs.id, rule=p.rule,
                     reason=p.reason, remedy=p.remedy)
            if live_key is None:  # links would land on Microsoft keys (W4)
                gate.wait(Rule.W4, f"its cluster's key can't be set ({p.rule})", None, step)
        else:
            rotation = live_key is not None and live_key.key() == want_key.key()
            notes: tuple[str, ...] = ()
            if live_key is not None and (live_key.version is None) != (want_key.version is None):
                notes = ("versionless: the cluster will follow the key's current version (auto-rotation, K1)"
                         if want_key.version is None else
                         f"pinned to {want_key.version}: rotation becomes explicit (K1)",)
                wb.warn("key-versioning", f"{address}: {notes[0]}", address=address, rule=Rule.K1,
                        severity=Severity.INFO)
            emit(Change(id=step, action=Action.SET_KEY, address=address, resource_id=obs.id,
                        cluster_id=obs.id, parameters=SetKeyParams(**base, key=KeyParams.of(want_key)),
                        before={"key": key_params(live_key)},
                        after={"key": key_params(want_key), "provisioning_state": "Succeeded"},
                        reason="key rotation (rule K1)" if rotation else "the declared key differs",
                        rules=(Rule.C7, Rule.K1) if rotation else (Rule.C7,), warnings=notes))
    elif want_key is not None and not key_changes:
        # the key is already set: nothing to send, but anything the service would now refuse means the
        # cluster is at risk of revocation (K2): say so loudly
        for prob in check_key(wb, want_key, address=address, cluster_location=live_loc,
                              cluster_tenant=obs.tenant_id,
                              principal_id=None if identity_changes else obs.principal_id):
            wb.warn("key-at-risk", f"{address}: {prob.reason} ({prob.remedy})", address=address,
                    rule=prob.rule, severity=Severity.CRITICAL)

    _plan_update(wb, cluster, obs, path, base, emit, drift)

    # gate for links (W4): a Succeeded cluster (the busy reason first), and every step of the chain
    if busy:
        what = f"is {obs.provisioning_state}" if obs.busy else "has an operation of ours still running"
        gate.wait(Rule.W4, f"{obs.name} {what}: links wait until it is Succeeded", None, None)
    for step in chain:
        if step in wb.changes:
            gate.depends_on.append(step)
        else:
            gate.wait(wb.deferred[step].rule if step in wb.deferred else Rule.C6,
                      f"waits for {step}", None, step)
    if not busy and obs.provisioning_state != _LINKABLE and not any(s in wb.changes for s in chain):
        gate.wait(Rule.W4, f"{obs.name} is {obs.provisioning_state}, not Succeeded", None, None)


def _plan_identity(wb: Workbench, cluster: Cluster, obs: ObservedCluster, path: str, base: _Target,
                   emit: Any, want: dict[str, Any], live: dict[str, Any]) -> bool:
    """Plan the identity change; False when it is blocked."""
    address = address_of(cluster)
    step = f"update:cluster:{path}:identity"
    if str(live["type"]) == "None":
        wb.block(id=step, action=Action.UPDATE, address=address, resource_id=obs.id, rule=Rule.C12,
                 reason="the cluster's identity is None: its access was revoked irreversibly",
                 remedy="open a support request to restore it, or declare a new cluster")
        return False
    if str(want["type"]) == "None":
        if not cluster.spec.allow_access_revocation:
            wb.block(id=step, action=Action.UPDATE, address=address, resource_id=obs.id, rule=Rule.C12,
                     reason="identity None revokes access to the cluster's data irreversibly",
                     remedy="set allowAccessRevocation: true if this is really wanted")
            return False
        wb.warn("identity-none", f"{address}: identity None REVOKES access to the data irreversibly (C12)",
                address=address, rule=Rule.C12, severity=Severity.CRITICAL)
        emit(Change(id=step, action=Action.UPDATE, address=address, resource_id=obs.id, cluster_id=obs.id,
                    parameters=UpdateParams(**base, identity=IdentityParams(**want)),
                    before={"identity": live},
                    after={"identity": want}, reason="identity None (opted in)", rules=(Rule.C12,),
                    destructive=True, warnings=("irreversible: only a support request restores access",)))
        return True
    if str(want["type"]) == "UserAssigned" and obs.key is not None \
            and not cluster.spec.identity.key_access_granted:
        wb.block(id=step, action=Action.UPDATE, address=address, resource_id=obs.id, rule=Rule.C7,
                 reason=f"switching to {want['user_assigned_identity']} while the cluster uses a key would "
                        "revoke access unless that identity already has get/wrapKey/unwrapKey (K2)",
                 remedy="grant the identity on the vault, then set identity.keyAccessGranted: true")
        return False
    if str(want["type"]) == "SystemAssigned" and str(live["type"]) == "UserAssigned" and obs.key is not None:
        emit(Change(id=f"set_key:cluster:{path}:clear", action=Action.SET_KEY, address=address,
                    resource_id=obs.id, cluster_id=obs.id, parameters=SetKeyParams(**base, key=None),
                    before={"key": key_params(obs.key)}, after={"key": None},
                    reason="step 1 of UserAssigned → SystemAssigned: clear the key (identity and key never "
                           "change together)", rules=(Rule.C5, Rule.C13),
                    warnings=("new data uses Microsoft keys until the identity switch's last step sets "
                              "the key again (W6)",)))
    # ARM PATCH merges user-assigned identities: the ones to leave are named, each sent as null
    wanted = ids.id_key(want["user_assigned_identity"] or "")
    unassign = tuple(u for u in obs.user_assigned_identities if ids.id_key(u) != wanted) \
        if str(want["type"]) == "UserAssigned" else ()
    emit(Change(id=step, action=Action.UPDATE, address=address, resource_id=obs.id, cluster_id=obs.id,
                parameters=UpdateParams(**base, identity=IdentityParams(**want),
                                        unassign_identities=unassign),
                before={"identity": live}, after={"identity": want},
                reason="the declared identity differs", rules=(Rule.C5,)))
    return True


def _plan_update(wb: Workbench, cluster: Cluster, obs: ObservedCluster, path: str, base: _Target,
                 emit: Any, drift: Any) -> None:
    """Capacity (C3, C4) as its own step (now, or deferred to the unlock date), then billing and tags."""
    spec = cluster.spec
    address = address_of(cluster)
    changed: dict[str, Any] = {}
    before: dict[str, Any] = {}
    capacity_now = False
    if spec.billing_type.lower() != obs.billing_type.lower():
        drift("billing_type", str(spec.billing_type), obs.billing_type)
        changed["billing_type"], before["billing_type"] = str(spec.billing_type), obs.billing_type
    if not compare.same_tags(spec.tags, obs.tags):
        drift("tags", dict(spec.tags), compare.user_tags(obs.tags))
        owner = compare.owner_scope(obs.tags)  # kept: tags are sent as the complete set
        wanted = {**spec.tags, **({compare.OWNER_TAG: owner} if owner is not None else {})}
        changed["tags"], before["tags"] = dict(sorted(wanted.items())), dict(sorted(obs.tags.items()))
    if "capacity" not in obs.unknown and spec.capacity != obs.capacity:
        drift("capacity", spec.capacity, obs.capacity)
        if not wb.limits.capacity_ok(spec.capacity):
            wb.block(id=f"update:cluster:{path}:capacity", action=Action.UPDATE, address=address,
                     resource_id=obs.id, rule=Rule.C3,
                     reason=f"capacity {spec.capacity} is not allowed ({wb.limits.capacity_rule_text()})",
                     remedy="set spec.capacity to an allowed value")
        elif spec.capacity > obs.capacity:
            capacity_now = True
        else:
            since = obs.last_sku_update or obs.created
            unlocked = since + wb.limits.capacity_lock if since is not None else None
            if unlocked is not None and unlocked > wb.now:  # rule C4
                wb.defer(id=f"update:cluster:{path}:capacity", action=Action.UPDATE, address=address,
                         resource_id=obs.id, rule=Rule.C4,
                         reason=f"capacity decrease {obs.capacity} → {spec.capacity} is locked for "
                                f"{wb.limits.capacity_lock.days} days after the last SKU update "
                                f"({since.strftime('%Y-%m-%dT%H:%MZ') if since else 'date unknown'})",
                         not_before=unlocked, parameters=UpdateParams(**base, capacity=spec.capacity))
            else:
                capacity_now = True
    if capacity_now:  # its own step: the id stays the same whether it runs now or is deferred (C4)
        emit(Change(id=f"update:cluster:{path}:capacity", action=Action.UPDATE, address=address,
                    resource_id=obs.id, cluster_id=obs.id,
                    parameters=UpdateParams(**base, capacity=spec.capacity),
                    before={"capacity": obs.capacity}, after={"capacity": spec.capacity},
                    reason=f"declared capacity {spec.capacity} GB/day (live {obs.capacity})",
                    rules=(Rule.C3, Rule.C4)))
    if changed:
        emit(Change(id=f"update:cluster:{path}", action=Action.UPDATE, address=address, resource_id=obs.id,
                    cluster_id=obs.id, parameters=UpdateParams(**base, **changed), before=before,
                    after=dict(changed),
                    reason="declared " + ", ".join(sorted(changed)) + " differ"))
