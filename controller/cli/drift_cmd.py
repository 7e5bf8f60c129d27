"""`cmkctl drift`: one controller-style drift check, for cron jobs and CI.

    cmkctl drift -f PATH... [--format text|json|markdown] [--state DIR]

Exit codes: 0 = Azure matches the spec, 2 = drift found, 1 = error (never a traceback). Nothing is
changed. Drift is every field where live differs from the spec, plus resources the spec wants that
are missing (the same definition the controller logs and serves at /status); a difference made
outside cmkctl that `settings.drift: report` leaves in place is marked `held`. Below it, every field
of a declared resource that changed since the last apply (from the journal), managed by the spec or
not: `changedOutside` in JSON. `--format markdown` writes it as a PR or issue comment, in the style of
`cmkctl plan --format markdown`.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer

from controller.azure.clients import AzureClients
from controller.cli.cloud_option import CloudOption, selected_cloud
from controller.cli.guard import guarded, quiet_sdk_logging
from controller.errors import CmkError
from controller.reconcile.drift import drift_items, drifted_resources, render_markdown, render_text
from controller.service.snapshot import snapshot

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_DRIFT = 2


class DriftFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


def run(
    files: list[str],
    *,
    fmt: DriftFormat = DriftFormat.TEXT,
    state: str | None = None,
    clients: AzureClients | None = None,
    cloud: str | None = None,
) -> int:
    def body() -> int:
        if not files:
            raise CmkError("give spec files or directories with -f PATH")
        quiet_sdk_logging()
        snap = snapshot(files, state=state, clients=clients, cloud=selected_cloud(cloud))
        plan, observed = snap.plan, snap.observed
        for warning in observed.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        items = drift_items(plan)
        outside = [o.to_json() for o in snap.outside]
        if fmt is DriftFormat.JSON:
            body = {"drifted": drifted_resources(items), "drift": items, "changedOutside": outside}
            print(json.dumps(body, indent=2, default=str))
        elif fmt is DriftFormat.MARKDOWN:
            sys.stdout.write(render_markdown(items, outside))
        else:
            sys.stdout.write(render_text(items, outside))
        return EXIT_DRIFT if items else EXIT_OK

    return guarded(body)


def drift_command(
    files: Annotated[
        list[str] | None, typer.Option("-f", "--file", metavar="PATH", help="Spec file or directory")
    ] = None,
    fmt: Annotated[DriftFormat, typer.Option("--format", help="text, json or markdown")] = DriftFormat.TEXT,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            metavar="STATE",
            help="Journal: DIR or azureblob://ACCOUNT/CONTAINER[/BLOB] (default $CMKCTL_STATE, else .cmkctl)",
        ),
    ] = None,
    cloud: CloudOption = None,
) -> None:
    """Report where Azure differs from the spec (exit 2 when it does); changes nothing."""
    raise typer.Exit(run(files or [], fmt=fmt, state=state, cloud=cloud))


def register(app: typer.Typer) -> None:
    """Add `drift` to the cmkctl app (listed in controller.cli.app.COMMAND_MODULES)."""
    app.command("drift")(drift_command)
