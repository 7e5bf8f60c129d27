"""The `cmkctl` typer app and the one place where errors become messages and exit codes.

Adding a command: write `controller/cli/<name>_cmd.py` with `def register(app: typer.Typer) -> None`
and list the module in COMMAND_MODULES below. Modules in the list that do not exist yet are skipped,
so the list can name commands that other work will add.

Error contract (main): a CmkError prints its message on stderr and exits with its exit_code; any
other exception prints one "internal error" line (exit 1). A traceback is shown only with
CMKCTL_DEBUG=1, never by default.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated

import typer

from controller import __version__
from controller.errors import CmkError

COMMAND_MODULES = (
    "controller.cli.validate_cmd",
    "controller.cli.schema_cmd",
    "controller.cli.emulator_cmd",
    "controller.cli.plan_cmd",
    "controller.cli.show_cmd",
    "controller.cli.apply_cmd",
    "controller.cli.drift_cmd",
    "controller.cli.controller_cmd",
    "controller.cli.report_cmd",
    "controller.cli.explain_cmd",
    "controller.cli.export_cmd",
)

app = typer.Typer(
    name="cmkctl",
    help="Keep Log Analytics dedicated clusters with customer-managed keys as declared in git.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},  # -h on every command, as users expect
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cmkctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Plan and apply dedicated clusters, CMK keys, workspace links and BYOS from YAML specs."""


def _register_all() -> None:
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue  # not written yet
        module = importlib.import_module(name)
        module.register(app)


_register_all()


def _debug() -> bool:
    return os.environ.get("CMKCTL_DEBUG", "") not in ("", "0", "false")


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: run the app, map every outcome to a message and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    _emulator_note(args)
    try:
        # standalone mode: typer prints usage errors and --help itself and ends with SystemExit
        app(args=args, prog_name="cmkctl", standalone_mode=True)
    except SystemExit as done:
        return _exit_code(done.code)
    except KeyboardInterrupt:
        print("cmkctl: interrupted", file=sys.stderr)
        return 130
    except CmkError as err:
        if _debug():
            traceback.print_exc()
        print(str(err) or type(err).__name__, file=sys.stderr)
        return err.exit_code
    except Exception as err:
        if _debug():
            traceback.print_exc()
        first = (str(err).splitlines() or [""])[0][:300]
        print(
            f"cmkctl: internal error ({type(err).__name__}: {first}); "
            "rerun with CMKCTL_DEBUG=1 for details and report it",
            file=sys.stderr,
        )
        return 1
    return 0


_AZURE_COMMANDS = frozenset({"plan", "apply", "drift", "report", "controller"})


def _emulator_note(args: Sequence[str]) -> None:
    """One stderr line when a command talks to the emulator: its output is not about Azure."""
    target = os.environ.get("CMKCTL_EMULATOR", "").strip()
    if target and args and args[0] in _AZURE_COMMANDS and not {"--help", "-h"} & set(args):
        print(f"cmkctl: talking to the Azure emulator at {target} (CMKCTL_EMULATOR), not to Azure",
              file=sys.stderr)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message") convention
    return 1
