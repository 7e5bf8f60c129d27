"""`cmkctl emulator ...`: run the project's Azure emulator (`python -m emulator ...`).

The product must not import the emulator (import-linter: emulator-independent), so this starts it as
a separate process with the same interpreter and passes every argument through unchanged.

The container image ships without the emulator (an unauthenticated admin API has no place next to
Azure credentials): there, this command says so instead of failing with a Python import error.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import typer

NOT_INSTALLED = (
    "error: the emulator is not available in this installation. The container image leaves it out on"
    " purpose (it serves an unauthenticated admin API); run `cmkctl emulator` from a source checkout"
    " or a `pip install` of cmk-controller instead."
)


def register(app: typer.Typer) -> None:
    app.command(
        "emulator",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(emulator)


def emulator(ctx: typer.Context) -> None:
    """Run the local Azure emulator; arguments go to `python -m emulator` (try `--help`)."""
    if importlib.util.find_spec("emulator") is None:
        print(NOT_INSTALLED, file=sys.stderr)
        raise typer.Exit(1)
    argv = [sys.executable, "-m", "emulator", *ctx.args]
    try:
        code = subprocess.call(argv)  # noqa: S603 - our own interpreter and module, args passed as a list
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)
