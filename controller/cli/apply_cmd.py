"""`cmkctl apply`: make Azure match the spec, safely stoppable at any instant and safe to re-run.

    cmkctl apply -f PATH... [--auto-approve] [--parallelism N] [--lock-timeout D] [--state DIR]
    cmkctl apply PLANFILE [-f PATH...] [--parallelism N] [--lock-timeout D] [--state DIR]

Order: take the writer lock (a second apply waits --lock-timeout, then exits 1 naming the holder) ->
resume what a previous, interrupted apply left running (journaled LRO tokens; never re-issued) ->
observe and plan (or load PLANFILE and refuse it if the observed state changed since: "stale") ->
show and confirm (unless --auto-approve, or a saved plan that was already reviewed) -> execute ->
summary (root causes only, deferred dates repeated). Exit 0 when everything that can run now applied
(deferred work is not a failure), 1 on any failure or blocked item.

Knobs (environment): CMKCTL_RETRY_BACKOFF (first retry wait in seconds, default 2),
CMKCTL_BUSY_TIMEOUT (seconds to wait for a running C6/W5 operation, default 3 h),
CMKCTL_OPERATION_TIMEOUT (seconds to wait for one of our own operations, default 6 h; past it the branch
stops, the operation stays journaled and the next apply resumes it without re-sending).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from controller.azure import blob_store
from controller.azure.clients import AzureClients
from controller.azure.operations import Operations
from controller.cli import plan_cmd
from controller.cli.cloud_option import CloudOption, selected_cloud
from controller.cli.guard import guarded
from controller.errors import CmkError, StalePlanError
from controller.execution.executor import ApplyResult, Executor, StepStatus, summarise
from controller.execution.progress import LineProgress, LiveProgress, Progress
from controller.model import clouds
from controller.model.history import HistoryStore, Revision, WriterLock
from controller.model.observed import ObservedState
from controller.planning import fingerprint as fp
from controller.planning.plan import Plan
from controller.render import json_plan
from controller.state import paths
from controller.state.file_lock import FileLock
from controller.state.sqlite_store import SqliteHistoryStore

EXIT_OK = 0
EXIT_ERROR = 1
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """'30', '30s', '5m', '1h', '500ms' -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise CmkError(f"--lock-timeout {text!r} is not a duration (e.g. 30s, 5m, 1h)")
    value = float(m.group(1))
    unit = (m.group(2) or "s").lower()
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def load_plan_file(path: str) -> Plan:
    """The saved artefact, read by the same code that wrote it (controller.render.json_plan)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CmkError(f"cannot read plan file {path}: {exc.strerror or exc}") from None
    try:
        return json_plan.from_json(text)
    except CmkError as exc:
        raise CmkError(f"{path}: {exc} (expected the JSON from `cmkctl plan --out`)") from None


def stale_reason(saved: Plan, current: Plan, digests_now: dict[str, str]) -> list[str]:
    """What changed between the saved plan's observation and now, in resource terms when we can."""
    if saved.resource_digests:
        changed = fp.changed_resources(saved.resource_digests, digests_now)
        if changed:
            return [
                f"{name} changed"
                if name in saved.resource_digests and name in digests_now
                else (f"{name} appeared" if name in digests_now else f"{name} disappeared")
                for name in changed
            ]
    before = {(c.action, c.address) for c in saved.changes}
    after = {(c.action, c.address) for c in current.changes}
    lines = [f"no longer needed: {a} {addr}" for a, addr in sorted(before - after)]
    lines += [f"now also needed: {a} {addr}" for a, addr in sorted(after - before)]
    return lines or ["the observed state differs (fingerprint changed)"]


AZUREBLOB = "azureblob://"


def open_state(
    state: str | None, *, command: str, cloud: clouds.Cloud | None = None
) -> tuple[WriterLock, Callable[[], HistoryStore]]:
    """The writer lock and (opened once the lock is held) the history store for `--state`.

    A directory (default $CMKCTL_STATE or ./.cmkctl) gives the local SQLite journal + flock;
    `azureblob://ACCOUNT/CONTAINER[/BLOB]` the ETag-guarded journal blob + blob lease.
    """
    chosen = state or os.environ.get(paths.ENV_VAR)
    if chosen and chosen.startswith(AZUREBLOB):
        return blob_store.open_state(chosen, command=command, cloud=cloud)
    directory = paths.state_dir(chosen)
    return FileLock(directory, command=command), lambda: SqliteHistoryStore(directory)


def build_plan(
    spec_paths: Sequence[str], *, store: HistoryStore, clients: AzureClients
) -> tuple[Plan, ObservedState]:
    """Load, observe, merge our journal with live history (rule W3 budget, C11 names), plan."""
    snap = plan_cmd.snapshot(spec_paths, clients=clients, journal=store.load())
    return snap.plan, snap.observed


def confirm(plan_text: str) -> bool:
    sys.stdout.write(plan_text)
    sys.stdout.write("\nDo you want to apply these changes? Only 'yes' is accepted: ")
    sys.stdout.flush()
    try:
        answer = sys.stdin.readline()
    except (OSError, KeyboardInterrupt):
        return False
    return answer.strip() == "yes"


def _progress() -> Progress:
    return LiveProgress() if sys.stderr.isatty() else LineProgress()


