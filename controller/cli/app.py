"""The `cmkctl` typer app and the one place where errors become messages and exit codes.

Adding a command: write `controller/cli/<name>_cmd.py` with `def register(app: typer.Typer) -> None`
and list the module in COMMAND_MODULES below. Modules in the list that do not exist yet are skipped,
so the list can name commands that other work will add.

Help: every command's --help ends with the environment variables that affect it (COMMAND_ENVIRONMENT),
and arguments read as their placeholder (`PATH...`, `[PLANFILE]`), not as a Python type.
Shell completion: `cmkctl --install-completion` (or `--show-completion bash|zsh|fish`).

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
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from controller import __version__
from controller.errors import CmkError
from controller.model.settings import ENVIRONMENT
from controller.service.memory import few_arenas

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
    "controller.cli.state_cmd",
)

_SIGN_IN = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_TOKEN_CREDENTIALS",
)
_TRANSPORT = (
    "CMKCTL_EMULATOR",
    "CMKCTL_CA_BUNDLE",
    "CMKCTL_POLLING_INTERVAL",
    "CMKCTL_AZURE_RETRY_TOTAL",
    "CMKCTL_AZURE_TIMEOUT",
    "CMKCTL_ARM_READ_RATE",
    "CMKCTL_ARM_WRITE_RATE",
)
_AZURE = ("AZURE_CLOUD", *_SIGN_IN, *_TRANSPORT)
_EXECUTOR = ("CMKCTL_OPERATION_TIMEOUT", "CMKCTL_BUSY_TIMEOUT", "CMKCTL_RETRY_BACKOFF")
_STATE = ("CMKCTL_STATE", "AZURE_STORAGE_KEY")
# command -> the environment variables that change what it does, shown at the end of its --help
COMMAND_ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "validate": ("AZURE_CLOUD",),
    "plan": (*_STATE, "CMKCTL_NOW", *_AZURE),
    "apply": (*_STATE, *_EXECUTOR, "CMKCTL_NOW", *_AZURE),
    "drift": (*_STATE, "CMKCTL_NOW", *_AZURE),
    "report": (*_STATE, "CMKCTL_NOW", *_AZURE),
    "export": _AZURE,
    "state": (*_STATE, *_AZURE),
    "controller": (
        *_STATE,
        "CMKCTL_WORKDIR",
        "CMKCTL_GIT_CREDENTIALS_FILE",
        *_EXECUTOR,
        *_AZURE,
    ),
}


def environment_epilog(names: Sequence[str]) -> str:
    """One line per variable, kept as written (click's \\b: no rewrapping)."""
    lines = [f"  {name}: {ENVIRONMENT[name]}" for name in names]
    return "\b\nEnvironment:\n" + "\n".join(lines)


def _argument_placeholder(param: Any) -> str:
    """PATH, [PLANFILE], PATH... or [PATH]...: the argument as the usage line and help show it."""
    name = param.metavar or (param.name or "ARG").upper()
    if name.startswith("["):
        return name  # already written as optional
    name = f"{name}..." if param.nargs != 1 else name
    return name if param.required else f"[{name}]"


class _Command(TyperCommand):
    """Typer's command, with arguments shown by placeholder (not `{paths}... <list[Path]>`)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_argument_placeholder(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args: list[tuple[str, str]] = []
        opts: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                args.append((_argument_placeholder(param), record[1]))
            elif param.param_type_name == "option":
                opts.append(record)
        if args:
            with formatter.section("Arguments"):
                formatter.write_dl(args)
        if opts:
            with formatter.section("Options"):
                formatter.write_dl(opts)


app = typer.Typer(
    name="cmkctl",
    help="Keep Log Analytics dedicated clusters with customer-managed keys as declared in git.",
    epilog=environment_epilog(list(ENVIRONMENT)),
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion [bash|zsh|fish|powershell]
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
    _conventions(app, "")


def _conventions(typer_app: typer.Typer, group: str) -> None:
    """Placeholders and the environment epilog on every command, also those of a command group
    (`cmkctl GROUP SUBCOMMAND` reads what COMMAND_ENVIRONMENT lists for GROUP)."""
    for info in typer_app.registered_commands:
        if info.cls in (None, TyperCommand):  # a command with its own class keeps it
            info.cls = _Command
        name = group or info.name or ""
        if info.epilog is None and name:
            info.epilog = environment_epilog([*COMMAND_ENVIRONMENT.get(name, ()), "CMKCTL_DEBUG"])
    for sub in typer_app.registered_groups:
        if sub.typer_instance is None:
            continue
        group_info = sub.typer_instance.info
        sub_name = next((n for n in (sub.name, group_info.name) if isinstance(n, str)), "")
        name = group or sub_name
        if not isinstance(group_info.epilog, str) and not isinstance(sub.epilog, str) and name:
            group_info.epilog = environment_epilog([*COMMAND_ENVIRONMENT.get(name, ()), "CMKCTL_DEBUG"])
        _conventions(sub.typer_instance, name)


_register_all()


def _debug() -> bool:
    return os.environ.get("CMKCTL_DEBUG", "") not in ("", "0", "false")


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: run the app, map every outcome to a message and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    few_arenas()  # before any thread allocates (controller.service.memory)
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


_AZURE_COMMANDS = frozenset({"plan", "apply", "drift", "report", "controller", "state"})


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
