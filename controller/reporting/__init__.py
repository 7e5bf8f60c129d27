"""Encryption-coverage and calendar report: a pure model plus renderers.

    report = build_report(desired=..., observed=..., history=..., plan=..., now=...)
    to_text(report) / to_markdown(report) / to_json(report) / to_html(report) / report_metrics(report)

No I/O (import-linter `pure-core`): the CLI (controller.cli.report_cmd) and the controller gather
the inputs and write the outputs.
"""

from controller.reporting.build import build_report
from controller.reporting.html import to_html
from controller.reporting.metrics import report_metrics
from controller.reporting.model import Report
from controller.reporting.render import to_json, to_markdown, to_text

__all__ = ["Report", "build_report", "report_metrics", "to_html", "to_json", "to_markdown", "to_text"]
