"""`cmkctl plan`: load the spec, observe Azure, plan against the rules and calendar, render.

    cmkctl plan -f PATH... [--out FILE] [--format text|markdown|json] [--detailed-exitcode] [--state DIR]

The JSON plan is the artefact (`--out` always writes JSON, whatever `--format` prints). Exit codes:
1 on any error (never a traceback); with --detailed-exitcode 0 = nothing to do, 2 = changes or
deferred work (so CI can tell "in sync" from "needs apply"), otherwise 0 on success.

`now` is the wall clock unless CMKCTL_NOW (ISO-8601) is set: a what-if knob ("plan as of date") that
the emulator-backed tests use to follow the emulator's simulated clock.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from controller.azure.clients import AzureClients
from controller.azure.observe import observe, parse_time
from controller.cli.cloud_option import CloudOption, selected_cloud
from controller.cli.guard import guarded
from controller.errors import CmkError
from controller.loading import load
from controller.model import clouds
from controller.model.history import History
from controller.model.limits import for_profile
from controller.model.observed import ObservedState
from controller.model.spec import DesiredState
from controller.planning.fingerprint import resource_digests
from controller.planning.plan import Plan
from controller.planning.planner import make_plan
from controller.render import MARKDOWN_LIMIT, to_json, to_markdown, to_text

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
STATE_ENV = "CMKCTL_STATE"
NOW_ENV = "CMKCTL_NOW"


class Format(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


def plan_now(env: dict[str, str] | None = None) -> datetime:
    """The planning clock: CMKCTL_NOW if set (what-if / simulated time), else the wall clock."""
    raw = (env if env is not None else dict(os.environ)).get(NOW_ENV)
    if raw:
        parsed = parse_time(raw)
        if parsed is None:
            raise CmkError(f"{NOW_ENV}={raw!r} is not an ISO-8601 date-time")
        return parsed
    return datetime.now(UTC)


def local_history(state: str | None, *, cloud: clouds.Cloud | None = None) -> History:
    """The local journal (rule W3 link times, C11 deletions) if a state store exists; never creates one.

    Seam: the executor's SQLite store (controller.state) is the journal; a remote blob store
    (controller.azure.blob_store) can replace it later without touching the planner.
    """
    chosen = state or os.environ.get(STATE_ENV)
    if chosen and chosen.startswith("azureblob://"):  # the shared journal of CI runners / controllers
        from controller.azure.blob_store import read_history

        return read_history(chosen, cloud=cloud)
    directory = Path(chosen) if chosen else Path.cwd() / ".cmkctl"
    try:
        from controller.state.sqlite_store import FILENAME, SqliteHistoryStore
    except ImportError:  # the state package is optional for planning
        return History()
    if not (directory / FILENAME).exists():
        return History()
    store = SqliteHistoryStore(directory)
    try:
        return store.load()
    finally:
        store.close()


def make_plan_for(
    desired: DesiredState, observed: ObservedState, history: History, now: datetime
) -> Plan:
    """Call the pure planner (controller.planning.planner.make_plan)."""
    limits = for_profile(desired.settings.limits_profile)
    return make_plan(desired=desired, observed=observed, now=now, history=history, limits=limits)


@dataclass(frozen=True)
class Snapshot:
    """Everything one look at the estate yields: what plan, report and drift all start from."""

    desired: DesiredState
    observed: ObservedState
    history: History
    plan: Plan
    now: datetime


def snapshot(
    paths: Sequence[str],
    *,
    state: str | None = None,
    clients: AzureClients | None = None,
    now: datetime | None = None,
    journal: History | None = None,
    cloud: clouds.Cloud | None = None,
) -> Snapshot:
    """Load, observe, merge history (journal ∪ live), plan. Raises CmkError subclasses only.

    `journal` is the history of an already opened store (apply holds it under its lock); otherwise
    the journal of `state` is read without locking or creating anything. The cloud is the clients'
    (`cloud` when this builds them): a key's vaultUri must be a vault of that cloud.
    """
    own = clients is None
    azure = clients or AzureClients(cloud=cloud)
    try:
        desired = load(list(paths), cloud=azure.cloud)
        when = now or plan_now()
        observed, live_history = observe(desired, azure, now=when)
    finally:
        if own:
            azure.close()
    base = journal if journal is not None else local_history(state, cloud=azure.cloud)
    history = base.merged(live_history)
    plan = make_plan_for(desired, observed, history, when)
    return Snapshot(desired=desired, observed=observed, history=history, plan=plan, now=when)


def build_plan(
    paths: Sequence[str],
    *,
    state: str | None = None,
    clients: AzureClients | None = None,
    now: datetime | None = None,
    cloud: clouds.Cloud | None = None,
) -> tuple[Plan, ObservedState]:
    """The plan artefact, with what `cmkctl apply PLANFILE` needs to re-observe and say what changed."""
    snap = snapshot(paths, state=state, clients=clients, now=now, cloud=cloud)
    plan = snap.plan.model_copy(
        update={
            "spec_paths": tuple(str(Path(p).resolve()) for p in paths),
            "resource_digests": resource_digests(snap.observed),
        }
    )
    return plan, snap.observed


def quiet_sdk_logging() -> None:
    """The SDKs log multi-line credential and HTTP chatter; our own messages say what matters."""
    for name in ("azure", "controller.azure"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


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
    if not detailed:
        return EXIT_OK
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
) -> int:
    """The command body; returns the exit code and never lets a traceback reach the user."""
    quiet_sdk_logging()

    def body() -> int:
        plan, observed = build_plan(paths, state=state, clients=clients, cloud=selected_cloud(cloud))
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
        bool, typer.Option("--detailed-exitcode", help="Exit 0 no changes, 1 error, 2 changes or deferred")
    ] = False,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            metavar="DIR|azureblob://ACCOUNT/CONTAINER[/BLOB]",
            help="Journal and lock: a local directory (default $CMKCTL_STATE or .cmkctl) or a shared blob",
        ),
    ] = None,
    cloud: CloudOption = None,
) -> None:
    """Show what apply would do now, what must wait (until when) and what can never run as declared."""
    raise typer.Exit(
        run(files, out=out, fmt=fmt, detailed_exitcode=detailed_exitcode, state=state, cloud=cloud)
    )


def register(app: typer.Typer) -> None:
    """Add `plan` to the cmkctl app (called from controller.cli.app)."""
    app.command("plan")(plan_command)
