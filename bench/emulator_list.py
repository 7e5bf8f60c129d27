"""Benchmark: list 40,000 workspaces through the real LogAnalyticsManagementClient against the emulator.

Why: the product observes whole subscriptions; the emulator must serve a large estate fast enough that
benchmarks measure the product, not the emulator. Writes `emulator_list_40k` into bench/results.json
(merging with other keys). Run: `.venv/bin/python bench/emulator_list.py [--count N] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import requests
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from azure.mgmt.loganalytics import LogAnalyticsManagementClient

from bench import harness
from emulator.server import start

SUB = "00000000-0000-0000-0000-0000000000b1"
RESULTS = Path(__file__).resolve().parent / "results.json"


class _Token:
    def get_token(self, *scopes: str, **kw: Any) -> AccessToken:
        return AccessToken("bench", 4_102_444_800)


def run(count: int, repeat: int) -> dict[str, Any]:
    running = start(time_scale=0.0)
    try:
        t0 = time.perf_counter()
        running.state.lock.acquire()
        try:
            from emulator.admin import seed

            seed(
                running.state,
                {
                    "workspaces": [
                        {
                            "subscription": SUB,
                            "resource_group": f"rg{i % 40}",
                            "name": f"ws-{i:06d}",
                            "location": "eastus",
                        }
                        for i in range(count)
                    ]
                },
            )
        finally:
            running.state.lock.release()
        seed_s = time.perf_counter() - t0
        session = requests.Session()
        session.trust_env = False
        session.mount("https://", harness.EmulatorRedirect(running.port))
        client = LogAnalyticsManagementClient(
            _Token(), SUB, transport=RequestsTransport(session=session, connection_verify=running.ca_file)
        )
        timings = []
        for _ in range(repeat):
            t1 = time.perf_counter()
            n = sum(1 for _ in client.workspaces.list())
            timings.append(time.perf_counter() - t1)
            if n != count:
                raise SystemExit(f"listed {n} workspaces, expected {count}")
        # The emulator's own share: one raw GET of the same list, no SDK deserialisation.
        t2 = time.perf_counter()
        raw = session.get(
            f"https://management.azure.com/subscriptions/{SUB}/providers/Microsoft.OperationalInsights/workspaces"
            "?api-version=2025-07-01",
            headers={"Authorization": "Bearer bench"},
            verify=running.ca_file,
            timeout=120,
        )
        raw_s = time.perf_counter() - t2
        return {
            "workspaces": count,
            "sdk_list_seconds_median": round(statistics.median(timings), 3),
            "sdk_list_seconds_all": [round(t, 3) for t in timings],
            "raw_http_list_seconds": round(raw_s, 3),
            "response_bytes": len(raw.content),
            "seed_seconds": round(seed_s, 3),
            "sdk": "azure-mgmt-loganalytics "
            + __import__("importlib.metadata").metadata.version("azure-mgmt-loganalytics"),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    finally:
        running.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--count", type=int, default=40_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    result = run(args.count, args.repeat)
    data: dict[str, Any] = {}
    if RESULTS.exists():
        data = json.loads(RESULTS.read_text(encoding="utf-8") or "{}")
    key = "emulator_list_40k" if args.count == 40_000 else f"emulator_list_{args.count}"
    data[key] = result
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps({key: result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
