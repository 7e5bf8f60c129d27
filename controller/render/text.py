"""Terraform-like text: changes with + ~ - symbols in execution order, the summary line, then what
waits (with dates), what is blocked (with reasons and remedies), warnings and drift.

Plain text only (it goes to terminals, CI logs and files alike); no colour codes. Fields are named as
the spec's YAML names them (`doubleEncryption`) and values are written as YAML writes them (`true`,
`null`); step ids and the observed-state hash stay in the JSON artefact. A section with nothing in it
is left out.
"""

from __future__ import annotations

from controller.planning.plan import Plan, Severity
from controller.render.common import (
    after_text,
    detail,
    drift_value,
    field_name,
    glyph,
    left_out_line,
    numbered,
    shown_drift,
    summary_line,
    when,
)
from controller.render.json_plan import redact


def to_text(plan: Plan, *, verbose: bool = True) -> str:
    out: list[str] = []
    names = numbered(plan)
    drift = shown_drift(plan)
    if not plan.changes and not plan.deferred and not plan.blocked:
        if plan.targeting is not None:
            out.append("No changes for the targeted resources.")
        else:
            out.append("No changes. The live estate matches the spec." if not drift else
                       "No changes to make. Differences are listed below.")
    else:
        if plan.changes:
            out.append("cmkctl will perform these actions, in this order:")
            out.append("")
        for n, ch in enumerate(plan.changes, 1):
            flag = "  [DESTRUCTIVE]" if ch.destructive else ""
            out.append(f"  {glyph(ch.action)} {n:>3}. {ch.action.value:<11} {ch.address}{flag}")
            if verbose:
                out.append(f"         {detail(ch)}")
            if ch.depends_on:
                out.append(f"         after: {after_text(ch.depends_on, names)}")
            for note in ch.warnings:
                out.append(f"         ! {note}")
        if plan.changes:
            out.append("")
        out.append(summary_line(plan))
    targeted = left_out_line(plan)
    if targeted is not None:
        out.append(targeted)
    if plan.deferred:
        out.append("")
        out.append("Deferred (possible later; not a failure):")
        for d in plan.deferred:
            wait = f"not before {when(d.not_before)}" if d.not_before else "after the steps it waits on"
            out.append(f"  {glyph(d.action)} {d.action.value:<11} {d.address}  [{d.rule}] {wait}")
            out.append(f"         {d.reason}")
            if d.depends_on and not d.not_before:
                out.append(f"         after: {after_text(d.depends_on, names)}")
    if plan.blocked:
        out.append("")
        out.append("Blocked (cannot run as declared; you must act):")
        for b in plan.blocked:
            rule = f"[{b.rule}] " if b.rule else ""
            out.append(f"  {glyph(b.action)} {b.action.value:<11} {b.address}  {rule}{b.reason}")
            out.append(f"         remedy: {b.remedy}")
    if plan.warnings:
        out.append("")
        out.append("Warnings:")
        for w in plan.warnings:
            rule = f" [{w.rule}]" if w.rule else ""
            label = "CRITICAL" if w.severity == Severity.CRITICAL else w.severity.value
            out.append(f"  {label}{rule}: {w.message}")
    if drift:
        out.append("")
        out.append("Drift (live differs from the spec):")
        for dr in drift:
            label = "CRITICAL " if dr.severity == Severity.CRITICAL else ""
            kept = (
                " (changed outside cmkctl; reported, not reverted: settings.drift report)" if dr.held else ""
            )
            out.append(
                f"  {label}{dr.address} {field_name(dr.field)}: live {drift_value(dr.field, dr.live)} "
                f"-> spec {drift_value(dr.field, dr.desired)}{kept}"
            )
    out.append("")
    out.append(f"Limits profile: {plan.limits_profile}.")
    return redact("\n".join(out)) + "\n"
