"""Text, markdown and JSON forms of the report; all read only the `Report` value.

Text is for a terminal, markdown for a PR comment or a compliance ticket, JSON for tools (and the
controller's `/report`). Dates are days (UTC): what a reviewer plans with.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from controller.reporting.model import ClusterReport, Report, WorkspaceReport


def day(value: datetime | None, empty: str = "-") -> str:
    return value.strftime("%Y-%m-%d") if value is not None else empty


def yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def short(resource_id: str | None) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1] if resource_id else "-"


def key_text(c: ClusterReport) -> str:
    if c.key is None:
        return "Microsoft-managed"
    mode = "pinned" if c.key.pinned else "versionless"
    return f"{c.key.vault_uri.removeprefix('https://').rstrip('/')}/keys/{c.key.name} ({mode})"


def version_text(c: ClusterReport) -> str:
    k = c.key
    if k is None:
        return "-"
    if not k.readable:
        return f"{k.version_in_force or '?'} ({'unreadable' if k.read else 'not read'})"
    state = "missing" if not k.exists else ("enabled" if k.enabled else "DISABLED")
    return f"{k.version_in_force or '?'} {state}, expires {day(k.expires, 'never')}"


def vault_text(c: ClusterReport) -> str:
    v = c.vault
    if v is None:
        return "-"
    return f"recoverable {yes_no(v.recoverable)}, access {yes_no(v.access_granted)}"


def byos_text(w: WorkspaceReport) -> str:
    return ", ".join(f"{t}: {short(sid)}" for t, sid in sorted(w.byos.items())) or "-"


def protection_text(w: WorkspaceReport) -> str:
    if w.cmk_protected:
        return f"CMK since {day(w.cmk_since, 'unknown date')}"
    return "NOT protected" if w.expected_cluster else "not on CMK"


def headline(report: Report) -> str:
    c = report.counts
    expiry = (f"{c.days_to_nearest_key_expiry:g} days to the nearest key expiry"
              if c.days_to_nearest_key_expiry is not None else "no key expiry set")
    return (f"{c.workspaces_cmk_protected} of {c.workspaces} workspaces CMK-protected, "
            f"{c.workspaces_expected_not_protected} expected but not; {c.critical} critical, {c.warning} "
            f"warning, {c.info} info findings; {expiry}.")


def cluster_rows(report: Report) -> list[list[str]]:
    return [
        [c.name, c.provisioning_state or ("missing" if not c.exists else "?"), c.identity_type or "-",
         key_text(c), version_text(c), vault_text(c),
         f"{c.capacity if c.capacity is not None else '-'} (decrease {day(c.capacity_decrease_from, 'now')})",
         f"{c.linked_workspaces}/{c.workspace_limit}"]
        for c in report.clusters
    ]


CLUSTER_HEAD = ["cluster", "state", "identity", "key", "version in force", "vault",
                "capacity GB/day", "workspaces"]
WORKSPACE_HEAD = ["workspace", "cluster", "linked since", "protection", "key version", "BYOS",
                  "link ops (30 d)", "next op frees"]
CALENDAR_HEAD = ["date", "event", "subject", "what", "rule"]
FINDING_HEAD = ["severity", "subject", "finding", "rule"]


def workspace_rows(report: Report) -> list[list[str]]:
    return [
        [w.name, short(w.linked_cluster), day(w.linked_since), protection_text(w), w.key_version or "-",
         byos_text(w), f"{w.link_ops_used}/{w.link_ops_limit}", day(w.next_link_op_frees)]
        for w in report.workspaces
    ]


def calendar_rows(report: Report) -> list[list[str]]:
    return [[day(e.date), str(e.kind), e.subject, e.description, e.rule or ""] for e in report.calendar]


def finding_rows(report: Report) -> list[list[str]]:
    return [[str(f.severity).upper(), f.subject, f.message, f.rule or ""] for f in report.findings]


def _table(head: list[str], rows: Iterable[list[str]]) -> list[str]:
    rows = list(rows)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def to_text(report: Report) -> str:
    out = [f"Encryption coverage report, {report.generated_at.strftime('%Y-%m-%dT%H:%MZ')} "
           f"(limits {report.limits_profile})", headline(report), ""]
    sections = [
        ("Findings", FINDING_HEAD, finding_rows(report)),
        ("Calendar", CALENDAR_HEAD, calendar_rows(report)),
        ("Clusters", CLUSTER_HEAD, cluster_rows(report)),
        ("Workspaces", WORKSPACE_HEAD, workspace_rows(report)),
    ]
    for title, head, rows in sections:
        out.append(f"{title}:")
        if rows:
            out.extend("  " + line for line in _table(head, rows))
        else:
            out.append("  none")
        out.append("")
    out.extend(f"warning: {w}" for w in report.observe_warnings)
    return "\n".join(out).rstrip() + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return ["_none_"]
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows)]


def to_markdown(report: Report) -> str:
    out = [f"## Encryption coverage, {day(report.generated_at)}", "", f"**{headline(report)}**", ""]
    for title, head, rows in (
        ("Findings", FINDING_HEAD, finding_rows(report)),
        ("Calendar", CALENDAR_HEAD, calendar_rows(report)),
        ("Clusters", CLUSTER_HEAD, cluster_rows(report)),
        ("Workspaces", WORKSPACE_HEAD, workspace_rows(report)),
    ):
        out += [f"### {title}", "", *_md_table(head, rows), ""]
    return "\n".join(out).rstrip() + "\n"


def to_json(report: Report) -> str:
    return report.model_dump_json(indent=2) + "\n"
