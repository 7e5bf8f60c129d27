"""`cmkctl state rebuild`: a new journal from what Azure shows, where the old one is lost or damaged.

    cmkctl state rebuild -f PATH... [--state STATE] [--lock-timeout DURATION]

plan and apply refuse a journal that existed and is gone, empty, unreadable or missing entries, and
name this command. It takes the writer lock, reads the spec's link and unlink operations (rule W3) and
cluster deletions (C11) from the Activity Log, moves the damaged journal aside and writes a new one (and
its marker). Operations that were running are not known: the command says so and names the resources
Azure shows busy now; apply reads them back before it sends anything. A whole journal is refused.
Exit 0 = rebuilt, 1 = error.
"""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli.apply_cmd import parse_duration
from controller.cli.cloud_option import CloudOption, selected_cloud
from controller.cli.guard import guarded, quiet_sdk_logging
from controller.errors import CmkError
from controller.service.rebuild import rebuild

EXIT_OK = 0

state_app = typer.Typer(
    name="state",
    help="Look after the journal (--state): rebuild it from Azure when it is lost or damaged.",
    no_args_is_help=True,
)


def run(files: list[str], *, state: str | None, lock_timeout: str = "0s", cloud: str | None = None) -> int:
    def body() -> int:
        if not files:
            raise CmkError("give the spec files or directories with -f PATH (whose history to read)")
        quiet_sdk_logging()
        timeout = parse_duration(lock_timeout)
        done = rebuild(files, state=state, cloud=selected_cloud(cloud), lock_timeout=timeout)
        print(f"Rebuilt the journal in {done.where} from Azure.")
        if done.moved_aside:
            print(f"  the damaged journal was moved to {done.moved_aside}")
        print(
            f"  {done.link_operations} link/unlink operation(s) (rule W3) and "
            f"{done.cluster_deletions} cluster deletion(s) (rule C11) from the Activity Log"
        )
        print(
            "  not known: which operations were running when the journal was lost; apply reads every "
            "resource from Azure before it sends anything, and waits for the busy ones (rule C6)"
        )
        for name in done.busy:
            print(f"  busy in Azure now: {name}")
        return EXIT_OK

    return guarded(body)


@state_app.command("rebuild")
def rebuild_command(
    files: Annotated[
        list[str] | None,
        typer.Option("-f", "--file", metavar="PATH", help="Spec file or directory (repeatable)"),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            metavar="STATE",
            help="The journal to rebuild: DIR or azureblob://ACCOUNT/CONTAINER[/BLOB] "
            "(default $CMKCTL_STATE, else .cmkctl)",
        ),
    ] = None,
    lock_timeout: Annotated[
        str,
        typer.Option(
            "--lock-timeout", metavar="DURATION", help="Wait this long for a running apply (e.g. 5m)"
        ),
    ] = "0s",
    cloud: CloudOption = None,
) -> None:
    """Write a new journal from Azure's Activity Log where the old one is lost or damaged."""
    raise typer.Exit(run(files or [], state=state, lock_timeout=lock_timeout, cloud=cloud))


def register(app: typer.Typer) -> None:
    """Add `state` (with `state rebuild`) to the cmkctl app (listed in COMMAND_MODULES)."""
    app.add_typer(state_app)
