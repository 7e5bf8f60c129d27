"""Service limits per profile. The emulator keeps its own copy (it shares no code with the product):
`current` (the default) is what Azure enforces today, `seed` the 2021 documentation the project was
created from (docs/rules.md, "Limits profiles")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    name: str
    clusters_per_region: int  # rule C2: active clusters per region per subscription
    reserved_per_region: int | None  # rule C2/C11: active + soft-deleted, None = not counted
    capacity_min: int  # rule C3
    capacity_max: int
    capacity_step: int | None
    capacity_tiers: tuple[int, ...] | None
    workspaces_per_cluster: int = 1000  # rule W1
    link_ops_per_window: int = 2  # rule W3
    link_window_days: int = 30
    capacity_lock_days: int = 30  # rule C4
    soft_delete_days: int = 14  # rule C11

    def capacity_ok(self, capacity: int) -> bool:
        if self.capacity_tiers is not None:
            return capacity in self.capacity_tiers
        step = self.capacity_step or 1
        return self.capacity_min <= capacity <= self.capacity_max and capacity % step == 0


SEED = Limits("seed", 2, None, 1000, 50000, 100, None)
CURRENT = Limits(
    "current",
    5,
    7,
    100,
    50000,
    None,
    (100, 200, 300, 400, 500, 1000, 2000, 5000, 10000, 25000, 50000),
    capacity_lock_days=31,  # rule C4: today's documentation speaks of a 31-day commitment period
)
PROFILES = {"seed": SEED, "current": CURRENT}
DEFAULT_PROFILE = "current"
