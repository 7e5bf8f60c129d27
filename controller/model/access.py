"""Key access a cluster identity needs (rule C7), and the exact command that grants it.

Plan (blocked items, warnings) and apply (the service's C7 refusal) word the fix the same way, so a
user can paste it: the principal, the vault or Managed HSM, the permissions and the `az` command.
"""

from __future__ import annotations

from controller.model.ids import KeyRef

KEY_PERMISSIONS = ("get", "wrapKey", "unwrapKey")
HSM_ROLE = "Managed HSM Crypto Service Encryption User"
PRINCIPAL_PLACEHOLDER = "<principal id>"


def grant_command(ref: KeyRef, principal_id: str | None) -> str:
    """The `az` command that gives `principal_id` what the cluster needs on `ref` (rule C7).

    A vault with access policies gets a policy; a Managed HSM (RBAC only) gets the built-in role,
    scoped to the key. An unknown principal (a system-assigned identity before its cluster exists)
    is left as a placeholder the user fills in."""
    principal = principal_id or PRINCIPAL_PLACEHOLDER
    if ref.is_managed_hsm:
        return (
            f'az keyvault role assignment create --hsm-name {ref.vault_name} --role "{HSM_ROLE}" '
            f"--assignee-object-id {principal} --scope /keys/{ref.name}"
        )
    return (
        f"az keyvault set-policy --name {ref.vault_name} --object-id {principal} "
        f"--key-permissions {' '.join(KEY_PERMISSIONS)}"
    )


def needs_text(ref: KeyRef, principal_id: str | None) -> str:
    """'principal P needs get, wrapKey, unwrapKey on key K in vault V' (or the HSM role)."""
    who = f"principal {principal_id}" if principal_id else "the cluster's principal"
    if ref.is_managed_hsm:
        return f"{who} needs the role '{HSM_ROLE}' on key {ref.name} in Managed HSM {ref.vault_name}"
    return f"{who} needs {', '.join(KEY_PERMISSIONS)} on key {ref.name} in vault {ref.vault_name}"


def grant_remedy(ref: KeyRef, principal_id: str | None) -> str:
    """A remedy sentence ending with the command to run."""
    return f"{needs_text(ref, principal_id)}; run: {grant_command(ref, principal_id)}"
