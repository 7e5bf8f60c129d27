"""Cost growth: plan time, apply CPU and peak RSS at 5,000, 10,000, 20,000 and 40,000 workspaces.

    python -m bench.growth [--sizes 5000,10000,20000,40000] [--apply-fraction 0.25] [--runs 3]

Every size is fleet F's shape (`bench/fleet.py`: 10 subscriptions x 2 regions x 2 clusters, BYOS on
1 % of the workspaces) with the workspaces scaled, so only the workspace count changes. Per size:

* **plan**: `plan` against the emulator seeded with the applied estate, throttling off (as P2): wall
  time, our CPU, the worker's peak RSS (`VmHWM`). Medians of `--runs` fresh worker processes.
* **apply**: apply from the empty estate with every simulated duration 0 (create, key update, link
  complete at once), throttling off, `--parallelism 10`: the apply's CPU (the worker process's, startup
  included) and peak RSS. What it measures is our work per step, not Azure's waits. The apply fleet has
  the same shape and `--apply-fraction` of the plan's workspaces (1/4 by default: 1,250 to 10,000
  links; all four full sizes would be 75,000 links, ~20 min of apply on 2 cores); `--apply-fraction 1`
  applies the full sizes.

Each metric's growth exponent is the least-squares slope of log(metric) on log(workspaces): 1 is
linear. A metric with a large fixed part (RSS: the interpreter and the SDKs, ~100 MB) shows a slope
below 1 even when its variable part is linear. Results merge into bench/results.json under `growth`;
the table in bench/README.md and the chart bench/growth.svg are regenerated.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from bench import fleet, harness
from bench.scale import merge_results

README = Path(__file__).resolve().parent / "README.md"
CHART = Path(__file__).resolve().parent / "growth.svg"
SIZES = (5_000, 10_000, 20_000, 40_000)
# growth faster than this (log-log slope) is a finding: measurement noise on a shared machine stays below
MAX_EXPONENT = 1.1
# every operation completes at once: the apply's cost is ours (requests, journal, planning), not waiting
ZERO_DURATIONS = {
    "cluster_create": 0.0,
    "cluster_update": 0.0,
    "cluster_delete": 0.0,
    "link": 0.0,
    "unlink": 0.0,
    "workspace_create": 0.0,
}
# (key in a size's results, label, unit)
METRICS = (
    ("plan_wall_s", "plan wall time", "s"),
    ("plan_cpu_s", "plan CPU (ours)", "s"),
    ("plan_peak_rss_mb", "plan peak RSS", "MB"),
    ("apply_cpu_s", "apply CPU (ours)", "s"),
    ("apply_peak_rss_mb", "apply peak RSS", "MB"),
)


def shape_for(workspaces: int, subscriptions: int = 10) -> fleet.Shape:
    """Fleet F's shape with `workspaces` workspaces, BYOS on 1 % of them."""
    return fleet.Shape(subscriptions=subscriptions, workspaces=workspaces, byos_links=workspaces // 100)


def growth_exponent(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) on log(x): how a metric grows with x (1.0 = linearly)."""
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(points) < 2:
        return None
    mx = statistics.fmean(p[0] for p in points)
    my = statistics.fmean(p[1] for p in points)
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def measure_size(
    workspaces: int, apply_workspaces: int, *, subscriptions: int, runs: int, work: Path, log: Any
) -> dict[str, Any]:
    """Plan (medians of `runs`) and one apply at one size."""
    f = fleet.generate(shape_for(workspaces, subscriptions))
    spec = fleet.write_spec(f, work / f"spec-{workspaces}")
    plans: list[dict[str, Any]] = []
    with harness.EmulatorProcess(time_scale=0.0) as em:
        em.seed(fleet.estate(f, applied=True))
        for i in range(runs):
            before = _load()
            r = harness.run_worker(em, "plan", str(spec))
            r["load_before"], r["load_after"] = before, _load()
            plans.append(r)
            log(f"  {workspaces} workspaces, plan run {i + 1}: {r['wall_s']:.2f}s wall, "
                f"{r['action_cpu_s']:.2f}s CPU, peak RSS {r['peak_rss_mb']:.0f} MB, {r['changes']} changes, "
                f"load {before} -> {r['load_after']}")
    shutil.rmtree(spec, ignore_errors=True)

    af = fleet.generate(shape_for(apply_workspaces, subscriptions))
    aspec = fleet.write_spec(af, work / f"apply-spec-{apply_workspaces}")
    with harness.EmulatorProcess(time_scale=1.0, durations=ZERO_DURATIONS) as em:
        em.seed(fleet.estate(af, applied=False))
        em.clear_requests()
        before = _load()
        a = harness.run_worker(
            em, "apply", str(aspec), "--state", str(work / f"apply-state-{apply_workspaces}"),
            "--parallelism", "10", timeout=3600,
        )
        arm = sum(1 for r in em.requests() if r["host"] == harness.ARM_HOST)
    after = _load()
    log(f"  {apply_workspaces} links applied: exit {a['exit_code']}, {a['wall_s']:.1f}s wall, "
        f"{a['cpu_s']:.1f}s CPU, peak RSS {a['peak_rss_mb']:.0f} MB, {arm} ARM requests, "
        f"load {before} -> {after}")
    return {
        "workspaces": workspaces,
        "plan_wall_s": round(statistics.median(p["wall_s"] for p in plans), 3),
        "plan_cpu_s": round(statistics.median(p["action_cpu_s"] for p in plans), 3),
        "plan_peak_rss_mb": round(statistics.median(p["peak_rss_mb"] for p in plans), 1),
        "plan_wall_s_all": [round(p["wall_s"], 3) for p in plans],
        "plan_changes": plans[0]["changes"],
        "plan_load_average": [[p["load_before"], p["load_after"]] for p in plans],
        "apply_workspaces": apply_workspaces,
        "apply_links": len(af.workspaces) + af.byos_links,
        "apply_cpu_s": round(a["cpu_s"], 2),
        "apply_wall_s": round(a["wall_s"], 2),
        "apply_peak_rss_mb": round(a["peak_rss_mb"], 1),
        "apply_exit_code": a["exit_code"],
        "apply_arm_requests": arm,
        "apply_load_average": [before, after],
    }


def run(
    sizes: list[int],
    *,
    apply_fraction: float,
    subscriptions: int = 10,
    runs: int = 3,
    log: Any = print,
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="cmkctl-growth-"))
    started = time.perf_counter()
    try:
        rows = [
            measure_size(
                n,
                max(1, round(n * apply_fraction)),
                subscriptions=subscriptions,
                runs=runs,
                work=work,
                log=log,
            )
            for n in sorted(sizes)
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    exponents: dict[str, float | None] = {}
    for key, _, _ in METRICS:
        xs = [float(r["apply_workspaces"] if key.startswith("apply") else r["workspaces"]) for r in rows]
        e = growth_exponent(xs, [float(r[key]) for r in rows])
        exponents[key] = round(e, 3) if e is not None else None
    return {
        "fleet": f"{subscriptions} subscriptions x 2 regions x 2 clusters, BYOS on 1 % of workspaces",
        "sizes": sorted(sizes),
        "apply_fraction": apply_fraction,
        "apply": "from empty, every simulated duration 0, throttling off, --parallelism 10",
        "runs": runs,
        "rows": rows,
        "exponents": exponents,
        "max_exponent": MAX_EXPONENT,
        "linear": all(e is None or e <= MAX_EXPONENT for e in exponents.values()),
        "machine": harness.machine(),
        "bench_seconds": round(time.perf_counter() - started, 1),
    }


def table(res: dict[str, Any]) -> str:
    rows = res["rows"]
    head = "| workspaces | " + " | ".join(f"{label} ({unit})" for _, label, unit in METRICS) + " |"
    lines = [head, "|---" * (len(METRICS) + 1) + "|"]
    for r in rows:
        cells = [f"{r['workspaces']:,}"]
        for key, _, _ in METRICS:
            cells.append(f"{r[key]:g}")
        lines.append("| " + " | ".join(cells) + " |")
    exps = res["exponents"]
    lines.append(
        "| **growth exponent** | "
        + " | ".join(f"**{exps[key]:.2f}**" if exps[key] is not None else "-" for key, _, _ in METRICS)
        + " |"
    )
    return "\n".join(lines)


# -- the chart: a small hand-written SVG (log-log), no plotting dependency -------------------------

_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


def chart_svg(res: dict[str, Any], width: int = 640, height: int = 400) -> str:
    """Each metric relative to its value at the smallest size, on log-log axes, with the linear
    reference (slope 1) dashed: a line steeper than the reference grows faster than linearly."""
    rows = res["rows"]
    left, right, top, bottom = 60, 190, 30, 50
    pw, ph = width - left - right, height - top - bottom
    x0 = rows[0]["workspaces"]
    xs = [r["workspaces"] / x0 for r in rows]
    series: list[tuple[str, list[float]]] = []
    for key, label, _ in METRICS:
        base = rows[0][key]
        if base and all(r[key] > 0 for r in rows):
            series.append((f"{label} ({res['exponents'][key]:.2f})", [r[key] / base for r in rows]))
    ymax = max([max(xs)] + [max(v) for _, v in series])
    ymin = min([1.0] + [min(v) for _, v in series])
    lx_max = math.log(max(xs)) or 1.0
    ly_min, ly_max = math.log(ymin), math.log(ymax)
    span = (ly_max - ly_min) or 1.0

    def px(x: float) -> float:
        return left + pw * math.log(x) / lx_max

    def py(y: float) -> float:
        return top + ph * (1 - (math.log(y) - ly_min) / span)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="13">Cost growth with workspaces (log-log, relative to '
        f'{x0:,}; exponent in brackets)</text>',
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>',
    ]
    base_y = top + ph
    for r, x in zip(rows, xs, strict=True):
        at = f"{px(x):.1f}"
        out.append(f'<line x1="{at}" y1="{base_y}" x2="{at}" y2="{base_y + 4}" stroke="black"/>')
        out.append(f'<text x="{at}" y="{base_y + 16}" text-anchor="middle">{r["workspaces"]:,}</text>')
    tick = 1.0
    while tick <= ymax * 1.0001:
        if tick >= ymin * 0.9999:
            at = f"{py(tick):.1f}"
            out.append(f'<line x1="{left - 4}" y1="{at}" x2="{left}" y2="{at}" stroke="black"/>')
            out.append(f'<text x="{left - 6}" y="{py(tick) + 4:.1f}" text-anchor="end">{tick:g}x</text>')
        tick *= 2
    fraction = res.get("apply_fraction", 1.0)
    axis = "workspaces" + (f" (apply at {fraction:g} of each size)" if fraction != 1 else "")
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 12}" text-anchor="middle">{escape(axis)}</text>')
    ref = " ".join(f"{px(x):.1f},{py(x):.1f}" for x in xs)
    out.append(f'<polyline points="{ref}" fill="none" stroke="#888" stroke-dasharray="5,4"/>')
    legend = [("linear (1.00)", "#888", True)]
    for (label, values), colour in zip(series, _COLOURS, strict=False):
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, values, strict=True))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in zip(xs, values, strict=True):
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
        legend.append((label, colour, False))
    for i, (label, colour, dashed) in enumerate(legend):
        y = top + 10 + 18 * i
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        out.append(f'<line x1="{left + pw + 12}" y1="{y}" x2="{left + pw + 32}" y2="{y}" stroke="{colour}" '
                   f'stroke-width="2"{dash}/>')
        out.append(f'<text x="{left + pw + 36}" y="{y + 4}">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_readme(res: dict[str, Any], path: Path = README) -> None:
    """Replace the generated growth block of bench/README.md (the prose around it is kept)."""
    begin, end = "<!-- growth:begin -->", "<!-- growth:end -->"
    m = res["machine"]
    rows = res["rows"]
    loads = [x for r in rows for pair in r["plan_load_average"] for x in pair] + [
        x for r in rows for x in r["apply_load_average"]
    ]
    exps = res["exponents"]
    worst = max((e for e in exps.values() if e is not None), default=0.0)
    block = "\n".join(
        [
            begin,
            f"Measured {m['date']} on {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}; load average "
            f"(1 min) {min(loads):g} to {max(loads):g} during the runs. Fleet: {res['fleet']}. Plan: medians "
            f"of {res['runs']} runs. Apply: {res['apply']}, on "
            + ", ".join(f"{r['apply_workspaces']:,}" for r in rows)
            + f" workspaces ({res['apply_fraction']:g} of each size; apply columns are at those sizes, and "
            f"their exponents fitted on them). Whole growth benchmark: {res['bench_seconds']} s.",
            "",
            table(res),
            "",
            f"Largest exponent **{worst:.2f}** (target: none above {res['max_exponent']}): "
            + ("every metric grows at most linearly." if res["linear"] else "**a metric grows faster than "
               "linearly**."),
            "",
            "![cost growth, log-log](growth.svg)",
            end,
        ]
    )
    harness.replace_block(path, begin, end, block)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.growth", description=__doc__.split("\n")[0])
    p.add_argument(
        "--sizes", default=",".join(str(s) for s in SIZES), help="workspace counts, comma-separated"
    )
    p.add_argument("--subscriptions", type=int, default=10)
    p.add_argument("--apply-fraction", type=float, default=0.25, help="apply's workspaces / plan's")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-write", action="store_true", help="print only; leave results.json, README, chart")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    res = run(
        sizes,
        apply_fraction=args.apply_fraction,
        subscriptions=args.subscriptions,
        runs=args.runs,
        log=lambda s: print(s, flush=True),
    )
    print(table(res))
    if not args.no_write:
        merge_results("growth", res)
        write_readme(res)
        CHART.write_text(chart_svg(res), encoding="utf-8")
    return 0 if res["linear"] and all(r["apply_exit_code"] == 0 for r in res["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
