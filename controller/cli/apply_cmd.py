"""`cmkctl apply`: make Azure match the spec, safely stoppable at any instant and safe to re-run.

    cmkctl apply -f PATH... [--auto-approve] [--parallelism N] [--lock-timeout D] [--state DIR]
                 [--target ADDRESS]...
    cmkctl apply PLANFILE [--parallelism N] [--lock-timeout D] [--state DIR]

A saved plan is checked against the spec it records; -f with it is refused (only a plan that records
no spec paths takes them from -f). `--target` applies only those resources and what they depend on;
with a saved plan it is refused, as Terraform does: a plan made with `plan --target --out` already
holds only its targets, and applies only those.

Order: take the writer lock (a second apply waits --lock-timeout, then exits 1 naming the holder) ->
resume what a previous, interrupted apply left running (journaled LRO tokens; never re-issued) ->
observe and plan (or load PLANFILE and refuse it if the observed state changed since: "stale") ->
show and confirm (unless --auto-approve, or a saved plan that was already reviewed) -> execute ->
summary (root causes only, deferred dates repeated). Exit codes:

    0  everything that can run now applied (deferred work is not a failure)
    1  a failure or a blocked item
    3  nothing failed, but operations Azure accepted are still running past CMKCTL_OPERATION_TIMEOUT
       (a cluster create can take hours): they are journaled, never sent again, and the next apply
       resumes them. Every run says so with the same code until Azure finishes them, so CI can tell
       "come back later" from "broken".

Knobs (environment): CMKCTL_RETRY_BACKOFF (first retry wait in seconds, default 2),
CMKCTL_BUSY_TIMEOUT (seconds to wait for a running C6/W5 operation, default 3 h),
CMKCTL_OPERATION_TIMEOUT (seconds to wait for one of our own operations, default 6 h; past it the branch
stops, the operation stays journaled and the next apply resumes it without re-sending).
"""

from __future__ import annotations

