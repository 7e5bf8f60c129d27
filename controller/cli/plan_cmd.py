"""`cmkctl plan`: load the spec, observe Azure, plan against the rules and calendar, render.

    cmkctl plan -f PATH... [--out FILE] [--format text|markdown|json] [--detailed-exitcode] [--state DIR]
                [--target ADDRESS]...

The JSON plan is the artefact (`--out` always writes JSON, whatever `--format` prints). Exit codes:
1 on any error (never a traceback); with --detailed-exitcode 0 = in sync, 2 = changes or deferred
work (so CI can tell "in sync" from "needs apply"), 3 = something is blocked (apply cannot reach the
spec as written: CI should fail), otherwise 0 on success.

`--target cluster.NAME` / `--target workspace.NAME` (repeatable), as Terraform's -target: the plan
keeps those resources and the steps they depend on, and names every change it left out
(controller.planning.targeting). A plan saved with --target applies only those changes.

`now` is Azure's clock (the `Date` of Resource Manager's answers), so the 30-day and 14-day windows
are counted as Azure counts them, unless CMKCTL_NOW (ISO-8601) is set: a what-if knob ("plan as of").
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from controller.azure.clients import AzureClients
from controller.cli.cloud_option import CloudOption, selected_cloud
from controller.cli.guard import guarded, quiet_sdk_logging
from controller.planning.plan import Plan
from controller.planning.targeting import target_plan
from controller.render import MARKDOWN_LIMIT, to_json, to_markdown, to_text
from controller.service.snapshot import snapshot

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_BLOCKED = 3


TargetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        metavar="ADDRESS",
        help="Plan only this resource (cluster.NAME, workspace.NAME) and what it depends on (repeatable)",
    ),
]


class Format(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


def plan_json(plan: Plan) -> str:
    """The artefact: versioned JSON (schema in specs/), secrets redacted by the renderer."""
    text = to_json(plan)
    return text if text.endswith("\n") else text + "\n"


def render(plan: Plan, fmt: Format) -> str:
    """Text and markdown are rendered from the same Plan the JSON artefact holds (controller.render)."""
    if fmt is Format.JSON:
        return plan_json(plan)
    out = to_markdown(plan, limit=MARKDOWN_LIMIT) if fmt is Format.MARKDOWN else to_text(plan)
    return out if out.endswith("\n") else out + "\n"


def exit_code(plan: Plan, detailed: bool) -> int:
    """Blocked wins over changes: a plan that can never fully apply must fail a CI gate, even when
    part of it could run."""
    if not detailed:
        return EXIT_OK
    if plan.blocked:
        return EXIT_BLOCKED
    return EXIT_CHANGES if plan.has_work else EXIT_OK


def run(
    paths: Sequence[str],
    *,
    out: str | None = None,
    fmt: Format = Format.TEXT,
    detailed_exitcode: bool = False,
    state: str | None = None,
    clients: AzureClients | None = None,
    cloud: str | None = None,
    correct_drift: bool = False,
    targets: Sequence[str] = (),
) -> int:
    """The command body; returns the exit code and never lets a traceback reach the user."""
    quiet_sdk_logging()

    def body() -> int:
        snap = snapshot(
            paths, state=state, clients=clients, cloud=selected_cloud(cloud), correct_drift=correct_drift
        )
        plan, observed = snap.artefact(paths), snap.observed
        if targets:
            plan = target_plan(plan, targets, desired=snap.desired)
        if fmt is Format.JSON:  # text and markdown show them in the plan; JSON keeps stdout clean
            for warning in observed.warnings:
                print(f"warning: {warning}", file=sys.stderr)
        if out:
            Path(out).write_text(plan_json(plan), encoding="utf-8")
        sys.stdout.write(render(plan, fmt))
        sys.stdout.flush()
        return exit_code(plan, detailed_exitcode)

    return guarded(body)


def plan_command(
    files: Annotated[
        list[str], typer.Option("-f", "--file", metavar="PATH", help="Spec file or directory (repeatable)")
    ],
    out: Annotated[
        str | None, typer.Option("--out", metavar="FILE", help="Write the JSON plan artefact here")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="What to print")] = Format.TEXT,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            help="Exit 0 in sync, 1 error, 2 changes or deferred work, 3 something blocked",
        ),
    ] = False,
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
    correct_drift: Annotated[
        bool,
        typer.Option(
            "--correct-drift",
            help="Also plan reverting what was changed outside cmkctl since the last apply "
            "(settings.drift: report otherwise only reports it)",
        ),
    ] = False,
    target: TargetOption = None,
) -> None:
    """Show what apply would do now, what must wait (until when) and what can never run as declared.

    Exit codes with --detailed-exitcode: 0 in sync, 1 error, 2 changes or deferred work,
    3 something is blocked (fix the spec or Azure first; CI should fail).
    """
    raise typer.Exit(
        run(
            files,
            out=out,
            fmt=fmt,
            detailed_exitcode=detailed_exitcode,
            state=state,
            cloud=cloud,
            correct_drift=correct_drift,
            targets=target or (),
        )
    )


def register(app: typer.Typer) -> None:
    """Add `plan` to the cmkctl app (called from controller.cli.app)."""
    app.command("plan")(plan_command)