def run(
    planfile: str | None,
    files: Sequence[str],
    *,
    auto_approve: bool = False,
    parallelism: int = 10,
    lock_timeout: float = 0.0,
    state: str | None = None,
    clients: AzureClients | None = None,
    cloud: str | None = None,
) -> int:
    """The command body; returns the exit code and never lets a traceback reach the user."""
    lock: WriterLock | None = None
    store: HistoryStore | None = None
    own = clients is None
    azure: AzureClients | None = clients

    def body() -> int:
        nonlocal lock, store, azure
        if planfile is None and not files:
            raise CmkError("give spec files with -f PATH, or a saved plan file (cmkctl plan --out)")
        plan_cmd.quiet_sdk_logging()
        chosen_cloud = azure.cloud if azure is not None else selected_cloud(cloud)
        saved = load_plan_file(planfile) if planfile else None
        command = "cmkctl apply " + shlex.join([*([planfile] if planfile else []), *files])
        lock, make_store = open_state(state, command=command, cloud=chosen_cloud)
        lock.acquire(timeout=lock_timeout)  # one writer: a CI apply and the controller never race
        store = make_store()
        azure = azure or AzureClients(cloud=chosen_cloud)
        progress = _progress()
        executor = Executor(
            gateway=Operations(azure),
            store=store,
            parallelism=parallelism,
            busy_timeout=_env_float("CMKCTL_BUSY_TIMEOUT", 3 * 3600),
            backoff=_env_float("CMKCTL_RETRY_BACKOFF", 2.0),
            progress=progress,
            now=lambda: datetime.now(UTC),
        )
        with progress if isinstance(progress, LiveProgress) else contextlib.nullcontext():
            resumed = executor.resume_in_flight()
        for step in resumed:
            _err(f"resumed: {step.address}: {step.status}" + (f": {step.message}" if step.message else ""))

        spec_paths = list(files) or (list(saved.spec_paths) if saved else [])
        if not spec_paths:
            raise CmkError(
                f"{planfile} does not record its spec paths; give them with -f so the plan can be checked "
                "against the live state before applying"
            )
        plan, observed = build_plan(spec_paths, store=store, clients=azure)
        digests = fp.resource_digests(observed)
        plan = plan.model_copy(update={"spec_paths": tuple(spec_paths), "resource_digests": digests})
        for warning in observed.warnings:
            _err(f"warning: {warning}")
        if saved is not None:
            if saved.fingerprint != fp.fingerprint(observed):
                raise StalePlanError(
                    f"saved plan {planfile} is stale: the live state changed since it was made:\n  "
                    + "\n  ".join(stale_reason(saved, plan, digests))
                    + "\nrun `cmkctl plan` again and review the new plan"
                )
            plan = saved  # apply exactly what was reviewed
        elif plan.has_work and not auto_approve:
            if not confirm(plan_cmd.render(plan, plan_cmd.Format.TEXT)):
                _err("Apply cancelled; nothing was changed.")
                return EXIT_ERROR
        else:
            sys.stdout.write(plan_cmd.render(plan, plan_cmd.Format.TEXT))
            sys.stdout.flush()

        if not plan.changes and not plan.deferred and not plan.blocked and not resumed:
            print("No changes. Azure matches the spec.")
            return EXIT_OK
        with progress if isinstance(progress, LiveProgress) else contextlib.nullcontext():
            result = executor.apply(plan)
        result.resumed = resumed
        for line in summarise(result):
            print(line)
        store.record_revision(
            Revision(
                revision=plan.spec_digest or plan.fingerprint,
                applied_at=datetime.now(UTC),
                summary=_counts(result),
            )
        )
        # blocked work can never run as declared: CI must go red until the user fixes the spec or Azure
        return EXIT_OK if result.ok and not result.blocked else EXIT_ERROR

    try:
        return guarded(body, interrupted="interrupted; run apply again to resume what was started")
    finally:
        closer = getattr(store, "close", None)
        if callable(closer):
            closer()
        if own and azure is not None:
            azure.close()
        if lock is not None:
            lock.release()


def _counts(result: ApplyResult) -> dict[str, int]:
    return {str(s): result.count(s) for s in StepStatus if result.count(s)}


def apply_command(
    planfile: Annotated[
        str | None,
        typer.Argument(metavar="[PLANFILE]", help="A saved plan (cmkctl plan --out) to apply exactly"),
    ] = None,
    files: Annotated[
        list[str] | None,
        typer.Option("-f", "--file", metavar="PATH", help="Spec file or directory (repeatable)"),
    ] = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Do not ask before applying")] = False,
    parallelism: Annotated[
        int, typer.Option(
            "--parallelism",
            min=1,
            max=100,
            help="Requests sent at once; operations Azure accepted wait without holding a slot",
        )
    ] = 10,
    lock_timeout: Annotated[
        str, typer.Option("--lock-timeout", metavar="D", help="Wait this long for another apply (e.g. 5m)")
    ] = "0s",
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
    """Apply the spec (or a saved plan): resumable, idempotent, one writer at a time."""
    try:
        timeout = parse_duration(lock_timeout)
    except CmkError as err:
        _err(f"error: {err}")
        raise typer.Exit(EXIT_ERROR) from None
    raise typer.Exit(
        run(
            planfile,
            files or [],
            auto_approve=auto_approve,
            parallelism=parallelism,
            lock_timeout=timeout,
            state=state,
            cloud=cloud,
        )
    )


def register(app: typer.Typer) -> None:
    """Add `apply` to the cmkctl app (called from controller.cli.app)."""
    app.command("apply")(apply_command)