import contextlib
import re
import shlex
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from controller.azure.clients import AzureClients
from controller.cli import plan_cmd
from controller.cli.cloud_option import CloudOption, selected_cloud
from controller.cli.guard import guarded, quiet_sdk_logging
from controller.errors import CmkError
from controller.execution.executor import StepResult, summarise
from controller.execution.progress import LineProgress, LiveProgress, Progress
from controller.model.settings import Settings
from controller.planning import fingerprint as fp
from controller.planning.targeting import record_keys, target_plan
from controller.service.apply_session import ApplySession, record_applied, step_counts
from controller.service.saved_plan import check_saved, load_plan_file
from controller.service.state import parse_state

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_STILL_RUNNING = 3
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """'30', '30s', '5m', '1h', '500ms' -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise CmkError(f"--lock-timeout {text!r} is not a duration (e.g. 30s, 5m, 1h)")
    value = float(m.group(1))
    unit = (m.group(2) or "s").lower()
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def confirm(plan_text: str) -> bool:
    sys.stdout.write(plan_text)
    sys.stdout.write("\nDo you want to apply these changes? Only 'yes' is accepted: ")
    sys.stdout.flush()
    try:
        answer = sys.stdin.readline()
    except (OSError, KeyboardInterrupt):
        return False
    return answer.strip() == "yes"


def _progress(clients: AzureClients) -> Progress:
    """A live table on a TTY, plain lines with heartbeats otherwise (CI logs). Elapsed times are on
    the clock apply runs on, Azure's (ARM's `Date`), so they agree with the journal's times."""
    def clock() -> float:
        return clients.service_now().timestamp()

    return LiveProgress(monotonic=clock) if sys.stderr.isatty() else LineProgress(monotonic=clock)


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
    correct_drift: bool = False,
    targets: Sequence[str] = (),
) -> int:
    """The command body; returns the exit code and never lets a traceback reach the user."""
    own = clients is None
    azure: AzureClients | None = clients
    session: ApplySession | None = None

    def body() -> int:
        nonlocal azure, session
        if planfile is None and not files:
            raise CmkError("give spec files with -f PATH, or a saved plan file (cmkctl plan --out)")
        quiet_sdk_logging()
        settings = Settings.read()
        if settings.now is not None:
            # a what-if clock would let apply send what Azure's own clock refuses (rules C4, W3)
            raise CmkError(
                "CMKCTL_NOW is set: it is plan's what-if clock and never decides what apply sends; "
                "unset it to apply"
            )
        if planfile is not None and targets:
            # what was reviewed is what runs: a saved plan is never cut down (or widened) afterwards
            raise CmkError(
                f"--target is not accepted with a saved plan: {planfile} is applied exactly as it was "
                "reviewed; make a targeted plan with `cmkctl plan -f ... --target ADDRESS --out FILE`"
            )
        saved = load_plan_file(planfile) if planfile else None
        if saved is not None and files and saved.spec_paths:
            # a reviewed plan is checked against the spec it was made from, never another one
            raise CmkError(
                f"-f is not accepted with a saved plan: {planfile} was made from "
                f"{', '.join(saved.spec_paths)} and is checked against that spec; run "
                f"`cmkctl apply {planfile}` alone, or `cmkctl plan -f ... --out` for another spec"
            )
        chosen_cloud = azure.cloud if azure is not None else selected_cloud(cloud)
        ref = parse_state(state, settings, cloud=chosen_cloud)
        command = "cmkctl apply " + shlex.join([*([planfile] if planfile else []), *files])
        lock, open_store = ref.open_writer(command=command, cloud=chosen_cloud)
        azure = azure or AzureClients(cloud=chosen_cloud)
        progress = _progress(azure)
        session = ApplySession(
            lock, open_store, clients=azure, settings=settings, parallelism=parallelism, progress=progress
        )
        session.open(timeout=lock_timeout)  # one writer: a CI apply and the controller never race
        live = progress if isinstance(progress, LiveProgress) else contextlib.nullcontext()
        with live:
            resumed = session.resume()
        waiting = _still_running(session)  # named once, in the summary
        for step in resumed:
            if step.id not in waiting:
                detail = f": {step.message}" if step.message else ""
                _err(f"resumed: {step.address}: {step.status}{detail}")

        spec_paths = list(files) or (list(saved.spec_paths) if saved else [])
        if not spec_paths:
            raise CmkError(
                f"{planfile} does not record its spec paths; give them with -f so the plan can be checked "
                "against the live state before applying"
            )
        # a saved plan made with --correct-drift was reviewed with its reverts: checked against the same
        snap = session.look(spec_paths, correct_drift=correct_drift or bool(saved and saved.correct_drift))
        plan = snap.artefact(spec_paths)
        if targets:
            plan = target_plan(plan, targets, desired=snap.desired)
        for warning in snap.observed.warnings:
            _err(f"warning: {warning}")
        if saved is not None:
            plan = check_saved(  # apply exactly what was reviewed, and only what the spec allows
                saved,
                plan,
                planfile=str(planfile),
                fingerprint_now=fp.fingerprint(snap.observed),
                digests_now=plan.resource_digests,
            )
        elif plan.has_work and not auto_approve:
            if not confirm(plan_cmd.render(plan, plan_cmd.Format.TEXT)):
                _err("Apply cancelled; nothing was changed.")
                return EXIT_ERROR
        else:
            sys.stdout.write(plan_cmd.render(plan, plan_cmd.Format.TEXT))
            sys.stdout.flush()

        # a targeted plan (given now, or saved with --target) records only the resources it covers
        covered = record_keys(plan, snap.desired) if plan.targeting is not None else None
        if not plan.changes and not plan.deferred and not plan.blocked and not resumed:
            # the first look at an estate that already matches: it is the baseline drift compares with
            record_applied(
                session.journal_store(),
                snap.basis,
                None,
                observed=snap.observed,
                revision=plan.spec_digest,
                now=session.now(),
                only_missing=True,
                only_keys=covered,
            )
            if plan.targeting is not None:
                print("No changes for the targeted resources.")
                return EXIT_OK
            print("No changes. Azure matches the spec." if not snap.held else
                  "No changes. Differences made outside cmkctl are reported above, not reverted "
                  "(settings.drift: report; --correct-drift reverts them).")
            return EXIT_OK
        # shown: from here on nothing reads the drift entries or the per-resource digests (one per
        # differing field and per resource: ~25 MB for 40,000 workspaces to link), nor the look's
        # reading and history, nor the saved plan; the operations in flight reuse their memory
        plan = plan.model_copy(update={"drift": (), "resource_digests": {}})
        revision, basis = plan.spec_digest or plan.fingerprint, snap.basis
        del snap
        saved = None
        with live:
            result = session.execute(plan)
        # run: the plan (~90 MB for 40,000 links) goes before the state is read again and recorded
        del plan
        result.resumed = resumed
        for line in summarise(result):
            print(line)
        session.record(revision, step_counts(result), basis, only_keys=covered)
        running = _report_still_running(session, resumed, result.failed)
        failed = [s for s in result.failed if s.id not in running]
        # blocked work can never run as declared: CI must go red until the user fixes the spec or Azure
        if failed or result.blocked:
            return EXIT_ERROR
        return EXIT_STILL_RUNNING if running else EXIT_OK

    try:
        return guarded(body, interrupted="interrupted; run apply again to resume what was started")
    finally:
        if session is not None and session.store is not None:
            session.close()
        if own and azure is not None:
            azure.close()


def _still_running(session: ApplySession) -> set[str]:
    """Operations Azure accepted and had not finished when we stopped waiting: journaled as sent."""
    return {op.op_id for op in session.journal_store().running() if op.phase == "sent"}


def _report_still_running(
    session: ApplySession, resumed: Sequence[StepResult], failed: Sequence[StepResult]
) -> set[str]:
    """Name the operations still running in Azure (resumed or started by this run), once each."""
    running = _still_running(session)
    named = {s.id: s.address for s in [*resumed, *failed] if s.id in running}
    for address in sorted(set(named.values())):
        print(f"still running in Azure: {address}: not sent again; the next apply resumes it")
    if named:
        print(f"{len(named)} operation(s) still running (exit {EXIT_STILL_RUNNING}): run apply again later.")
    return set(named)


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
            metavar="N",
            min=1,
            max=100,
            help="Requests sent at once; operations Azure accepted wait without holding a slot",
        )
    ] = 10,
    lock_timeout: Annotated[
        str,
        typer.Option("--lock-timeout", metavar="DURATION", help="Wait this long for another apply (e.g. 5m)"),
    ] = "0s",
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
            help="Also revert what was changed outside cmkctl since the last apply (settings.drift: report "
            "otherwise only reports it)",
        ),
    ] = False,
    target: plan_cmd.TargetOption = None,
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
            correct_drift=correct_drift,
            targets=target or (),
        )
    )


def register(app: typer.Typer) -> None:
    """Add `apply` to the cmkctl app (called from controller.cli.app)."""
    app.command("apply")(apply_command)
