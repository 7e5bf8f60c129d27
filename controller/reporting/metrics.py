"""The report's key counts as metric samples, for the controller's /metrics.

Names are stable and prefixed; a missing value (no key expiry set) is omitted rather than faked,
so an alert on "days to expiry < 14" never fires on a cluster whose key does not expire.
"""

from __future__ import annotations

from controller.reporting.model import Report


def report_metrics(report: Report) -> dict[str, float]:
    c = report.counts
    out = {
        "cmk_workspaces_not_protected": float(c.workspaces_expected_not_protected),
        "cmk_workspaces_protected": float(c.workspaces_cmk_protected),
        "cmk_report_findings_critical": float(c.critical),
        "cmk_report_findings_warning": float(c.warning),
        "cmk_calendar_events": float(len(report.calendar)),
    }
    if c.days_to_nearest_key_expiry is not None:
        out["cmk_key_expiry_days_min"] = float(c.days_to_nearest_key_expiry)
    return out
