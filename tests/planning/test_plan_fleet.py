"""examples/fleet through the planner: an estate that matches it is adopted without a single change;
an empty estate (only the workspaces, keys and vaults exist) gets the full, ordered build."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from plan_builders import NOW, PRINCIPAL, TENANT

from controller.loading import load
from controller.model import ids
from controller.model.history import History
from controller.model.limits import for_profile
from controller.model.observed import (
    AccessPolicy,
    KeyVersion,
    ObservedCluster,
    ObservedKey,
    ObservedState,
    ObservedVault,
    ObservedWorkspace,
)
from controller.model.spec import DesiredState
from controller.planning.graph import ancestors
from controller.planning.plan import Action, Plan
from controller.planning.planner import make_plan

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet"
CURRENT_VERSION = "f" * 32


@pytest.fixture(scope="module")
def fleet() -> DesiredState:
    return load([FLEET])


def _estate(d: DesiredState, *, with_clusters: bool) -> ObservedState:
    clusters: dict[str, ObservedCluster] = {}
    links = d.desired_links()
    keys: dict[str, ObservedKey] = {}
    vaults: dict[str, ObservedVault] = {}
    for c in d.clusters:
        s = c.spec
        if s.key is not None:
            ref = s.key.ref()
            versions = {CURRENT_VERSION, *([ref.version] if ref.version else [])}
            keys[ref.key()] = ObservedKey(
                vault_uri=ref.vault_uri, name=ref.name, exists=True, current_version=CURRENT_VERSION,
                versions=tuple(KeyVersion(version=v, enabled=True, created=NOW - timedelta(days=5),
                                          expires=None, not_before=None) for v in sorted(versions)),
                recovery_level="Recoverable")
            vaults[ref.vault_host.lower()] = ObservedVault(
                uri=ref.vault_uri, readable=True, location=s.location, tenant_id=TENANT, soft_delete=True,
                purge_protection=True, rbac=False,
                access_policies=(AccessPolicy(tenant_id=TENANT, object_id=PRINCIPAL,
                                              key_permissions=frozenset({"get", "wrapkey", "unwrapkey"})),))
        if not with_clusters:
            continue
        clusters[ids.id_key(c.arm_id)] = ObservedCluster(
            id=c.arm_id, subscription=s.subscription, resource_group=s.resource_group, name=c.azure_name,
            location=s.location, provisioning_state="Succeeded", identity_type=str(s.identity.type),
            user_assigned_identities=(s.identity.user_assigned_identity,) if s.identity.user_assigned_identity
            else (), principal_id=PRINCIPAL, tenant_id=TENANT, capacity=s.capacity,
            billing_type=str(s.billing_type), double_encryption=s.double_encryption,
            availability_zones=s.availability_zones, key=s.key.ref() if s.key else None,
            last_sku_update=NOW - timedelta(days=60), created=NOW - timedelta(days=60), tags=dict(s.tags),
            associated_workspaces={ws: NOW - timedelta(days=45) for ws, t in links.items()
                                   if t.arm_id == c.arm_id})
    workspaces: dict[str, ObservedWorkspace] = {}
    for ws_key, entry in d.workspace_entries().items():
        rid = ids.ResourceId.parse(entry.id)
        target = links.get(ws_key)
        byos = {}
        if with_clusters and entry.byos is not None:
            byos = {k: v for k, v in (("query", entry.byos.query), ("alerts", entry.byos.alerts)) if v}
        workspaces[ws_key] = ObservedWorkspace(
            id=entry.id, subscription=rid.subscription, resource_group=rid.resource_group, name=rid.name,
            location=target.spec.location if target else "westeurope", provisioning_state="Succeeded",
            cluster_id=target.arm_id if (target and with_clusters) else None, byos=byos, byos_read=True)
    return ObservedState(subscriptions=tuple(sorted(d.subscriptions())), clusters=clusters,
                         workspaces=workspaces, keys=keys, vaults=vaults, read_at=NOW)


def _plan(d: DesiredState, o: ObservedState) -> Plan:
    return make_plan(desired=d, observed=o, now=NOW, history=History(),
                     limits=for_profile(d.settings.limits_profile))


def test_fleet_matching_estate_is_adopted_without_changes(fleet: DesiredState) -> None:
    p = _plan(fleet, _estate(fleet, with_clusters=True))
    assert p.changes == () and p.deferred == () and p.blocked == ()
    assert p.drift == ()
    assert not p.has_work


def test_fleet_on_an_empty_estate_is_the_full_ordered_build(fleet: DesiredState) -> None:
    p = _plan(fleet, _estate(fleet, with_clusters=False))
    creates = [c for c in p.changes if c.action == Action.CREATE]
    assert len(creates) == len(fleet.clusters)
    links = [c for c in p.changes if c.action == Action.LINK]
    assert len(links) == len(fleet.desired_links())
    edges = {c.id: c.depends_on for c in p.changes}
    for link in links:
        cluster_steps = {c.id for c in p.changes if c.action in (Action.CREATE, Action.SET_KEY)
                         and ids.id_key(c.resource_id) == ids.id_key(link.parameters.cluster_id)}
        assert cluster_steps and cluster_steps <= ancestors(link.id, edges)
    # rule C5: the UserAssigned + granted cluster gets its key at creation, SystemAssigned ones after
    for c in fleet.clusters:
        create = next(ch for ch in creates if ch.parameters.name == c.azure_name)
        at_creation = c.spec.identity.key_access_granted and str(c.spec.identity.type) == "UserAssigned"
        assert (create.parameters.key is not None) == (at_creation and c.spec.key is not None)
    # only BYOS that the spec did not opt into may be blocked (B2)
    assert {b.rule for b in p.blocked} <= {"B2"}
    assert p.deferred == ()
