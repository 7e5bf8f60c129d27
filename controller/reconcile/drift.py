"""Drift: where the live state differs from the spec, per resource and field, from a plan.

Why from the plan: the planner already compares every managed field under the rules (it records a
`Drift` for each difference, including ones no plan may fix, e.g. location C10 or double encryption
C9); a change without a field-level drift entry (a missing link, a missing cluster) is reported by
its action. `cmkctl drift` and the controller use this one definition.
"""

from __future__ import annotations

from typing import Any

from controller.planning.plan import Plan


def drift_items(plan: Plan, *, cause: str = "") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for d in plan.drift:
        items.append(
            {
                "address": d.address,
                "resourceId": d.resource_id,
                "field": d.field,
                "desired": d.desired,
                "live": d.live,
                "severity": str(d.severity),
                "rule": d.rule,
                "cause": cause,
                "held": d.held,
            }
        )
    with_fields = {d.address for d in plan.drift}
    for c in plan.changes:
        if c.address not in with_fields:
            items.append(
                {
                    "address": c.address,
                    "resourceId": c.resource_id,
                    "field": str(c.action),
                    "desired": c.after,
                    "live": c.before,
                    "severity": "warning",
                    "rule": None,
                    "cause": cause,
                    "held": False,
                    "reason": c.reason,
                }
            )
    return items


def drifted_resources(items: list[dict[str, Any]]) -> int:
    return len({i["address"] for i in items})


HELD_NOTE = "changed outside cmkctl; reported, not reverted (settings.drift: report)"


def render_text(items: list[dict[str, Any]], outside: list[dict[str, Any]] | None = None) -> str:
    """Drift against the spec, then every field changed outside cmkctl since the last apply."""
    lines = (
        [f"Drift: {drifted_resources(items)} resource(s) differ from the spec."]
        if items
        else ["No drift: Azure matches the spec."]
    )
    for i in items:
        rule = f" (rule {i['rule']})" if i.get("rule") else ""
        held = f" [{HELD_NOTE}]" if i.get("held") else ""
        lines.append(
            f"  ~ {i['address']} {i['field']}: spec {_show(i['desired'])}, live {_show(i['live'])}"
            f"{rule}{held}"
        )
    if outside:
        lines.append("")
        lines.append("Changed outside cmkctl since the last apply:")
        for o in outside:
            lines.append(
                f"  ~ {o['address']} {o['path']}: {_show(o['before'])} -> {_show(o['after'])}"
                f" (applied revision {str(o['appliedRevision'])[:19]})"
            )
    return "\n".join(lines) + "\n"


def _show(value: Any) -> str:
    return "(none)" if value is None else str(value)
