"""Drift: where the live state differs from the spec, per resource and field, from a plan.

Why from the plan: the planner already compares every managed field under the rules (it records a
`Drift` for each difference, including ones no plan may fix, e.g. location C10 or double encryption
C9); a change without a field-level drift entry (a missing link, a missing cluster) is reported by
its action. `cmkctl drift` and the controller use this one definition.
"""

from __future__ import annotations

import re
from typing import Any

from controller.planning.plan import Plan
from controller.render.common import drift_value, field_name, show
from controller.render.markdown import MARKDOWN_LIMIT, cell, fit


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


def _field(item: dict[str, Any]) -> str:
    return field_name(str(item["field"]))


def _value(item: dict[str, Any], which: str) -> str:
    return drift_value(str(item["field"]), item[which])


def _path(outside: dict[str, Any]) -> str:
    """A changed field's path with ARM ids shortened to their name and the spec's spelling
    (`associated_workspaces./subscriptions/.../workspaces/law2` -> `associatedWorkspaces.law2`); the
    full path and the applied revision are in the JSON report."""
    path = _ARM_ID.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], str(outside["path"]))
    return field_name(path)


_ARM_ID = re.compile(r"/subscriptions/\S+", re.IGNORECASE)


def render_text(items: list[dict[str, Any]], outside: list[dict[str, Any]] | None = None) -> str:
    """Drift against the spec, then every field changed outside cmkctl since the last apply. Fields
    and values as the plan text writes them (the spec's names, YAML values)."""
    lines = (
        [f"Drift: {drifted_resources(items)} resource(s) differ from the spec."]
        if items
        else ["No drift: Azure matches the spec."]
    )
    for i in items:
        rule = f" (rule {i['rule']})" if i.get("rule") else ""
        held = f" [{HELD_NOTE}]" if i.get("held") else ""
        lines.append(
            f"  ~ {i['address']} {_field(i)}: spec {_value(i, 'desired')}, live {_value(i, 'live')}"
            f"{rule}{held}"
        )
    if outside:
        lines.append("")
        lines.append("Changed outside cmkctl since the last apply:")
        for o in outside:
            lines.append(
                f"  ~ {o['address']} {_path(o)}: {show(o['before'])} -> {show(o['after'])}"
            )
    return "\n".join(lines) + "\n"


def render_markdown(
    items: list[dict[str, Any]], outside: list[dict[str, Any]] | None = None, *, limit: int = MARKDOWN_LIMIT
) -> str:
    """The drift report as a PR or issue comment, in the plan's markdown style: the verdict and what
    is critical first, then collapsed tables (left out when empty), under GitHub's comment limit."""
    outside = outside or []
    count = drifted_resources(items)
    title = f"{count} resource(s) differ from the spec" if items else "Azure matches the spec"
    top = [f"### cmkctl drift: {title}", ""]
    for i in [i for i in items if i.get("severity") == "critical"][:20]:
        rule = f"**{cell(i['rule'])}**: " if i.get("rule") else ""
        top.append(f"> :warning: {rule}`{cell(i['address'])}` {cell(_field(i))}: spec "
                   f"{cell(_value(i, 'desired'))}, live {cell(_value(i, 'live'))}")
    held = sum(1 for i in items if i.get("held"))
    if held:
        top.append(f"> {held} difference(s) were made outside cmkctl: reported, not reverted "
                   "(`settings.drift: report`).")
    top.append("")
    sections = [
        ("Drift", "| severity | address | field | spec | live | rule | note |\n|---|---|---|---|---|---|---|",
         [f"| {cell(i['severity'])} | `{cell(i['address'])}` | {cell(_field(i))} | "
          f"{cell(_value(i, 'desired'))} | {cell(_value(i, 'live'))} | {cell(i.get('rule') or '')} | "
          f"{'changed outside cmkctl: reported, not reverted' if i.get('held') else ''} |" for i in items]),
        ("Changed outside cmkctl since the last apply",
         "| address | field | before | after |\n|---|---|---|---|",
         [f"| `{cell(o['address'])}` | {cell(_path(o))} | {cell(show(o['before']))} | "
          f"{cell(show(o['after']))} |" for o in outside]),
    ]
    return fit("\n".join(top) + "\n", sections, "", limit)
