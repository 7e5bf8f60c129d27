"""The estate examples/fleet assumes already exists (resource groups, workspaces, storage accounts,
user-assigned identities, vaults/HSMs with purge protection, rule C7). The builder lives in demo.estate
so `make demo` and these tests seed the same world."""

from __future__ import annotations

from demo.estate import CRYPTO_ROLE, fleet_estate, principal_for, seed_fleet, vault_docs

__all__ = ["CRYPTO_ROLE", "fleet_estate", "principal_for", "seed_fleet", "vault_docs"]
