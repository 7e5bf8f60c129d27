"""Service limits as data, not code: the numbers changed between Microsoft doc revisions.

`current` (the default) is what Azure enforces today; `seed` is the 2021 documentation the project
started from. docs/rules.md ("Limits profiles") has the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from controller.model.spec import LimitsProfile


@dataclass(frozen=True, slots=True)
class Limits:
    profile: str
    clusters_per_region: int  # rule C2: active clusters per region per subscription
    reserved_per_region: int | None  # active + soft-deleted (C11) per region, None = not counted
    capacity_min: int  # rule C3
    capacity_max: int
    capacity_step: int | None  # seed: steps of 100
    capacity_tiers: tuple[int, ...] | None  # current: an enumerated set
    workspaces_per_cluster: int  # rule W1
    link_ops_per_window: int  # rule W3
    link_window: timedelta
    capacity_lock: timedelta  # rule C4
    soft_delete_retention: timedelta  # rule C11

    def capacity_ok(self, capacity: int) -> bool:
        if self.capacity_tiers is not None:
            return capacity in self.capacity_tiers
        step = self.capacity_step or 1
        return self.capacity_min <= capacity <= self.capacity_max and capacity % step == 0

    def capacity_rule_text(self) -> str:
        if self.capacity_tiers is not None:
            return "one of " + ", ".join(str(t) for t in self.capacity_tiers) + " GB/day"
        return f"{self.capacity_min}-{self.capacity_max} GB/day in steps of {self.capacity_step}"


SEED = Limits(
    profile="seed",
    clusters_per_region=2,
    reserved_per_region=None,
    capacity_min=1000,
    capacity_max=50000,
    capacity_step=100,
    capacity_tiers=None,
    workspaces_per_cluster=1000,
    link_ops_per_window=2,
    link_window=timedelta(days=30),
    capacity_lock=timedelta(days=30),
    soft_delete_retention=timedelta(days=14),
)

CURRENT = Limits(
    profile="current",
    clusters_per_region=5,
    reserved_per_region=7,
    capacity_min=100,
    capacity_max=50000,
    capacity_step=None,
    capacity_tiers=(100, 200, 300, 400, 500, 1000, 2000, 5000, 10000, 25000, 50000),
    workspaces_per_cluster=1000,
    link_ops_per_window=2,
    link_window=timedelta(days=30),
    capacity_lock=timedelta(days=31),  # today's 31-day commitment period; never decrease on day 30
    soft_delete_retention=timedelta(days=14),
)


def for_profile(profile: LimitsProfile | str) -> Limits:
    """The limits of a profile name; only `seed` picks the 2021 numbers, anything else is today's."""
    return SEED if str(profile) == LimitsProfile.SEED.value else CURRENT
