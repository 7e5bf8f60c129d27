"""`cmkctl controller`: the GitOps mode; keeps Azure as the spec in git says, pass after pass.

    cmkctl controller --source URL|DIR [--ref main] [--path specs/] [--interval 10m]
                      [--mode apply|report] [--state local:DIR] [--listen :8080] [--suspend] [--once]

Scale-out: one instance owns one scope (a spec path in a source) and that scope's state directory,
whose writer lock admits one writer at a time. A large organisation runs one Deployment per scope
(each with its own --path and state volume); two replicas of one scope are safe (the second waits
for the lock) but pointless. SIGTERM: no new operation starts, a running git command is killed,
operations Azure is running are no longer waited for (their resume data was journaled when they
were sent; the next start resumes them), and the process exits 0 within --shutdown-timeout (20 s
by default; the chart's terminationGracePeriodSeconds is longer). Past it, whatever still blocks
(a slow Azure read) is abandoned and the process exits 0 anyway: nothing unjournaled is in flight.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from types import FrameType
from typing import Annotated

import typer

from controller.azure.clients import AzureClients
from controller.cli.apply_cmd import parse_duration
from controller.cli.cloud_option import CloudOption, selected_cloud
from controller.cli.guard import guarded, quiet_sdk_logging
from controller.errors import CmkError
from controller.reconcile.logs import JsonLog
from controller.reconcile.loop import ControllerConfig, Mode, Reconciler
from controller.reconcile.server import StatusServer, parse_listen
from controller.service.state import parse_state


def _duration(flag: str, text: str) -> float:
    try:
        seconds = parse_duration(text)
    except CmkError:
        raise CmkError(f"{flag} {text!r} is not a duration (e.g. 30s, 10m, 1h)") from None
    if seconds <= 0:
        raise CmkError(f"{flag} must be positive")
    return seconds


def controller_command(
    source: Annotated[
        str, typer.Option("--source", metavar="URL|DIR", help="Git URL, or a directory, holding the spec")
    ],
    ref: Annotated[
        str, typer.Option("--ref", metavar="REF", help="Branch, tag or commit to follow")
    ] = "main",
    path: Annotated[
        str, typer.Option("--path", metavar="DIR", help="Spec directory inside the source")
    ] = ".",
    interval: Annotated[
        str, typer.Option("--interval", metavar="DURATION", help="Time between passes (jittered)")
    ] = "10m",
    mode: Annotated[
        Mode, typer.Option("--mode", help="apply: make changes; report: only report")
    ] = Mode.APPLY,
    state: Annotated[
        str | None, typer.Option(
            "--state",
            metavar="STATE",
            help="Journal and lock (one per scope): local:DIR or azureblob://ACCOUNT/CONTAINER",
        )
    ] = None,
    listen: Annotated[
        str, typer.Option("--listen", metavar="[HOST]:PORT", help="HTTP address for /status /metrics")
    ] = ":8080",
    suspend: Annotated[bool, typer.Option("--suspend", help="Observe and report only")] = False,
    once: Annotated[bool, typer.Option("--once", help="Run one pass, print the status, exit")] = False,
    log_format: Annotated[
        str, typer.Option(
            "--log-format",
            metavar="auto|json|text",
            help="json: one object a line (for log collectors); text: for people; auto: text on a terminal",
        )
    ] = "auto",
    shutdown_timeout: Annotated[
        str, typer.Option(
            "--shutdown-timeout",
            metavar="DURATION",
            help="After SIGTERM, exit at the latest this long later (keep it below the pod's grace period)",
        )
    ] = "20s",
    cloud: CloudOption = None,
) -> None:
    """Run the GitOps controller: fetch, observe, plan, apply (or report), sleep, repeat."""
    raise typer.Exit(
        run(
            source=source,
            ref=ref,
            path=path,
            interval=interval,
            mode=mode,
            state=state,
            listen=listen,
            suspend=suspend,
            once=once,
            shutdown_timeout=shutdown_timeout,
            log_format=log_format,
            cloud=cloud,
        )
    )


def run(
    *,
    source: str,
    ref: str = "main",
    path: str = ".",
    interval: str = "10m",
    mode: Mode = Mode.APPLY,
    state: str | None = None,
    listen: str = ":8080",
    suspend: bool = False,
    once: bool = False,
    shutdown_timeout: str = "20s",
    log_format: str = "auto",
    clients: AzureClients | None = None,
    cloud: str | None = None,
) -> int:
    """The command body: exit 0 on a clean stop (or a successful --once pass), 1 on errors."""
    own = clients is None
    azure = clients
    server: StatusServer | None = None

    def body() -> int:
        nonlocal azure, server
        chosen_cloud = azure.cloud if azure is not None else selected_cloud(cloud)
        where = parse_state(state, cloud=chosen_cloud)
        config = ControllerConfig(
            source=source,
            ref=ref,
            path=path,
            interval=_duration("--interval", interval),
            mode=mode,
            suspend=suspend,
            state_dir=where.local_dir(),
            state_url=where.url,
        )
        grace = _duration("--shutdown-timeout", shutdown_timeout)
        try:
            log = JsonLog(fmt=log_format)
        except ValueError as exc:
            raise CmkError(str(exc)) from None
        if not once:
            parse_listen(listen)
        quiet_sdk_logging()  # the SDKs' multi-line chatter would break one-JSON-object-per-line
        azure = azure or AzureClients(cloud=chosen_cloud)
        reconciler = Reconciler(config, clients=azure, log=log)
        if once:
            outcome = reconciler.run_pass()
            print(json.dumps(reconciler.status.snapshot(), indent=2, default=str))
            return 0 if outcome.record.result not in ("failed", "stalled", "busy") else 1
        server = StatusServer(reconciler, listen)
        server.start()
        _on_signals(reconciler, grace)
        reconciler.run()
        return 0

    try:
        return guarded(body)
    finally:
        if server is not None:
            server.stop()
        if own and azure is not None:
            azure.close()


def _on_signals(reconciler: Reconciler, grace: float) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        if reconciler.stop.is_set():
            return  # a second signal: the first one's deadline stands
        reconciler.log.emit(
            "controller.stopping", signal=signal.Signals(signum).name, exit_within_seconds=grace
        )
        reconciler.request_stop()
        threading.Thread(
            target=_deadline, args=(reconciler, grace), name="cmkctl-shutdown", daemon=True
        ).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _deadline(reconciler: Reconciler, grace: float) -> None:
    """The bound on shutdown: everything sent is journaled, so what still blocks is only reading."""
    time.sleep(grace)
    reconciler.log.emit(
        "controller.stopped",
        level="warning",
        scope=reconciler.config.scope,
        reason=f"still busy {grace:g}s after the stop signal; exiting, the next start resumes",
    )
    os._exit(0)


def register(app: typer.Typer) -> None:
    """Add `controller` to the cmkctl app (listed in controller.cli.app.COMMAND_MODULES)."""
    app.command("controller")(controller_command)
