"""The estate examples/fleet assumes already exists, as an emulator seed: resource groups, workspaces,
storage accounts, user-assigned identities and the vaults/HSMs with their keys (purge protection on,
rule C7). Clusters and links are what `cmkctl apply` must build.

The builder is the product's own (`controller.service.emulator_estate`, behind
`cmkctl emulator --seed-from-spec`), so the story `make demo` tells, the tests that apply the fleet
from empty, and what a user seeds by hand cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from controller.model.spec import DesiredState
from controller.service.emulator_estate import (
    HSM_CRYPTO_ROLE,
    KEY_RESOURCE_GROUP,
    estate_for,
    principal_for,
    vault_docs,
)

CRYPTO_ROLE = HSM_CRYPTO_ROLE
fleet_estate = estate_for

__all__ = ["CRYPTO_ROLE", "KEY_RESOURCE_GROUP", "fleet_estate", "principal_for", "seed_fleet", "vault_docs"]


def seed_fleet(emulator: Any, desired: DesiredState) -> None:
    """Seed through any handle with `seed(dict)` (the tests' fixture, the demo's admin client)."""
    emulator.seed(estate_for(desired))
