"""`cmkctl emulator ...`: run the project's Azure emulator (`python -m emulator ...`).

The product must not import the emulator (import-linter: emulator-independent), so this starts it as
a separate process with the same interpreter and passes every argument through unchanged.
"""

from __future__ import annotations

import subprocess
import sys

import typer


def register(app: typer.Typer) -> None:
    app.command(
        "emulator",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(emulator)


def emulator(ctx: typer.Context) -> None:
    """Run the local Azure emulator; arguments go to `python -m emulator` (try `--help`)."""
    argv = [sys.executable, "-m", "emulator", *ctx.args]
    try:
        code = subprocess.call(argv)  # noqa: S603 - our own interpreter and module, args passed as a list
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)
