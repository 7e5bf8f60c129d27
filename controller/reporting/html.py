"""The self-contained HTML report: inline CSS and an inline SVG timeline, no script, no network.

Compliance reviewers open it from a mail or an artefact store, often offline; anything fetched from a
CDN would be blocked or leak that they opened it. Every value is escaped (names come from Azure).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

from controller.reporting.model import EventKind, Report, Severity
from controller.reporting.render import (
    CALENDAR_HEAD,
    CLUSTER_HEAD,
    FINDING_HEAD,
    WORKSPACE_HEAD,
    calendar_rows,
    cluster_rows,
    day,
    finding_rows,
    headline,
    workspace_rows,
)

KIND_COLOUR = {
    EventKind.KEY_EXPIRES: "#c0392b",
    EventKind.CAPACITY_LOCK_ENDS: "#2e86c1",
    EventKind.LINK_BUDGET_FREES: "#28b463",
    EventKind.DEFERRED_POSSIBLE: "#8e44ad",
    EventKind.NAME_RELEASED: "#7f8c8d",
}
SEVERITY_CLASS = {Severity.CRITICAL: "crit", Severity.WARNING: "warn", Severity.INFO: "info"}
# nothing may load from anywhere: the report is self-contained by construction, not by care
_CSP = "default-src 'none'; style-src 'unsafe-inline'"
TIMELINE_MAX_ROWS = 60  # beyond this the table carries the rest; a taller chart is not "at a glance"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.sub{color:#666;font-size:13px} .cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:22px} .card span{font-size:12px;color:#555}
table{border-collapse:collapse;font-size:13px;width:100%} th,td{border:1px solid #e2e2e2;padding:4px 8px;
text-align:left;vertical-align:top} th{background:#f5f5f5}
tr.crit td:first-child{background:#f8d7da;font-weight:bold} tr.warn td:first-child{background:#fff3cd}
tr.info td:first-child{background:#e8f4fd} .legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
svg text{font-family:inherit}
"""


def _table(head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    if not rows:
        return "<p>None.</p>"
    cls = classes or [""] * len(rows)
    body = "".join(
        f'<tr class="{c}">' + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
        for row, c in zip(rows, cls, strict=True)
    )
    return ("<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{body}</tbody></table>")


def _ticks(start: datetime, end: datetime) -> list[datetime]:
    """Week marks for spans up to ~4 months, month starts beyond."""
    span = end - start
    if span <= timedelta(days=120):
        first = (start + timedelta(days=(7 - start.weekday()) % 7)).replace(hour=0, minute=0, second=0,
                                                                               microsecond=0)
        weeks = (first + timedelta(weeks=i) for i in range(span.days // 7 + 2))
        return [w for w in weeks if w <= end]
    out = []
    month = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while month <= end:
        month = (month + timedelta(days=32)).replace(day=1)
        if month <= end:
            out.append(month)
    return out


def timeline_svg(report: Report) -> str:
    """One row per dated event: label on the left, a bar from today to the event's date."""
    events = report.calendar[:TIMELINE_MAX_ROWS]
    now = report.generated_at
    if not events:
        return ('<svg id="timeline" role="img" width="600" height="40">'
                '<text x="8" y="24">No dated events ahead.</text></svg>')
    end = max(max(e.date for e in events), now + timedelta(days=30)) + timedelta(days=2)
    label_w, chart_w, row_h, top = 300, 620, 22, 30
    width, height = label_w + chart_w + 90, top + row_h * len(events) + 10
    total = (end - now).total_seconds()

    def x(when: datetime) -> float:
        return label_w + chart_w * max(0.0, (when - now).total_seconds()) / total

    parts = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" aria-label="Calendar timeline">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>']
    for tick in _ticks(now, end):
        if tick < now + timedelta(days=2):
            continue  # would print over the "today" mark
        tx = x(tick)
        parts.append(f'<line x1="{tx:.1f}" y1="{top - 6}" x2="{tx:.1f}" y2="{height - 6}" stroke="#eee"/>'
                     f'<text x="{tx:.1f}" y="{top - 10}" font-size="10" fill="#777" text-anchor="middle">'
                     f"{tick.strftime('%d %b')}</text>")
    parts.append(f'<line x1="{label_w}" y1="{top - 6}" x2="{label_w}" y2="{height - 6}" stroke="#333"/>'
                 f'<text x="{label_w}" y="{top - 18}" font-size="10" fill="#333" '
                 'text-anchor="middle">today</text>')
    for i, e in enumerate(events):
        y = top + i * row_h + row_h / 2
        colour = KIND_COLOUR[e.kind]
        label = escape(f"{e.subject}: {e.kind}")
        ex = x(e.date)
        parts.append(
            f'<g class="event"><title>{escape(day(e.date))} {escape(e.description)}</title>'
            f'<text x="{label_w - 8}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{label}</text>'
            f'<line x1="{label_w}" y1="{y:.1f}" x2="{ex:.1f}" y2="{y:.1f}" stroke="{colour}" '
            f'stroke-width="3" stroke-opacity="0.35"/>'
            f'<circle cx="{ex:.1f}" cy="{y:.1f}" r="5" fill="{colour}"/>'
            f'<text x="{ex + 9:.1f}" y="{y + 4:.1f}" font-size="11" fill="#333">'
            f"{escape(day(e.date))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    return '<p class="legend">' + "".join(
        f'<span><i style="background:{c}"></i>{escape(str(k))}</span>' for k, c in KIND_COLOUR.items()
    ) + "</p>"


def to_html(report: Report) -> str:
    c = report.counts
    expiry = f"{c.days_to_nearest_key_expiry:g}" if c.days_to_nearest_key_expiry is not None else "none"
    cards = [
        (f"{c.workspaces_cmk_protected}/{c.workspaces}", "workspaces CMK-protected"),
        (str(c.workspaces_expected_not_protected), "expected on CMK but not"),
        (str(c.critical), "critical findings"),
        (str(c.warning), "warnings"),
        (expiry, "days to nearest key expiry"),
    ]
    more = len(report.calendar) - TIMELINE_MAX_ROWS
    note = f"<p>{more} more events in the table below.</p>" if more > 0 else ""
    warnings = "".join(f"<li>{escape(w)}</li>" for w in report.observe_warnings)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>Encryption coverage {escape(day(report.generated_at))}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>Encryption coverage report</h1><p class=\"sub\">Generated "
        f"{escape(report.generated_at.strftime('%Y-%m-%d %H:%M UTC'))}, limits profile "
        f"{escape(report.limits_profile)}, key expiry warning {report.key_expiry_warning_days} days.</p>"
        f"<p>{escape(headline(report))}</p>"
        '<div class="cards">' + "".join(f'<div class="card"><b>{escape(v)}</b><span>{escape(t)}</span></div>'
                                        for v, t in cards) + "</div>"
        '<section id="findings"><h2>Findings</h2>'
        + _table(FINDING_HEAD, finding_rows(report), [SEVERITY_CLASS[f.severity] for f in report.findings])
        + '</section><section id="calendar"><h2>Calendar</h2>' + _legend() + timeline_svg(report) + note
        + _table(CALENDAR_HEAD, calendar_rows(report))
        + '</section><section id="clusters"><h2>Clusters</h2>' + _table(CLUSTER_HEAD, cluster_rows(report))
        + '</section><section id="workspaces"><h2>Workspaces</h2>'
        + _table(WORKSPACE_HEAD, workspace_rows(report)) + "</section>"
        + (f"<section><h2>Observation warnings</h2><ul>{warnings}</ul></section>" if warnings else "")
        + "</body></html>\n"
    )
