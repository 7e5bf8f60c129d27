"""`cmkctl show PLANFILE`: render a saved plan (`cmkctl plan --out`) for review, without Azure.

    cmkctl show PLANFILE [--format text|markdown|json]

The same renderers as `cmkctl plan`, so a plan reviewed in CI (markdown) reads like the one printed
at plan time. Exit 1 when the file is missing or not a plan.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from controller.cli.guard import guarded
from controller.cli.plan_cmd import Format, render
from controller.service.saved_plan import load_plan_file


def run(planfile: str, *, fmt: Format = Format.TEXT) -> int:
    """Print the saved plan in `fmt`; 0, or 1 with a message (never a traceback)."""

    def body() -> int:
        sys.stdout.write(render(load_plan_file(planfile), fmt))
        sys.stdout.flush()
        return 0

    return guarded(body)


def show_command(
    planfile: Annotated[str, typer.Argument(metavar="PLANFILE", help="A saved plan (cmkctl plan --out)")],
    fmt: Annotated[Format, typer.Option("--format", help="What to print")] = Format.TEXT,
) -> None:
    """Render a saved plan file for review (text, markdown for a PR comment, or its JSON)."""
    raise typer.Exit(run(planfile, fmt=fmt))


def register(app: typer.Typer) -> None:
    """Add `show` to the cmkctl app (called from controller.cli.app)."""
    app.command("show")(show_command)
