"""Customer-managed key checks (rules C7, C8, K1) and the `set_key` parameters.

Decisions:
* A key that is unreadable (403) is unknown, not missing: warn, let the service validate (C7).
* Recoverability: the vault's soft delete + purge protection when the vault is readable, else the
  key's `recoveryLevel` ("Recoverable" without "Purgeable"); unknown on both → warn, don't block.
* Access (get/wrapKey/unwrapKey) is checked only when the principal is known: a vault's access
  policies, or a Managed HSM's role assignments of that principal on the key (the built-in roles
  Managed HSM Crypto Service Encryption User / Crypto User); RBAC vaults, unread vaults and HSM roles
  that may be custom → warn that it could not be verified.
* A pinned version while a newer enabled version exists → info, not a change (the user pins on purpose).
* Expired or not-yet-valid versions are treated like disabled ones (the service can't wrap with them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from controller.model.access import grant_remedy
from controller.model.ids import KeyRef
from controller.model.observed import ObservedKey, ObservedVault
from controller.model.rules import Rule
from controller.planning.context import Workbench
from controller.planning.plan import Severity


@dataclass(frozen=True)
class KeyProblem:
    rule: Rule
    reason: str
    remedy: str


def key_params(ref: KeyRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"vault_uri": ref.vault_uri, "name": ref.name, "version": ref.version}


def _recoverable(vault: ObservedVault | None, key: ObservedKey | None) -> bool | None:
    if vault is not None and vault.readable and vault.soft_delete is not None:
        return bool(vault.soft_delete and vault.purge_protection)
    level = key.recovery_level if key is not None else None
    if level is None:
        return None
    return "Recoverable" in level and "Purgeable" not in level


def version_usable(key: ObservedKey, version: str, now: datetime) -> str | None:
    """None when the version can wrap now, else why not (rule K1 / C7)."""
    v = key.version(version)
    if v is None:
        return f"version {version} of key '{key.name}' does not exist (deleted?)"
    if not v.enabled:
        return f"version {version} of key '{key.name}' is disabled"
    if v.expires is not None and v.expires <= now:
        return f"version {version} of key '{key.name}' expired on {v.expires.isoformat()}"
    if v.not_before is not None and v.not_before > now:
        return f"version {version} of key '{key.name}' is not valid before {v.not_before.isoformat()}"
    return None


def check_key(
    wb: Workbench,
    ref: KeyRef,
    *,
    address: str,
    cluster_location: str,
    cluster_tenant: str | None,
    principal_id: str | None,
    access_granted_by_spec: bool = False,
) -> list[KeyProblem]:
    """Everything the service would reject on a key update (C7, C8), found before sending it."""
    problems: list[KeyProblem] = []
    vault = wb.observed.vaults.get(ref.vault_host.lower())
    key = wb.observed.keys.get(ref.key())
    where = f"{ref.vault_host}/keys/{ref.name}"

    if key is not None and key.readable:
        if not key.exists:
            problems.append(KeyProblem(Rule.C7, f"key '{ref.name}' does not exist in {ref.vault_host}",
                                       f"create key '{ref.name}' in the vault, or fix spec.key"))
        elif ref.version is not None:
            why = version_usable(key, ref.version, wb.now)
            if why is not None:
                problems.append(
                    KeyProblem(Rule.C7, why, "enable the version or pin an enabled one in spec.key"))
            elif key.current_version and key.current_version.lower() != ref.version.lower():
                wb.warn("key-newer-version",
                        f"{where}: pinned version {ref.version} while {key.current_version} is newer; "
                        "pin the new version to rotate (rule K1)",
                        address=address, rule=Rule.K1, severity=Severity.INFO)
        elif not key.current_version:
            problems.append(KeyProblem(Rule.C7, f"key '{ref.name}' has no enabled version",
                                       "enable or create a version of the key"))
        _expiry_warning(wb, key, ref, address)
    else:
        wb.warn("key-unreadable", f"{where}: the key could not be read; the service will validate it",
                address=address, rule=Rule.C7)

    recoverable = _recoverable(vault, key)
    if recoverable is False:
        problems.append(KeyProblem(
            Rule.C7, f"vault {ref.vault_host} is not recoverable (needs soft delete and purge protection)",
            f"enable purge protection on {ref.vault_name} (soft delete is on by default)"))
    elif recoverable is None:
        wb.warn("vault-recoverability-unknown",
                f"{ref.vault_host}: soft delete / purge protection could not be read", address=address,
                rule=Rule.C7)

    # rule C8: region and tenant count whenever observe learnt them, even when the vault resource is not
    # otherwise readable (the location can come from a resource listing without read access to it)
    if vault is not None and vault.location and vault.location.replace(" ", "").lower() != cluster_location:
        problems.append(KeyProblem(
            Rule.C8, f"vault {ref.vault_host} is in {vault.location}, the cluster in {cluster_location}",
            "use a key in a vault in the cluster's region"))
    if (vault is not None and vault.tenant_id and cluster_tenant
            and vault.tenant_id.lower() != cluster_tenant.lower()):
        problems.append(KeyProblem(
            Rule.C8,
            f"vault {ref.vault_host} is in tenant {vault.tenant_id}, the cluster in {cluster_tenant}",
            "use a key in a vault of the cluster's tenant"))
    # the vault's access policies outrank identity.keyAccessGranted: that flag only stands in for what
    # cannot be read (a principal or vault we could not see)
    if vault is not None and vault.readable:
        granted = vault.grants_key_access(principal_id)
        if granted is False:
            problems.append(KeyProblem(
                Rule.C7,
                f"the cluster identity (principal {principal_id}) lacks get/wrapKey/unwrapKey on key "
                f"{ref.name} in vault {ref.vault_name}; Azure would refuse the key",
                grant_remedy(ref, principal_id)))
        elif granted is None and principal_id is not None:
            wb.warn("key-access-unverified",
                    f"{ref.vault_host}: access of principal {principal_id} could not be verified "
                    f"(RBAC vault); {grant_remedy(ref, principal_id)}",
                    address=address, rule=Rule.C7, severity=Severity.INFO)
    elif ref.is_managed_hsm and principal_id is not None:
        # rule C7: a Managed HSM is RBAC-only; the principal's role assignments on the key were read
        # (observe), and they outrank identity.keyAccessGranted as a vault's access policies do
        granted = vault.hsm_grants_key_access(principal_id, ref.name) if vault is not None else None
        if granted is False:
            problems.append(KeyProblem(
                Rule.C7,
                f"the cluster identity (principal {principal_id}) has no role on key {ref.name} in Managed "
                f"HSM {ref.vault_name} that allows get/wrapKey/unwrapKey; Azure would refuse the key",
                grant_remedy(ref, principal_id)))
        elif granted is None and not access_granted_by_spec:
            wb.warn("key-access-unverified",
                    f"{address}: access to Managed HSM {ref.vault_name} could not be verified; "
                    f"{grant_remedy(ref, principal_id)}", address=address, rule=Rule.C7)
    return problems


def _expiry_warning(wb: Workbench, key: ObservedKey, ref: KeyRef, address: str) -> None:
    version = ref.version or key.current_version
    v = key.version(version) if version else None
    if v is None or v.expires is None:
        return
    horizon = wb.now + timedelta(days=wb.desired.settings.key_expiry_warning_days)
    if wb.now < v.expires <= horizon:
        wb.warn("key-expiring",
                f"{ref.vault_host}/keys/{ref.name}/{v.version} expires on {v.expires.isoformat()}; rotate "
                "before then (rule K1)", address=address, rule=Rule.K1)


def live_key_health(wb: Workbench, ref: KeyRef, *, address: str, resource_id: str) -> None:
    """Rule K1: a cluster whose key version is disabled, deleted or expired is being revoked (K2)."""
    key = wb.observed.keys.get(ref.key())
    if key is None or not key.readable:
        return
    why: str | None
    if not key.exists:
        why = f"key '{ref.name}' no longer exists"
    elif ref.version is not None:
        why = version_usable(key, ref.version, wb.now)
    else:
        why = None if key.current_version else f"key '{ref.name}' has no enabled version"
    if why is None:
        return
    wb.drifted(address=address, resource_id=resource_id, field_="key.version_state",
               desired="enabled", live=why, severity=Severity.CRITICAL, rule=Rule.K1)
    wb.warn("key-revoked",
            f"{address} uses {ref.uri()}: {why}; the cluster is losing access to its data (rules K1, K2). "
            "Re-enable the version, or point the cluster at an enabled version",
            address=address, rule=Rule.K1, severity=Severity.CRITICAL)
