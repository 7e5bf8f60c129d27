"""`cmkctl report`: which data is protected by our key, since when, and what could break it.

    cmkctl report -f PATH... [--format text|markdown|json|html] [--out FILE] [--state DIR]

Reads the same inputs as `cmkctl plan` (spec, live state, local journal + Activity Log) and plans on
them, so the report's calendar shows the deferred changes' dates exactly as the plan has them. Exit
codes: 0 report written, 1 error (one line, never a traceback). Findings never change the exit code:
the report is read by people; CI gates belong to `plan --detailed-exitcode`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from controller.azure.clients import AzureClients
from controller.cli.cloud_option import CloudOption, selected_cloud
from controller.cli.guard import guarded, quiet_sdk_logging
from controller.errors import CmkError
from controller.model import clouds
from controller.reporting import Report, build_report, to_html, to_json, to_markdown, to_text
from controller.service.snapshot import snapshot

EXIT_OK = 0
EXIT_ERROR = 1


class Format(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"
    HTML = "html"


RENDERERS = {Format.TEXT: to_text, Format.MARKDOWN: to_markdown, Format.JSON: to_json, Format.HTML: to_html}


def gather_report(
    paths: Sequence[str],
    *,
    state: str | None = None,
    clients: AzureClients | None = None,
    now: datetime | None = None,
    cloud: clouds.Cloud | None = None,
) -> Report:
    """Load, observe, merge history, plan, report (the controller can call this for /report too)."""
    snap = snapshot(paths, state=state, clients=clients, now=now, cloud=cloud)
    return build_report(
        desired=snap.desired, observed=snap.observed, history=snap.history, plan=snap.plan, now=snap.now
    )


def run(
    paths: Sequence[str],
    *,
    out: str | None = None,
    fmt: Format = Format.TEXT,
    state: str | None = None,
    clients: AzureClients | None = None,
    cloud: str | None = None,
) -> int:
    """The command body; returns the exit code and never lets a traceback reach the user."""
    quiet_sdk_logging()

    def body() -> int:
        report = gather_report(paths, state=state, clients=clients, cloud=selected_cloud(cloud))
        text = RENDERERS[fmt](report)
        for warning in report.observe_warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if not out:
            sys.stdout.write(text)
            sys.stdout.flush()
            return EXIT_OK
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as err:  # --out into a missing directory, a full disk...
            raise CmkError(f"cannot write the report: {err.strerror or err}") from None
        print(f"report written to {out}", file=sys.stderr)
        return EXIT_OK

    return guarded(body)


def report_command(
    files: Annotated[
        list[str], typer.Option("-f", "--file", metavar="PATH", help="Spec file or directory (repeatable)")
    ],
    fmt: Annotated[Format, typer.Option("--format", help="text, markdown, json or html")] = Format.TEXT,
    out: Annotated[
        str | None, typer.Option("--out", metavar="FILE", help="Write the report here instead of stdout")
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            metavar="STATE",
            help="Journal and lock: DIR or azureblob://ACCOUNT/CONTAINER[/BLOB] "
            "(default $CMKCTL_STATE, else .cmkctl)",
        ),
    ] = None,
    cloud: CloudOption = None,
) -> None:
    """Encryption coverage: which workspaces are on the key since when, what could break it, and when."""
    raise typer.Exit(run(files, out=out, fmt=fmt, state=state, cloud=cloud))


def register(app: typer.Typer) -> None:
    """Add `report` to the cmkctl app (called from controller.cli.app)."""
    app.command("report")(report_command)
