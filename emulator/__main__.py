"""`python -m emulator`: serve until SIGTERM/SIGINT; once ready, write and print the env file."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from emulator.clock import parse_time
from emulator.clouds import CLOUDS
from emulator.limits import DEFAULT_PROFILE, PROFILES
from emulator.server import load_estate, start
from emulator.state import DEFAULT_DURATIONS


def _durations(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("--durations is a JSON object of operation kind to seconds")
    unknown = sorted(set(data) - set(DEFAULT_DURATIONS))
    if unknown:
        raise ValueError(
            f"--durations: unknown operation kinds {unknown}; known: {sorted(DEFAULT_DURATIONS)}"
        )
    return {str(k): float(v) for k, v in data.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emulator", description="Azure emulator for cmk-controller")
    p.add_argument("--host", metavar="ADDRESS", default="127.0.0.1")
    p.add_argument("--port", metavar="PORT", type=int, default=0, help="0 = a free port")
    p.add_argument(
        "--env-file", metavar="FILE", help="write CMKCTL_EMULATOR / CMKCTL_CA_BUNDLE here (shell-sourceable)"
    )
    p.add_argument("--clock", metavar="TIME", help="simulated start time, ISO-8601")
    p.add_argument(
        "--time-scale", metavar="FACTOR", type=float, default=1.0, help="simulated seconds per real second"
    )
    p.add_argument("--seed", metavar="FILE", help="estate file (JSON or YAML) to load at start")
    p.add_argument(
        "--limits",
        choices=sorted(PROFILES),
        default=DEFAULT_PROFILE,
        help="current: what Azure enforces today (default); seed: the 2021 documented limits",
    )
    p.add_argument(
        "--cloud",
        choices=list(CLOUDS),
        default="AzureCloud",
        help="which Azure to play (its Resource Manager, Key Vault and Managed HSM host names)",
    )
    p.add_argument(
        "--durations",
        metavar="JSON",
        help='simulated seconds per operation kind, JSON, e.g. \'{"cluster_create": 60, "link": 30}\' '
        "(defaults: create 2 h, key update 2 min, delete 1 min, link/unlink 90 min)",
    )
    args = p.parse_args(argv)
    try:
        estate = load_estate(args.seed) if args.seed else None
        clock = parse_time(args.clock) if args.clock else None
        durations = _durations(args.durations)
        running = start(
            durations=durations,
            host=args.host,
            port=args.port,
            clock=clock,
            time_scale=args.time_scale,
            limits=args.limits,
            seed_estate=estate,
            cloud=args.cloud,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"emulator: cannot start: {exc}", file=sys.stderr)
        return 2
    # Installed before the env is out (a caller may stop us at once). The handler only appends to a
    # list: setting a threading.Event from a handler can deadlock when the signal lands while the main
    # thread holds the Event's lock inside wait().
    stopping: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    text = running.env_text()
    if args.env_file:
        Path(args.env_file).write_text(text, encoding="utf-8")
    print(text, end="", flush=True)
    while not stopping:
        time.sleep(0.1)
    running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
