"""`python -m emulator`: serve until SIGTERM/SIGINT; once ready, write and print the env file."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from emulator.clock import parse_time
from emulator.server import load_estate, start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emulator", description="Azure emulator for cmk-controller")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = a free port")
    p.add_argument("--env-file", help="write CMKCTL_EMULATOR / CMKCTL_CA_BUNDLE here (shell-sourceable)")
    p.add_argument("--clock", help="simulated start time, ISO-8601")
    p.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per real second")
    p.add_argument("--seed", help="estate file (JSON or YAML) to load at start")
    p.add_argument("--limits", choices=["seed", "current"], default="seed")
    args = p.parse_args(argv)
    try:
        estate = load_estate(args.seed) if args.seed else None
        clock = parse_time(args.clock) if args.clock else None
        running = start(
            host=args.host,
            port=args.port,
            clock=clock,
            time_scale=args.time_scale,
            limits=args.limits,
            seed_estate=estate,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"emulator: cannot start: {exc}", file=sys.stderr)
        return 2
    text = running.env_text()
    if args.env_file:
        Path(args.env_file).write_text(text, encoding="utf-8")
    print(text, end="", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
