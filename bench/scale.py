"""Scale benchmark: fleet F through the real SDKs against the emulator, P1-P4.

    python -m bench.scale [--runs 3] [--baseline-runs 1] [--smoke]

* P1 ARM requests of one `plan` of F (the emulator's request log) vs the minimum the API allows:
  per subscription one clusters list, one workspaces list, one Activity Log query (rule W3 history)
  and one vaults list where a referenced vault lives (rule C7), plus one linkedStorageAccounts list
  per workspace with a BYOS block (rules B1/B2). There is no list of BYOS links across workspaces.
* P2 plan wall time vs a Terraform-style refresh (one GET per cluster, workspace and linked service,
  the same SDK and transport, 10 at once), in the same run against the same emulator: a ratio.
* P3 apply from an empty estate under realistic simulated durations (create 2 h, key update 5 min,
  link 90 min) with ARM throttling on: makespan in simulated time (first write to last request) vs
  its lower bound (the plan DAG's critical path under the same durations plus the busiest
  subscription's write-bucket admission); 429s counted in the request log, reads per subscription
  against the read budget, the apply's peak RSS and most threads. `--only-apply` measures P3 alone
  and keeps the other figures; `--progress polls` follows links by per-operation reads only.
  By default P3 runs on a smaller fleet of the same shape (see `--apply-*`, bench/README.md): the
  full fleet's 40,000 links need ~45 minutes of real time at a time scale this machine keeps up with.
* P4 peak RSS of a no-op reconcile of F (`cmkctl controller --once --mode apply`).

The emulator runs in its own process: "ours" is the measured worker's CPU, "emulator" the emulator
process's CPU over the same interval. Results merge into bench/results.json under `scale` (other
keys, e.g. `emulator_list_40k`, are kept) and the table in bench/README.md is regenerated.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import fleet, harness

RESULTS = Path(__file__).resolve().parent / "results.json"
README = Path(__file__).resolve().parent / "README.md"
TARGETS = {"P1": 1.1, "P2": 30.0, "P3": 1.1, "P3_rss": 500.0, "P4": 300.0}
# Full F's 40,000 link sends become possible together, when the clusters are done; the apply must keep
# up with ARM's write buckets in simulated time on 2 cores shared with the emulator (see README.md):
# at time scale 3 (~75 real minutes) the sends' CPU delays the chain's end less than at 4 or 5.
FULL_TIME_SCALE = 3.0

# Simulated durations for P3 (seconds): docs/rules.md and docs/azure-wire.md (create ~2 h, key update
# minutes, link up to 90 min). BYOS links are synchronous (200), so they weigh 0.
DURATIONS = {
    "cluster_create": 7200.0,
    "cluster_update": 300.0,
    "cluster_delete": 60.0,
    "link": 5400.0,
    "unlink": 5400.0,
    "workspace_create": 0.0,
}
ACTION_KIND = {
    "create": "cluster_create",
    "set_key": "cluster_update",
    "update": "cluster_update",
    "delete": "cluster_delete",
    "link": "link",
    "unlink": "unlink",
}


def minimum_plan_requests(f: fleet.Fleet) -> int:
    """The fewest ARM requests a correct plan of `f` can make (see module docstring)."""
    vault_subs = {c.subscription for c in f.clusters}
    # plus one read per user-assigned identity: its principal is checked against the vault's access
    # policies before a key is planned (rule C7); ARM's identity list would make this one per subscription
    identities = {c.identity_id.lower() for c in f.clusters}
    return 3 * len(f.subscriptions) + len(vault_subs) + f.byos_workspaces + len(identities)


def critical_path(dag: list[dict[str, Any]], durations: dict[str, float]) -> tuple[float, list[str]]:
    """Longest path through the plan's DAG, each step weighted by its emulator duration."""
    by_id = {c["id"]: c for c in dag}
    memo: dict[str, tuple[float, list[str]]] = {}

    def longest(cid: str) -> tuple[float, list[str]]:
        if cid in memo:
            return memo[cid]
        step = by_id[cid]
        weight = durations.get(ACTION_KIND.get(step["action"], ""), 0.0)
        best: tuple[float, list[str]] = (0.0, [])
        for dep in step["depends_on"]:
            if dep in by_id:
                cand = longest(dep)
                if cand[0] > best[0]:
                    best = cand
        memo[cid] = (best[0] + weight, [*best[1], step["action"]])
        return memo[cid]

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    paths = [longest(cid) for cid in by_id]
    return max(paths, default=(0.0, []))


