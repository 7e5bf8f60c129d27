"""Small YAML-free builders for planner tests: a DesiredState and an ObservedState in a few lines."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.model import ids
from controller.model.history import History
from controller.model.limits import Limits, for_profile
from controller.model.observed import (
    AccessPolicy,
    KeyVersion,
    ObservedCluster,
    ObservedKey,
    ObservedState,
    ObservedVault,
    ObservedWorkspace,
)
from controller.model.spec import Cluster, DesiredState, SettingsSpec, WorkspaceSet
from controller.planning.plan import Plan
from controller.planning.planner import make_plan

SUB = "00000000-0000-0000-0000-000000000001"
SUB2 = "00000000-0000-0000-0000-000000000002"
RG = "rg-cmk"
LOC = "westeurope"
TENANT = "11111111-1111-1111-1111-111111111111"
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
VAULT = "https://kv-cmk.vault.azure.net/"
KEY = "cmk"
V1 = "a" * 32
V2 = "b" * 32
UAI = (f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity"
       "/userAssignedIdentities/uai")
PRINCIPAL = "22222222-2222-2222-2222-222222222222"


def ws_id(name: str, sub: str = SUB, rg: str = "rg-ws") -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{ids.WORKSPACE_TYPE}/{name}"


def storage_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg-st/providers/Microsoft.Storage/storageAccounts/{name}"


def cluster(
    name: str = "prod1", *, sub: str = SUB, rg: str = RG, location: str = LOC, capacity: int = 1000,
    identity: str = "SystemAssigned", uai: str | None = None, granted: bool = False,
    key: bool | str | None = True, version: str | None = V1, tags: dict[str, str] | None = None,
    double_encryption: bool = True, billing: str = "Cluster", revocation: bool = False,
) -> Cluster:
    spec: dict[str, Any] = {
        "subscription": sub, "resourceGroup": rg, "location": location, "capacity": capacity,
        "identity": {"type": identity, **({"userAssignedIdentity": uai or UAI} if identity == "UserAssigned"
                                          else {}), **({"keyAccessGranted": True} if granted else {})},
        "doubleEncryption": double_encryption, "billingType": billing, "tags": tags or {},
        "allowAccessRevocation": revocation,
    }
    if key:
        spec["key"] = {"vaultUri": key if isinstance(key, str) else VAULT, "name": KEY,
                       **({"version": version} if version else {})}
    return Cluster.model_validate({"apiVersion": "cmk.azure.io/v1", "kind": "Cluster",
                                   "metadata": {"name": name}, "spec": spec})


def wsset(name: str, cluster_name: str | None, workspaces: list[Any]) -> WorkspaceSet:
    return WorkspaceSet.model_validate({"apiVersion": "cmk.azure.io/v1", "kind": "WorkspaceSet",
                                        "metadata": {"name": name},
                                        "spec": {"cluster": cluster_name, "workspaces": workspaces}})


def desired(clusters: list[Cluster] = (), sets: list[WorkspaceSet] = (),  # type: ignore[assignment]
            **settings: Any) -> DesiredState:
    return DesiredState(clusters=tuple(clusters), workspace_sets=tuple(sets),
                        settings=SettingsSpec.model_validate(settings))


def obs_cluster(c: Cluster, **over: Any) -> ObservedCluster:
    """The live twin of a declared cluster (adopted as is unless `over` changes fields)."""
    s = c.spec
    base = ObservedCluster(
        id=c.arm_id, subscription=s.subscription, resource_group=s.resource_group, name=c.azure_name,
        location=s.location, provisioning_state="Succeeded", identity_type=str(s.identity.type),
        user_assigned_identities=(s.identity.user_assigned_identity,) if s.identity.user_assigned_identity
        else (), principal_id=PRINCIPAL, tenant_id=TENANT, capacity=s.capacity,
        billing_type=str(s.billing_type), double_encryption=s.double_encryption,
        # an unset spec lets Azure decide; the builders' region has zones
        availability_zones=True if s.availability_zones is None else s.availability_zones,
        key=s.key.ref() if s.key else None,
        last_sku_update=NOW - timedelta(days=90), created=NOW - timedelta(days=90), tags=dict(s.tags),
    )
    return replace(base, **over)


def obs_ws(name: str, *, cluster_id: str | None = None, location: str = LOC, sub: str = SUB,
           **over: Any) -> ObservedWorkspace:
    wid = ws_id(name, sub)
    rid = ids.ResourceId.parse(wid)
    return ObservedWorkspace(id=wid, subscription=sub, resource_group=rid.resource_group, name=name,
                             location=location, provisioning_state="Succeeded", cluster_id=cluster_id,
                             **over)


def good_key(*versions: tuple[str, bool], recovery: str = "Recoverable") -> ObservedKey:
    vs = versions or ((V1, True),)
    return ObservedKey(
        vault_uri=VAULT, name=KEY, exists=True,
        current_version=next((v for v, en in reversed(vs) if en), None),
        versions=tuple(KeyVersion(version=v, enabled=en, created=NOW - timedelta(days=10), expires=None,
                                  not_before=None) for v, en in vs),
        recovery_level=recovery)


def good_vault(*principals: str, location: str = LOC, purge: bool = True) -> ObservedVault:
    perms = frozenset({"get", "wrapkey", "unwrapkey"})
    policies = tuple(AccessPolicy(tenant_id=TENANT, object_id=p, key_permissions=perms)
                     for p in (principals or (PRINCIPAL,)))
    return ObservedVault(uri=VAULT, readable=True, location=location, tenant_id=TENANT, soft_delete=True,
                         purge_protection=purge, rbac=False, access_policies=policies)


def observed(clusters: list[ObservedCluster] = (), workspaces: list[ObservedWorkspace] = (),  # type: ignore[assignment]
             key: ObservedKey | None = None, vault: ObservedVault | None = None) -> ObservedState:
    k = key or good_key()
    v = vault or good_vault()
    return ObservedState(
        subscriptions=(SUB,), clusters={ids.id_key(c.id): c for c in clusters},
        workspaces={ids.id_key(w.id): w for w in workspaces},
        keys={ids.KeyRef(vault_uri=k.vault_uri, name=k.name).key(): k},
        vaults={ids.KeyRef(vault_uri=v.uri, name="x").vault_host.lower(): v}, read_at=NOW)


def plan(d: DesiredState, o: ObservedState, *, history: History | None = None, now: datetime = NOW,
         limits: Limits | None = None) -> Plan:
    """Plan with the limits the spec's Settings choose (the default profile unless it says otherwise)."""
    lim = limits or for_profile(d.settings.limits_profile)
    return make_plan(desired=d, observed=o, now=now, history=history or History(), limits=lim)


def ids_of(items: Any) -> list[str]:
    return [i.id for i in items]


def by_id(p: Plan, step: str) -> Any:
    for item in (*p.changes, *p.deferred, *p.blocked):
        if item.id == step:
            return item
    raise AssertionError(f"{step} not in plan: {[i.id for i in (*p.changes, *p.deferred, *p.blocked)]}")


def cpath(c: Cluster) -> str:
    return f"{c.spec.subscription}/{c.spec.resource_group}/{c.azure_name}"


def wpath(name: str, sub: str = SUB) -> str:
    return f"{sub}/rg-ws/{name}"
