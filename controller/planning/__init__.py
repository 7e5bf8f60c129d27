"""The pure planner: make_plan(desired, observed, now, history, limits) -> Plan.

No I/O here, ever (import-linter `pure-core` contract): `now` is a parameter, history is a value.
"""

from controller.planning.planner import make_plan

__all__ = ["make_plan"]