def _read_kind(path: str) -> str:
    """What a P3 read was for: an operation's status, a workspaces list, or a resource GET."""
    low = path.lower()
    if "/operationstatuses/" in low or "/operationresults/" in low:
        return "operation_status"
    if low.endswith("/linkedservices/cluster"):
        return "link"
    if low.endswith("operationalinsights/workspaces"):
        return "workspaces_list"
    return _kind(path)


def _arm(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if r["host"] == harness.ARM_HOST]


def _kind(path: str) -> str:
    low = path.lower()
    for suffix, name in (
        ("/linkedstorageaccounts", "byos"),
        ("eventtypes/management/values", "activity_log"),
        ("microsoft.keyvault/vaults", "vaults"),
        ("operationalinsights/clusters", "clusters"),
        ("operationalinsights/workspaces", "workspaces"),
    ):
        if low.endswith(suffix):
            return name
    return "other"


def _ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")[:26] + "+00:00").timestamp()


def measure_plan_side(
    f: fleet.Fleet, spec: Path, work: Path, runs: int, baseline_runs: int, log: Any
) -> dict[str, Any]:
    """P1, P2 and P4 against the applied estate of `f` (throttling off: we measure our work)."""
    out: dict[str, Any] = {}
    with harness.EmulatorProcess(time_scale=0.0) as em:
        t0 = time.perf_counter()
        em.seed(fleet.estate(f, applied=True))
        out["seed_seconds"] = round(time.perf_counter() - t0, 2)
        plans: list[dict[str, Any]] = []
        for i in range(runs):
            em.clear_requests()
            cpu0 = em.cpu()
            load0 = os.getloadavg()[0]
            r = harness.run_worker(em, "plan", str(spec))
            r["emulator_cpu_s"] = em.cpu() - cpu0
            r["load_average"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
            arm = _arm(em.requests())
            r["arm_requests"] = len(arm)
            r["arm_by_kind"] = dict(Counter(_kind(x["path"]) for x in arm))
            r["arm_get_only"] = all(x["method"] == "GET" for x in arm)
            plans.append(r)
            log(f"  plan run {i + 1}: {r['wall_s']:.1f}s wall, {r['arm_requests']} ARM requests, "
                f"ours {r['action_cpu_s']:.1f}s CPU, emulator {r['emulator_cpu_s']:.1f}s CPU, "
                f"{r['changes']} changes")
        minimum = minimum_plan_requests(f)
        p1 = statistics.median(p["arm_requests"] for p in plans)
        out["P1"] = {
            "arm_requests": p1,
            "minimum": minimum,
            "ratio": round(p1 / minimum, 3),
            "by_kind": plans[0]["arm_by_kind"],
            "plan_changes": plans[0]["changes"],
            "reads_only": all(p["arm_get_only"] for p in plans),
        }
        baselines: list[dict[str, Any]] = []
        for i in range(baseline_runs):
            em.clear_requests()
            cpu0 = em.cpu()
            b = harness.run_worker(em, "baseline", str(spec), "--parallelism", "10")
            b["emulator_cpu_s"] = em.cpu() - cpu0
            b["arm_requests"] = len(_arm(em.requests()))
            baselines.append(b)
            log(f"  baseline run {i + 1}: {b['wall_s']:.1f}s wall, {b['arm_requests']} GETs, "
                f"ours {b['action_cpu_s']:.1f}s CPU, emulator {b['emulator_cpu_s']:.1f}s CPU")
        plan_wall = statistics.median(p["wall_s"] for p in plans)
        base_wall = statistics.median(b["wall_s"] for b in baselines)
        out["P2"] = {
            "plan_wall_s_median": round(plan_wall, 2),
            "plan_wall_s_all": [round(p["wall_s"], 2) for p in plans],
            # the machine's 1-minute load average before and after each plan run (a shared machine)
            "plan_load_average": [p["load_average"] for p in plans],
            "plan_our_cpu_s_median": round(statistics.median(p["action_cpu_s"] for p in plans), 2),
            "plan_emulator_cpu_s_median": round(statistics.median(p["emulator_cpu_s"] for p in plans), 2),
            "baseline_wall_s_median": round(base_wall, 2),
            "baseline_wall_s_all": [round(b["wall_s"], 2) for b in baselines],
            "baseline_gets": baselines[0]["arm_requests"],
            "baseline_our_cpu_s_median": round(statistics.median(b["action_cpu_s"] for b in baselines), 2),
            "baseline_emulator_cpu_s_median": round(
                statistics.median(b["emulator_cpu_s"] for b in baselines), 2
            ),
            # what ARM's read bucket (250, +25/s per subscription and principal) would allow the baseline
            "baseline_min_seconds_under_arm_read_limit": round(
                max(0.0, (baselines[0]["arm_requests"] / len(f.subscriptions) - 250) / 25), 1
            ),
            "speedup": round(base_wall / plan_wall, 2),
        }
        recs: list[dict[str, Any]] = []
        for i in range(runs):
            state = work / f"reconcile-state-{i}"
            r = harness.run_worker(em, "reconcile", str(spec), "--state", str(state))
            recs.append(r)
            log(f"  no-op reconcile run {i + 1}: {r['wall_s']:.1f}s, peak RSS {r['peak_rss_mb']:.0f} MB, "
                f"exit {r['exit_code']}")
        out["P4"] = {
            "peak_rss_mb_median": round(statistics.median(r["peak_rss_mb"] for r in recs), 1),
            "peak_rss_mb_all": [round(r["peak_rss_mb"], 1) for r in recs],
            "plan_peak_rss_mb_median": round(statistics.median(p["peak_rss_mb"] for p in plans), 1),
            "reconcile_wall_s_median": round(statistics.median(r["wall_s"] for r in recs), 2),
            "exit_codes": [r["exit_code"] for r in recs],
        }
    return out


def _scaled_limits(time_scale: float) -> dict[str, list[float]]:
    return {"reads": [250, 25 * time_scale], "writes": [200, 10 * time_scale]}


def _sub(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    return parts[1].lower() if len(parts) > 1 and parts[0].lower() == "subscriptions" else ""


def lower_bound(critical_path_s: float, writes: list[dict[str, Any]]) -> float:
    """The apply's makespan lower bound (bench/README.md): the DAG's critical path plus the time the
    busiest subscription's write bucket (200 burst, 10/s) needs to admit its writes beyond the burst."""
    per_sub = Counter(_sub(r["path"]) for r in writes if r["status"] != 429)
    most = max(per_sub.values(), default=0)
    return critical_path_s + max(0.0, (most - 200) / 10.0)


def measure_apply(
    f: fleet.Fleet,
    spec: Path,
    work: Path,
    *,
    time_scale: float,
    parallelism: int,
    runs: int,
    log: Any,
    what_if: bool = False,
    progress: str = "list",
) -> dict[str, Any]:
    """P3: apply from empty with throttling on; makespan (simulated) vs the DAG's critical path and
    vs the lower bound (critical path + the busiest subscription's writes beyond the burst)."""
    results: list[dict[str, Any]] = []
    for i in range(runs):
        load_before = os.getloadavg()[0]
        with harness.EmulatorProcess(time_scale=time_scale, durations=DURATIONS) as em:
            em.seed(fleet.estate(f, applied=False))
            dag_file = work / f"dag-{i}.json"
            harness.run_worker(em, "plan", str(spec), "--dag", str(dag_file))
            dag = json.loads(dag_file.read_text(encoding="utf-8"))
            cp, chain = critical_path(dag, DURATIONS)
            # ARM's buckets (docs/azure-wire.md) in SIMULATED time: the same burst, the refill scaled
            # like every duration; and the SDK polls every 30 simulated seconds, as it does in Azure.
            em.configure(throttling=True, throttle_limits=_scaled_limits(time_scale))
            em.clear_requests()
            cpu0 = em.cpu()
            state = work / f"apply-state-{i}"
            a = harness.run_worker(
                em, "apply", str(spec), "--state", str(state), "--parallelism", str(parallelism),
                "--progress", progress,
                *(["--links-free-of-cluster-lock"] if what_if else []),
                timeout=4 * 3600,
                extra_env={
                    "CMKCTL_POLLING_INTERVAL": str(30.0 / time_scale),
                    # our pacing follows ARM's refill in the same simulated time as the emulator's buckets
                    "CMKCTL_ARM_READ_RATE": str(25.0 * time_scale),
                    "CMKCTL_ARM_WRITE_RATE": str(10.0 * time_scale),
                },
            )
            emu_cpu = em.cpu() - cpu0
            reqs = em.requests()
            arm = _arm(reqs)
            writes = [r for r in arm if r["method"] != "GET"]
            throttled = [r for r in arm if r["status"] == 429]
            start = min(_ts(r["time"]) for r in writes) if writes else 0.0
            end = max(_ts(r["time"]) for r in arm) if arm else 0.0
            makespan = end - start
            # a "storm": 429s that are a real share of the traffic, or repeated 429s on one URL
            per_path = Counter(r["path"] for r in throttled)
            bound = lower_bound(cp, writes)
            per_sub_reads = Counter(_sub(r["path"]) for r in arm if r["method"] == "GET")
            read_budget = 250 + 25 * makespan  # per subscription over the run (simulated seconds)
            reads_by_kind = Counter(_read_kind(r["path"]) for r in arm if r["method"] == "GET")
            links_sent = sum(1 for c in dag if c["action"] == "link")
            run = {
                "exit_code": a["exit_code"],
                "summary": a["summary"],
                "steps": dict(Counter(c["action"] for c in dag)),
                "critical_path_s": cp,
                "critical_path": " -> ".join(chain),
                "makespan_s": round(makespan, 1),
                "ratio": round(makespan / cp, 3) if cp else None,
                "lower_bound_s": round(bound, 1),
                "ratio_to_lower_bound": round(makespan / bound, 3) if bound else None,
                "max_reads_one_subscription": max(per_sub_reads.values(), default=0),
                "read_budget_one_subscription": round(read_budget),
                "reads_by_kind": dict(reads_by_kind),
                "progress": progress,
                "peak_rss_mb": round(a["peak_rss_mb"], 1),
                "max_threads": a.get("max_threads"),
                "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
                "arm_requests": len(arm),
                "arm_429": len(throttled),
                "max_429_on_one_path": max(per_path.values(), default=0),
                "harm_events": len(em.events()),
                "real_seconds": round(a["wall_s"], 1),
                "our_cpu_s": round(a["cpu_s"], 1),
                "our_sys_s": round(a.get("sys_s", 0.0), 1),
                "emulator_cpu_s": round(emu_cpu, 1),
            }
            results.append(run)
            log(f"  apply run {i + 1}{' (what-if)' if what_if else ''}: exit {run['exit_code']}, "
                f"makespan {makespan / 3600:.2f} h vs critical path {cp / 3600:.2f} h "
                f"(ratio {run['ratio']}, to lower bound {run['ratio_to_lower_bound']}), "
                f"{run['arm_requests']} ARM requests, {run['arm_429']} x 429, reads "
                f"{run['max_reads_one_subscription']} of {run['read_budget_one_subscription']}, "
                f"peak RSS {run['peak_rss_mb']} MB, {run['max_threads']} threads, "
                f"{run['real_seconds']}s real, load {run['load_average']}, our CPU {run['our_cpu_s']} s "
                f"({1000 * run['our_cpu_s'] / max(1, links_sent):.2f} ms per link, "
                f"{run['our_sys_s']} s of it system), emulator CPU {run['emulator_cpu_s']} s, "
                f"reads by kind {run['reads_by_kind']}")
    ratios = [r["ratio"] for r in results if r["ratio"] is not None]
    to_bound = [r["ratio_to_lower_bound"] for r in results if r["ratio_to_lower_bound"] is not None]
    return {
        "fleet": f.shape.label(),
        "links": sum(1 for c in dag if c["action"] == "link") if results else 0,
        "progress": progress,
        "ratio_to_lower_bound": round(statistics.median(to_bound), 3) if to_bound else None,
        "arm_429": max((r["arm_429"] for r in results), default=0),
        "max_reads_one_subscription": max((r["max_reads_one_subscription"] for r in results), default=0),
        "read_budget_one_subscription": min(
            (r["read_budget_one_subscription"] for r in results), default=0
        ),
        "peak_rss_mb": max((r["peak_rss_mb"] for r in results), default=0.0),
        "time_scale": time_scale,
        "parallelism": parallelism,
        "durations_s": DURATIONS,
        "throttling": "ARM buckets reads 250 +25/s, writes 200 +10/s, in simulated time",
        "what_if_links_free_of_cluster_lock": what_if,
        "ratio_median": round(statistics.median(ratios), 3) if ratios else None,
        "arm_429_median": statistics.median(r["arm_429"] for r in results),
        # a "storm": 429s that are a real share of the traffic, or repeated 429s on one URL
        "storm": any(
            r["arm_429"] > 0.01 * r["arm_requests"] or r["max_429_on_one_path"] > 3 for r in results
        ),
        "runs": results,
    }


def _apply_verdict(p3: dict[str, Any]) -> dict[str, Any]:
    ratio, rss = p3.get("ratio_to_lower_bound"), p3.get("peak_rss_mb")
    return {
        "target": "makespan <= 1.1 x lower bound, no 429 storms, peak RSS <= 500 MB",
        "value": ratio,
        "pass": ratio is not None
        and ratio <= TARGETS["P3"]
        and not p3["storm"]
        and rss is not None
        and rss <= TARGETS["P3_rss"],
        "arm_429": p3["arm_429_median"],
    }


def verdicts(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    p1 = res["P1"]["ratio"]
    p2 = res["P2"]["speedup"]
    p4 = res["P4"]["peak_rss_mb_median"]
    full = {"P3_full_F": _apply_verdict(res["P3_full_F"])} if res.get("P3_full_F") else {}
    return {
        "P1": {"target": "<= 1.1 x minimum", "value": p1, "pass": p1 <= TARGETS["P1"]},
        "P2": {
            "target": f">= {TARGETS['P2']:g}x faster than per-resource refresh",
            "value": p2,
            "pass": p2 >= TARGETS["P2"],
        },
        "P3": _apply_verdict(res["P3"]),
        **full,
        "P4": {"target": "<= 300 MB", "value": p4, "pass": p4 <= TARGETS["P4"]},
    }


def run(
    shape: fleet.Shape,
    apply_shape: fleet.Shape,
    *,
    runs: int,
    baseline_runs: int,
    apply_runs: int,
    time_scale: float,
    parallelism: int,
    log: Any = print,
    what_if: bool = False,
    progress: str = "list",
    previous: dict[str, Any] | None = None,
    apply_key: str = "P3",
) -> dict[str, Any]:
    """The benchmark; with `previous` (a former result) only the apply is measured, the rest is kept.
    `apply_key`: where the apply's figures go ("P3", or "P3_full_F" for the full fleet)."""
    work = Path(tempfile.mkdtemp(prefix="cmkctl-bench-"))
    try:
        started = time.perf_counter()
        if previous is None:
            f = fleet.generate(shape)
            spec = fleet.write_spec(f, work / "spec")
            log(f"fleet: {shape.label()}")
            res: dict[str, Any] = {"fleet": shape.label(), "runs": runs, "baseline_runs": baseline_runs}
            res.update(measure_plan_side(f, spec, work, runs, baseline_runs, log))
        else:
            res = {k: v for k, v in previous.items() if k not in (apply_key, "P3_what_if")}
        af = fleet.generate(apply_shape)
        aspec = fleet.write_spec(af, work / "apply-spec")
        log(f"apply fleet: {apply_shape.label()}")
        res[apply_key] = measure_apply(
            af, aspec, work, time_scale=time_scale, parallelism=parallelism, runs=apply_runs, log=log,
            progress=progress,
        )
        if what_if:
            # the same apply with links free of the executor's per-cluster lock (see _worker) and
            # enough workers that they are not the limit either (the CLI allows up to 100)
            res["P3_what_if"] = measure_apply(
                af, aspec, work, time_scale=time_scale, parallelism=100, runs=1, log=log, what_if=True
            )
        res[apply_key]["measured"] = harness.machine()["date"]
        res[apply_key]["seconds"] = round(time.perf_counter() - started, 1)
        if previous is None:
            res["machine"] = harness.machine()
            res["bench_seconds"] = round(time.perf_counter() - started, 1)
        res["verdicts"] = verdicts(res)
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def merge_results(key: str, value: dict[str, Any], path: Path = RESULTS) -> None:
    """Merge, never clobber: other benchmarks own other keys."""
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    data[key] = value
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _apply_row(p3: dict[str, Any], verdict: dict[str, Any], mark: dict[bool, str], *, full: bool) -> str:
    what = "full fleet F" if full else f"{p3.get('links', '?')} links, `make bench`"
    run0 = p3["runs"][0]
    return (
        f"| P3 apply makespan vs lower bound ({what}) | <= 1.1, no 429 storms, peak RSS <= 500 MB | "
        f"**{p3.get('ratio_to_lower_bound')}x** ({run0['makespan_s'] / 3600:.2f} h vs "
        f"{run0['lower_bound_s'] / 3600:.2f} h), {p3['arm_429_median']:.0f} x 429 in {run0['arm_requests']} "
        f"requests, reads {p3['max_reads_one_subscription']} of a budget of "
        f"{p3['read_budget_one_subscription']} (busiest subscription), peak RSS {p3.get('peak_rss_mb')} MB "
        f"| {mark[verdict['pass']]} |"
    )


def _apply_detail(p3: dict[str, Any], label: str) -> str:
    return (
        f"{label}: {p3['fleet']}, `--parallelism {p3['parallelism']}`, time scale "
        f"{p3['time_scale']:g}, link progress from {p3.get('progress', 'list')}, measured "
        f"{p3.get('measured', '?')}, per run: "
        + "; ".join(
            f"makespan {r['makespan_s'] / 3600:.2f} h (lower bound {r['lower_bound_s'] / 3600:.2f} h, "
            f"critical path {r['critical_path_s'] / 3600:.2f} h), {r['arm_requests']} ARM requests, "
            f"{r['arm_429']} x 429, reads of the busiest subscription {r['max_reads_one_subscription']} "
            f"of a budget of {r['read_budget_one_subscription']}, peak RSS {r.get('peak_rss_mb')} MB, "
            f"{r.get('max_threads')} threads at most, {r['real_seconds']} s real, "
            f"ours {r['our_cpu_s']} s CPU / emulator {r['emulator_cpu_s']} s CPU, "
            f"load average {r.get('load_average')}, "
            f"{r['harm_events']} harm events"
            for r in p3["runs"]
        )
        + f". Critical path: {p3['runs'][0]['critical_path']}."
    )


def table(res: dict[str, Any]) -> str:
    v = res["verdicts"]
    p1, p2, p4 = res["P1"], res["P2"], res["P4"]
    mark = {True: "pass", False: "**FAIL**"}
    rows = [
        "| metric | target | measured | result |",
        "|---|---|---|---|",
        f"| P1 ARM requests per plan | <= 1.1 x minimum | {p1['arm_requests']:.0f} vs minimum "
        f"{p1['minimum']} "
        f"= **{p1['ratio']}x** | {mark[v['P1']['pass']]} |",
        f"| P2 plan vs per-resource refresh | >= {TARGETS['P2']:g}x faster | plan "
        f"{p2['plan_wall_s_median']} s, refresh "
        f"{p2['baseline_wall_s_median']} s ({p2['baseline_gets']} GETs) = **{p2['speedup']}x** | "
        f"{mark[v['P2']['pass']]} |",
        *(
            _apply_row(res[key], v[key], mark, full=key == "P3_full_F")
            for key in ("P3_full_F", "P3")
            if res.get(key) and key in v
        ),
        *(
            [
                f"| (what-if) P3 with links free of the per-cluster lock | <= 1.1 | "
                f"**{res['P3_what_if']['ratio_to_lower_bound']}x**, "
                f"{res['P3_what_if']['arm_429_median']:.0f} x 429 | not the product |"
            ]
            if res.get("P3_what_if")
            else []
        ),
        f"| P4 peak RSS, no-op reconcile | <= 300 MB | **{p4['peak_rss_mb_median']} MB** | "
        f"{mark[v['P4']['pass']]} |",
    ]
    return "\n".join(rows)


def write_readme(res: dict[str, Any], path: Path = README) -> None:
    """Replace the generated block of bench/README.md (the prose around it is kept)."""
    begin, end = "<!-- scale:begin -->", "<!-- scale:end -->"
    m = res["machine"]
    p2, p3 = res["P2"], res["P3"]
    block = "\n".join(
        [
            begin,
            f"Measured {m['date']} on {m['nproc']} CPUs ({m['cpu']}), {m['ram_gb']} GB RAM, Python "
            f"{m['python']}. Fleet F: {res['fleet']}. Medians of {res['runs']} runs "
            f"(per-resource refresh baseline: {res['baseline_runs']} run(s); apply: {len(p3['runs'])} "
            f"run(s) on {p3['fleet']}, measured {p3.get('measured', m['date'])} in "
            f"{p3.get('seconds', '?')} s). Whole benchmark: {res['bench_seconds']} s.",
            "",
            table(res),
            "",
            "Plan runs: "
            + ", ".join(
                f"{w} s (load average {a[0]:g} -> {a[1]:g})"
                for w, a in zip(p2["plan_wall_s_all"], p2.get("plan_load_average", []), strict=False)
            )
            + ". Our CPU vs the emulator's (separate processes): "
            f"plan {p2['plan_our_cpu_s_median']} s ours / "
            f"{p2['plan_emulator_cpu_s_median']} s emulator; refresh baseline "
            f"{p2['baseline_our_cpu_s_median']} s ours / {p2['baseline_emulator_cpu_s_median']} s emulator. "
            f"Under ARM's real read limit (250 burst, 25/s per subscription) the baseline's GETs alone "
            f"would need >= {p2['baseline_min_seconds_under_arm_read_limit']} s per subscription; the plan "
            f"stays inside the burst.",
            "",
            _apply_detail(p3, "P3 detail")
            + (
                f" What-if (links free of the per-cluster lock, 100 workers): makespan "
                f"{res['P3_what_if']['runs'][0]['makespan_s'] / 3600:.2f} h."
                if res.get("P3_what_if")
                else ""
            ),
            *(["", _apply_detail(res["P3_full_F"], "P3 on the full fleet F (`make bench-full`)")]
              if res.get("P3_full_F") else []),
            end,
        ]
    )
    harness.replace_block(path, begin, end, block)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    p.add_argument("--subscriptions", type=int, default=10)
    p.add_argument("--workspaces", type=int, default=40_000)
    p.add_argument("--byos", type=int, default=400)
    p.add_argument("--runs", type=int, default=3)
    # one refresh baseline (~200 s of steady GETs, little spread between runs) keeps `make bench` near 20 min
    p.add_argument("--baseline-runs", type=int, default=1)
    p.add_argument("--apply-subscriptions", type=int, default=1)
    p.add_argument("--apply-workspaces", type=int, default=400)
    p.add_argument("--apply-byos", type=int, default=4)
    p.add_argument("--apply-runs", type=int, default=3)
    p.add_argument(
        "--time-scale", type=float, default=None,
        help=f"simulated seconds per real second (P3; default 120, {FULL_TIME_SCALE:g} with --full-apply)",
    )
    p.add_argument("--parallelism", type=int, default=10, help="apply --parallelism (P3)")
    p.add_argument("--no-write", action="store_true", help="print only; leave results.json and README")
    p.add_argument("--only-apply", action="store_true", help="measure P3 only; keep the other figures")
    p.add_argument("--what-if", action="store_true", help="also P3 with links free of the cluster lock")
    p.add_argument(
        "--full-apply", action="store_true",
        help="P3 on the full fleet F, once, kept as P3_full_F beside the other figures (`make bench-full`)",
    )
    p.add_argument(
        "--progress", choices=["list", "polls"], default="list",
        help="P3: link progress from workspaces lists (the product) or per-operation polls only",
    )
    args = p.parse_args(argv)
    previous = None
    if args.only_apply or args.full_apply:
        previous = json.loads(RESULTS.read_text(encoding="utf-8")).get("scale") if RESULTS.exists() else None
        if not previous or "P1" not in previous:
            p.error("--only-apply needs a full result in bench/results.json to keep")
    shape = fleet.Shape(subscriptions=args.subscriptions, workspaces=args.workspaces, byos_links=args.byos)
    apply_shape = fleet.Shape(
        subscriptions=args.apply_subscriptions, workspaces=args.apply_workspaces, byos_links=args.apply_byos
    )
    time_scale = args.time_scale or (FULL_TIME_SCALE if args.full_apply else 120.0)
    if args.full_apply:
        apply_shape = fleet.Shape()
    res = run(
        shape,
        apply_shape,
        runs=args.runs,
        baseline_runs=args.baseline_runs,
        apply_runs=1 if args.full_apply else args.apply_runs,
        time_scale=time_scale,
        parallelism=args.parallelism,
        log=lambda s: print(s, flush=True),
        what_if=args.what_if,
        progress=args.progress,
        previous=previous,
        apply_key="P3_full_F" if args.full_apply else "P3",
    )
    # the applies measured apart (`make bench-full`'s run, the recorded comparisons) are kept until
    # measured again; a full F run supersedes the partial one
    kept = json.loads(RESULTS.read_text(encoding="utf-8")).get("scale", {}) if RESULTS.exists() else {}
    for key, value in kept.items():
        if key.startswith("P3_") and key not in res:
            res[key] = value
    if "P3_full_F" in res:
        res.pop("P3_full_F_partial", None)
    res["verdicts"] = verdicts(res)
    print(table(res))
    if not args.no_write:
        merge_results("scale", res)
        write_readme(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
