"""Rule C7 on a Managed HSM: plan catches what apply would hit, from the principal's role assignments.

The HSM is RBAC-only: a cluster identity needs a built-in role with keys read/wrap/unwrap (Managed HSM
Crypto Service Encryption User, or Crypto User) at "/", "/keys" or the key. Read and missing: the key
step is blocked with the `az keyvault role assignment create` command; not read (or only a role that
may be custom): a warning, the service decides.
"""

from __future__ import annotations

from dataclasses import replace

from plan_builders import (
    KEY,
    LOC,
    PRINCIPAL,
    UAI,
    V1,
    cluster,
    desired,
    good_key,
    obs_cluster,
    observed,
    plan,
)

from controller.model import ids
from controller.model.observed import HsmRoleAssignment, ObservedKey, ObservedState, ObservedVault
from controller.planning.plan import Action

HSM = "https://hsmcmk.managedhsm.azure.net/"
ENCRYPTION_USER = "33413926-3206-4cdd-b39a-83574fe37a17"
CUSTOM = "0b7e0000-0000-4000-8000-00000000c0de"
COMMAND = (f'az keyvault role assignment create --hsm-name hsmcmk --role "Managed HSM Crypto Service '
           f'Encryption User" --assignee-object-id {PRINCIPAL} --scope /keys/{KEY}')


def _observed(clusters: list, roles: tuple[HsmRoleAssignment, ...] | None) -> ObservedState:
    """The HSM with its key; `roles` None: the principal's assignments were not read."""
    o = observed(clusters, [])
    key: ObservedKey = replace(good_key(), vault_uri=HSM)
    host = "hsmcmk.managedhsm.azure.net"
    read = frozenset() if roles is None else frozenset({(PRINCIPAL, KEY)})
    vault = ObservedVault(uri=HSM, readable=False, rbac=True, location=LOC, hsm_roles_read=read,
                          hsm_roles=roles or ())
    return replace(o, keys={ids.KeyRef(vault_uri=HSM, name=KEY).key(): key}, vaults={host: vault},
                   identity_principals={ids.id_key(UAI): PRINCIPAL})


def _role(role_id: str, scope: str = "/keys") -> tuple[HsmRoleAssignment, ...]:
    return (HsmRoleAssignment(principal_id=PRINCIPAL, role_id=role_id, scope=scope),)


def test_a_new_user_assigned_cluster_without_the_hsm_role_is_blocked_with_the_command() -> None:
    """C7: the identity exists before the cluster; no role on the key = Azure would refuse it."""
    c = cluster("hsm1", identity="UserAssigned", granted=True, key=HSM, version=V1)
    p = plan(desired([c], []), _observed([], roles=()))
    (blocked,) = [b for b in p.blocked if b.address == "cluster.hsm1"]
    assert blocked.rule == "C7" and COMMAND in blocked.remedy
    assert not [ch for ch in p.changes if ch.action is Action.CREATE and ch.parameters.key is not None]


def test_a_role_at_hsm_keys_or_key_scope_lets_the_key_be_set_at_creation() -> None:
    c = cluster("hsm1", identity="UserAssigned", granted=True, key=HSM, version=V1)
    for scope in ("/", "/keys", f"/keys/{KEY}"):
        p = plan(desired([c], []), _observed([], roles=_role(ENCRYPTION_USER, scope)))
        assert p.blocked == (), scope
        (create,) = [ch for ch in p.changes if ch.action is Action.CREATE]
        assert create.parameters.key is not None  # rule C5: set at creation
        assert not [w for w in p.warnings if w.code == "key-access-unverified"]


def test_a_role_on_another_key_does_not_count() -> None:
    c = cluster("hsm1", identity="UserAssigned", granted=True, key=HSM, version=V1)
    p = plan(desired([c], []), _observed([], roles=_role(ENCRYPTION_USER, "/keys/other")))
    assert [b.rule for b in p.blocked] == ["C7"]


def test_an_existing_system_assigned_cluster_without_the_role_blocks_its_key_update() -> None:
    """C7: an existing cluster's principal is known: checked like a user-assigned one."""
    c = cluster("hsm1", key=HSM, version=V1)
    live = obs_cluster(c, key=None)
    p = plan(desired([c], []), _observed([live], roles=()))
    (blocked,) = p.blocked
    assert blocked.action is Action.SET_KEY and blocked.rule == "C7" and COMMAND in blocked.remedy


def test_unread_or_custom_roles_stay_a_warning() -> None:
    c = cluster("hsm1", key=HSM, version=V1)
    live = obs_cluster(c, key=None)
    for roles in (None, _role(CUSTOM)):
        p = plan(desired([c], []), _observed([live], roles=roles))
        assert p.blocked == ()
        assert [ch.action for ch in p.changes] == [Action.SET_KEY]
        (warning,) = [w for w in p.warnings if w.code == "key-access-unverified"]
        assert COMMAND in warning.message


def test_a_new_system_assigned_cluster_keeps_the_warning() -> None:
    """The principal exists only once the cluster does: nothing to read yet."""
    c = cluster("hsm1", key=HSM, version=V1)
    p = plan(desired([c], []), _observed([], roles=None))
    assert not [b for b in p.blocked if b.rule == "C7"]
