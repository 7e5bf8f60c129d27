"""One measured product action in its own process (`python -m bench._worker ACTION ...`).

Prints one JSON line: wall seconds, this process's CPU seconds and peak RSS, plus what the action
counted. Run by bench/scale.py with CMKCTL_EMULATOR / CMKCTL_CA_BUNDLE pointing at the emulator.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import resource
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def _peak_rss_mb() -> float:
    """VmHWM of this process. Not ru_maxrss: Linux carries that across execve, so a worker started by
    a big parent (e.g. `python -m bench` after the 40k list benchmark) would report the parent's peak."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _usage() -> dict[str, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_s": r.ru_utime + r.ru_stime,
        "sys_s": r.ru_stime,  # of which in the kernel (sockets, TLS records, the journal's fsyncs)
        "peak_rss_mb": _peak_rss_mb(),
    }


def _sdk_imported() -> None:
    """Import the SDK modules an Azure read uses before the clock starts, for the plan and the refresh
    baseline alike. The product imports them on first use (Key Vault, Activity Log and their
    cryptography and models: ~0.4 s, once per process): a cost of starting Python, not of the work
    P2 compares, which a long-running controller pays once."""
    for name in (
        "azure.keyvault.administration",
        "azure.keyvault.keys",
        "azure.mgmt.keyvault",
        "azure.mgmt.loganalytics.operations",
        "azure.mgmt.monitor.operations",
        "cryptography.hazmat.primitives.asymmetric.rsa",
    ):
        importlib.import_module(name)


def _plan(spec: str, dag: str | None) -> dict[str, Any]:
    from controller.azure.clients import AzureClients
    from controller.service.snapshot import snapshot

    _sdk_imported()
    clients = AzureClients()
    t0 = time.perf_counter()
    cpu0 = _usage()["cpu_s"]
    try:
        snap = snapshot([spec], state=os.devnull + ".none", clients=clients)
        plan, observed = snap.artefact([spec]), snap.observed
    finally:
        clients.close()
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {
        "wall_s": wall,
        "action_cpu_s": _usage()["cpu_s"] - cpu0,
        "changes": len(plan.changes),
        "deferred": len(plan.deferred),
        "blocked": len(plan.blocked),
        "warnings": list(observed.warnings)[:5],
        "client_arm_requests": clients.counter.arm(),
        "by_action": _count(str(c.action) for c in plan.changes),
    }
    if dag:
        Path(dag).write_text(
            json.dumps(
                [
                    {"id": c.id, "action": str(c.action), "depends_on": list(c.depends_on)}
                    for c in plan.changes
                ]
            ),
            encoding="utf-8",
        )
    return out


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def _baseline(spec: str, parallelism: int) -> dict[str, Any]:
    """Terraform-style refresh: one GET per cluster, workspace and linked service, same SDK, same
    transport, `parallelism` at once (Terraform's default is 10)."""
    from controller.azure.clients import AzureClients
    from controller.azure.errors import NotFound, map_error
    from controller.loading import load
    from controller.model import ids

    desired = load([spec])
    _sdk_imported()
    clients = AzureClients()
    jobs: list[tuple[str, ids.ResourceId]] = [
        ("cluster", ids.ResourceId.parse(c.arm_id)) for c in desired.clusters
    ]
    for entry in desired.workspace_entries().values():
        rid = ids.ResourceId.parse(entry.id)
        jobs += [("workspace", rid), ("link", rid)]

    def get(job: tuple[str, ids.ResourceId]) -> int:
        kind, rid = job
        la = clients.loganalytics(rid.subscription)
        try:
            if kind == "cluster":
                la.clusters.get(rid.resource_group, rid.name)
            elif kind == "workspace":
                la.workspaces.get(rid.resource_group, rid.name)
            else:
                la.linked_services.get(rid.resource_group, rid.name, "cluster")
        except Exception as exc:  # a missing link is an answer too (404), like Terraform's refresh
            if not isinstance(map_error(exc), NotFound):
                raise
        return 1

    t0 = time.perf_counter()
    cpu0 = _usage()["cpu_s"]
    try:
        with ThreadPoolExecutor(max_workers=parallelism) as pool:
            done = sum(pool.map(get, jobs))
    finally:
        clients.close()
    return {
        "wall_s": time.perf_counter() - t0,
        "action_cpu_s": _usage()["cpu_s"] - cpu0,
        "gets": done,
        "client_arm_requests": clients.counter.arm(),
    }


