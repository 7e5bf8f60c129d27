"""`python -m bench` (`make bench`): run every benchmark module in this folder that defines `main`.

Each benchmark merges its own key into bench/results.json. `reliability` has its own target."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

SKIP = {"__main__", "__init__", "reliability"}


def main() -> int:
    here = Path(__file__).resolve().parent
    failures = 0
    for path in sorted(here.glob("*.py")):
        if path.stem in SKIP or path.stem.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{path.stem}")
        run = getattr(module, "main", None)
        if run is None:
            continue
        print(f"== bench.{path.stem}", flush=True)
        failures += 1 if run([]) else 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
