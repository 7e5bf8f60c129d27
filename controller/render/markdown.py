"""Markdown for PR comments: the summary and anything needing attention first, details collapsed,
and the whole comment kept under GitHub's 65,536-character limit (rows are truncated with a note
pointing at the JSON artefact, never cut mid-row).
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

MARKDOWN_LIMIT = 65_000


def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _section(title: str, header: str, rows: list[str], budget: int) -> tuple[str, int]:
    """A <details> table with as many rows as fit in `budget` characters."""
    head = f"<details><summary>{title} ({len(rows)})</summary>\n\n{header}\n"
    tail = "\n</details>\n"
    body: list[str] = []
    used = len(head) + len(tail) + 200
    for i, row in enumerate(rows):
        if used + len(row) + 1 > budget:
            body.append(f"\n_… {len(rows) - i} more rows not shown (limit of a PR comment); "
                        "see the JSON plan artefact._")
            break
        body.append(row)
        used += len(row) + 1
    text = head + "\n".join(body) + tail
    return text, len(text)


def to_markdown(plan: Plan, *, limit: int = MARKDOWN_LIMIT) -> str:
    s = plan.summary
    names = numbered(plan)
    drift = shown_drift(plan)
    top: list[str] = [f"### cmkctl plan: {summary_line(plan)[6:]}", ""]
    if not plan.changes and not plan.deferred and not plan.blocked:
        top.append("**No changes.** The live estate matches the spec." if plan.targeting is None
                   else "**No changes** for the targeted resources.")
    targeted = left_out_line(plan, limit=20)
    if targeted is not None:
        top.append(f"> {cell(targeted)}")
    critical = [w for w in plan.warnings if w.severity == Severity.CRITICAL]
    destructive = [c for c in plan.changes if c.destructive]
    if plan.blocked:
        top.append(f"> **{s.blocked} blocked** change(s) need you: see *Blocked* below.")
    for w in critical[:20]:
        top.append(f"> :warning: **{cell(w.rule or w.code)}**: {cell(w.message)}")
    if destructive:
        top.append(f"> **{len(destructive)} destructive** change(s): "
                   + ", ".join(f"`{cell(c.address)}`" for c in destructive[:20]))
    if plan.deferred and plan.next_not_before is not None:
        top.append(f"> Next deferred change becomes possible at {when(plan.next_not_before)}.")
    top.append("")
    text = "\n".join(top) + "\n"

    sections: list[tuple[str, str, list[str]]] = [
        ("Blocked", "| action | address | rule | reason | remedy |\n|---|---|---|---|---|",
         [f"| {b.action.value} | `{cell(b.address)}` | {b.rule or ''} | {cell(b.reason)} | "
          f"{cell(b.remedy)} |"
          for b in plan.blocked]),
        ("Changes", "| # | | action | address | what | after | notes |\n|---|---|---|---|---|---|---|",
         [f"| {n} | {glyph(c.action)} | {c.action.value} | `{cell(c.address)}` | {cell(detail(c))} | "
          f"{cell(after_text(c.depends_on, names, brief=True))} | "
          f"{'**destructive** ' if c.destructive else ''}"
          f"{cell('; '.join(c.warnings))} |" for n, c in enumerate(plan.changes, 1)]),
        ("Deferred", "| action | address | rule | not before | reason |\n|---|---|---|---|---|",
         [f"| {d.action.value} | `{cell(d.address)}` | {d.rule} | {when(d.not_before)} | {cell(d.reason)} |"
          for d in plan.deferred]),
        ("Warnings", "| severity | rule | message |\n|---|---|---|",
         [f"| {w.severity.value} | {w.rule or ''} | {cell(w.message)} |" for w in plan.warnings]),
        ("Drift", "| severity | address | field | live | spec |\n|---|---|---|---|---|",
         [f"| {r.severity.value} | `{cell(r.address)}` | {field_name(r.field)} | "
          f"{cell(drift_value(r.field, r.live))} | {cell(drift_value(r.field, r.desired))}"
          f"{' (changed outside cmkctl: reported, not reverted)' if r.held else ''} |" for r in drift]),
    ]
    footer = f"\n<sub>limits profile {plan.limits_profile}</sub>\n"
    return fit(text, sections, footer, limit)


def fit(text: str, sections: list[tuple[str, str, list[str]]], footer: str, limit: int) -> str:
    """`text`, then each section with rows as a collapsed table (empty ones left out), then `footer`,
    all within `limit` characters; secrets redacted."""
    remaining = limit - len(text) - len(footer)
    present = [sec for sec in sections if sec[2]]
    for i, (title, header, rows) in enumerate(present):
        share = remaining // (len(present) - i)  # what's left, split fairly among what's left
        part, used = _section(title, header, rows, share if i < len(present) - 1 else remaining)
        text += part
        remaining -= used
    return redact(text + footer)