def _links_free_of_cluster_lock() -> None:
    """What-if (P3 only, never the product): links and unlinks hold their workspace's lock but not
    their cluster's. Azure serialises link operations per workspace (rule W5), not per cluster; the
    emulator accepts concurrent links into one cluster. Measures what the executor's per-cluster
    serialisation of links costs in makespan."""
    from controller.execution import executor as ex
    from controller.model import ids
    from controller.planning.plan import Action

    original = ex.Executor._lock_keys

    def lock_keys(self: ex.Executor, change: Any) -> list[str]:
        if change.action in (Action.LINK, Action.UNLINK):
            ws = str(change.workspace_id)
            return sorted({ids.id_key(change.resource_id), ids.id_key(ws)})
        return original(self, change)

    ex.Executor._lock_keys = lock_keys  # type: ignore[method-assign]


def _progress_by_polls_only() -> None:
    """P3's comparison (never the product): in-flight links followed by per-operation status reads
    alone, without the workspaces list (controller.azure.watch)."""
    from controller.azure import operations

    original = operations.Operations.__init__

    def init(self: operations.Operations, *args: Any, **kwargs: Any) -> None:
        kwargs["list_progress"] = False
        original(self, *args, **kwargs)

    operations.Operations.__init__ = init  # type: ignore[method-assign]


class _Tail(io.TextIOBase):
    """stdout of the measured apply: its last lines only, as a terminal or CI log scrolls. Kept whole,
    a full fleet's plan text (~5 MB) would be memory the apply's own peak is charged with."""

    def __init__(self, keep: int = 20) -> None:
        self._keep = keep
        self._lines: deque[str] = deque(maxlen=keep)
        self._partial = ""

    def write(self, text: str) -> int:
        parts = (self._partial + text).rsplit("\n", self._keep + 1)
        *done, self._partial = parts
        if len(parts) == self._keep + 2:  # the first part holds every older line at once
            done = done[1:]
        self._lines.extend(ln for ln in done if ln.strip())
        return len(text)

    def lines(self) -> list[str]:
        return [*self._lines, *([self._partial] if self._partial.strip() else [])]


def _apply(spec: str, state: str, parallelism: int) -> dict[str, Any]:
    from controller.azure.clients import AzureClients
    from controller.cli import apply_cmd

    clients = AzureClients()
    t0 = time.perf_counter()
    sink = _Tail()
    threads = [threading.active_count()]
    stop = threading.Event()

    def sample() -> None:  # the most threads alive at once: in-flight operations must not add any
        while not stop.wait(0.5):
            threads.append(threading.active_count())

    threading.Thread(target=sample, name="bench-threads", daemon=True).start()
    try:
        with contextlib.redirect_stdout(sink):
            code = apply_cmd.run(
                None, [spec], auto_approve=True, state=state, parallelism=parallelism, clients=clients
            )
    finally:
        stop.set()
        clients.close()
    tail = sink.lines()[-3:]
    return {
        "wall_s": time.perf_counter() - t0,
        "max_threads": max(threads),
        "exit_code": code,
        "summary": tail,
        "client_arm_requests": clients.counter.arm(),
        "client_by_status": {str(k): v for k, v in clients.counter.by_status().items()},
    }


def _reconcile(spec: str, state: str) -> dict[str, Any]:
    """One controller pass (`cmkctl controller --once --mode apply`) over a converged estate."""
    from controller.azure.clients import AzureClients
    from controller.cli import controller_cmd

    clients = AzureClients()
    t0 = time.perf_counter()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        code = controller_cmd.run(source=spec, once=True, state=f"local:{state}", clients=clients)
    clients.close()
    status = json.loads(sink.getvalue() or "{}")
    return {
        "wall_s": time.perf_counter() - t0,
        "exit_code": code,
        "client_arm_requests": clients.counter.arm(),
        "status": {k: status.get(k) for k in ("result", "conditions") if k in status} or status,
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench._worker")
    p.add_argument("action", choices=["plan", "baseline", "apply", "reconcile"])
    p.add_argument("spec")
    p.add_argument("--state", default="")
    p.add_argument("--parallelism", type=int, default=10)
    p.add_argument("--dag", default=None)
    p.add_argument("--links-free-of-cluster-lock", action="store_true")
    p.add_argument("--progress", choices=["list", "polls"], default="list")
    args = p.parse_args(argv)
    if args.links_free_of_cluster_lock:
        _links_free_of_cluster_lock()
    if args.progress == "polls":
        _progress_by_polls_only()
    if args.action == "plan":
        out = _plan(args.spec, args.dag)
    elif args.action == "baseline":
        out = _baseline(args.spec, args.parallelism)
    elif args.action == "apply":
        out = _apply(args.spec, args.state, args.parallelism)
    else:
        out = _reconcile(args.spec, args.state)
    out.update(_usage())
    print(json.dumps(out, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
