"""A small pure simulator: applies a plan's changes to an ObservedState the way Azure would.

Used by the property tests ("planning the state that results from applying a plan yields no new
changes") so that it must follow `Change.parameters` exactly as the executor does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from plan_builders import PRINCIPAL, TENANT

from controller.model import ids
from controller.model.history import ClusterDeletion, History, LinkOperation
from controller.model.observed import ObservedCluster, ObservedState
from controller.planning.plan import (
    ByosLinkParams,
    CreateParams,
    DeleteParams,
    KeyParams,
    LinkParams,
    Plan,
    SetKeyParams,
    UnlinkParams,
    UpdateParams,
)


def _key(params: KeyParams | None) -> ids.KeyRef | None:
    return None if params is None else params.ref()


def apply_plan(plan: Plan, observed: ObservedState, history: History, now: datetime,
               step: timedelta = timedelta(minutes=5)) -> tuple[ObservedState, History, datetime]:
    """Run every change in plan order, each taking `step`; returns the new state, history and clock."""
    clusters = dict(observed.clusters)
    workspaces = dict(observed.workspaces)
    link_ops = list(history.link_operations)
    deletions = list(history.cluster_deletions)
    t = now
    for ch in plan.changes:
        t += step
        p = ch.parameters
        if isinstance(p, CreateParams):
            cid = ids.cluster_id(p.subscription, p.resource_group, p.name)
            existing = clusters.get(ids.id_key(cid))
            if existing is not None:  # re-provisioning a Failed cluster: same cluster, same key
                assert not existing.busy, f"{ch.id} sent to a busy cluster (C6)"
                clusters[ids.id_key(cid)] = replace(existing, provisioning_state="Succeeded")
                continue
            ident = p.identity
            clusters[ids.id_key(cid)] = ObservedCluster(
                id=cid, subscription=p.subscription, resource_group=p.resource_group, name=p.name,
                location=p.location, provisioning_state="Succeeded", identity_type=ident.type,
                user_assigned_identities=(ident.user_assigned_identity,) if ident.user_assigned_identity
                else (), principal_id=PRINCIPAL, tenant_id=TENANT, capacity=p.capacity,
                billing_type=p.billing_type, double_encryption=p.double_encryption,
                availability_zones=p.availability_zones, key=_key(p.key), last_sku_update=t, created=t,
                tags=dict(p.tags))
            continue
        if isinstance(p, UpdateParams | SetKeyParams | DeleteParams):
            cid = ids.cluster_id(p.subscription, p.resource_group, p.name)
            key = ids.id_key(cid)
            c = clusters[key]
            assert not c.busy, f"{ch.id} sent to a busy cluster (C6)"
            if isinstance(p, DeleteParams):
                del clusters[key]
                deletions.append(ClusterDeletion(cluster_key=key, subscription=c.subscription,
                                                 location=c.location, name=c.name, at=t))
                for wk, ws in list(workspaces.items()):
                    if ws.cluster_id and ids.id_key(ws.cluster_id) == key:
                        workspaces[wk] = replace(ws, cluster_id=None)
                continue
            if isinstance(p, SetKeyParams):  # a key step carries no identity: never both in one operation
                clusters[key] = replace(c, key=_key(p.key), provisioning_state="Succeeded")
                continue
            over: dict[str, object] = {"provisioning_state": "Succeeded"}  # a finished operation
            if p.capacity is not None:
                if p.capacity < c.capacity:
                    since = c.last_sku_update or c.created
                    assert since is None or since + timedelta(days=30) <= t, f"{ch.id}: C4 violated"
                over["capacity"], over["last_sku_update"] = p.capacity, t
            if p.billing_type is not None:
                over["billing_type"] = p.billing_type
            if p.tags is not None:
                over["tags"] = dict(p.tags)
            if p.identity is not None:
                # ARM merges user-assigned identities on PATCH: the named ones leave, the new one joins
                leaving = {ids.id_key(u) for u in p.unassign_identities}
                kept = tuple(u for u in c.user_assigned_identities if ids.id_key(u) not in leaving)
                new = p.identity.user_assigned_identity
                uais = (*kept, new) if new and ids.id_key(new) not in {ids.id_key(u) for u in kept} else kept
                over["identity_type"] = p.identity.type
                over["user_assigned_identities"] = uais if p.identity.type == "UserAssigned" else ()
                over["principal_id"] = PRINCIPAL
            clusters[key] = replace(c, **over)  # type: ignore[arg-type]
            continue
        wkey = ids.id_key(p.workspace_id)
        ws = workspaces[wkey]
        if isinstance(p, LinkParams):
            target = clusters[ids.id_key(p.cluster_id)]
            assert target.provisioning_state == "Succeeded", f"{ch.id}: link to a cluster not Succeeded (W4)"
            assert ws.cluster_id is None, f"{ch.id}: link while linked elsewhere (W2)"
            workspaces[wkey] = replace(ws, cluster_id=target.id)
            clusters[ids.id_key(target.id)] = replace(
                target, associated_workspaces={**target.associated_workspaces, wkey: t})
            link_ops.append(LinkOperation(workspace_key=wkey, kind="link", at=t,
                                          cluster_key=ids.id_key(target.id)))
        elif isinstance(p, UnlinkParams):
            old = ids.id_key(p.cluster_id or "")
            workspaces[wkey] = replace(ws, cluster_id=None)
            if old in clusters:
                rest = {k: v for k, v in clusters[old].associated_workspaces.items() if k != wkey}
                clusters[old] = replace(clusters[old], associated_workspaces=rest)
            link_ops.append(LinkOperation(workspace_key=wkey, kind="unlink", at=t, cluster_key=old))
        elif isinstance(p, ByosLinkParams):
            workspaces[wkey] = replace(ws, byos={**ws.byos, p.data_source_type.lower(): p.storage_account_id})
        else:
            workspaces[wkey] = replace(ws, byos={k: v for k, v in ws.byos.items()
                                                 if k != p.data_source_type.lower()})
    new_observed = replace(observed, clusters=clusters, workspaces=workspaces, read_at=t)
    new_history = History(link_operations=tuple(link_ops), cluster_deletions=tuple(deletions),
                          in_flight=history.in_flight)
    return new_observed, new_history, t
