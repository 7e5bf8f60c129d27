"""Benchmark: link PUTs per second the emulator serves with a large estate seeded.

Why: an apply of fleet F sends 40,000 link PUTs, each leaving a 90-minute operation pending; the
emulator must answer them fast enough that the scale benchmark measures the product, not the
emulator. The emulator runs in its own process (`python -m emulator`, default durations, time scale
5 as full F), seeded over its admin API with `--workspaces` workspaces (1,000 per cluster, 4,000 per
subscription, all in eastus); `--threads` clients then PUT `--links` links (spread over the
clusters) through HTTPS with keep-alive; `--keyed` gives every cluster a key (rechecked, rules K1-K3,
when a write or the clock makes it due). Prints requests/s and the emulator's CPU seconds.
Run: `.venv/bin/python -m bench.emulator_links [--workspaces 40000] [--links 2000] [--keyed]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import requests

from bench import harness

PER_CLUSTER = 1000  # rule W1's limit: a cluster takes at most 1,000 workspaces
PER_SUBSCRIPTION = 4000
API = "2025-07-01"


def _sub(i: int) -> str:
    return f"00000000-0000-0000-0000-{i:012d}"


KEY_VERSION = "0" * 31 + "1"
PRINCIPAL = "31111111-2222-4333-8444-000000000001"
UAI = (
    f"/subscriptions/{'0' * 8}-0000-0000-0000-{'0' * 12}/resourceGroups/rg"
    "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-bench"
)


def _estate(workspaces: int, keyed: bool) -> dict[str, Any]:
    clusters = max(1, (workspaces + PER_CLUSTER - 1) // PER_CLUSTER)
    key: dict[str, Any] = {}
    if keyed:  # as in an apply of F: every cluster has its key while links are sent (rules K1-K3)
        key = {
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}},
            "key": {
                "keyVaultUri": "https://kvbench.vault.azure.net/",
                "keyName": "cmk",
                "keyVersion": KEY_VERSION,
            },
        }
    return {
        "identities": [{"id": UAI, "principal_id": PRINCIPAL}] if keyed else [],
        "vaults": [
            {
                "name": "kvbench",
                "subscription": _sub(0),
                "resourceGroup": "rg",
                "location": "eastus",
                "softDelete": True,
                "purgeProtection": True,
                "accessPolicies": [{"objectId": PRINCIPAL, "keys": ["get", "wrapKey", "unwrapKey"]}],
                "keys": [{"name": "cmk", "versions": [{"version": KEY_VERSION}]}],
            }
        ]
        if keyed
        else [],
        "clusters": [
            {
                "subscription": _sub(c * PER_CLUSTER // PER_SUBSCRIPTION),
                "resource_group": "rg",
                "name": f"cl-{c:03d}",
                "location": "eastus",
                **key,
            }
            for c in range(clusters)
        ],
        "workspaces": [
            {
                "subscription": _sub(i // PER_SUBSCRIPTION),
                "resource_group": "rg",
                "name": f"ws-{i:06d}",
                "location": "eastus",
            }
            for i in range(workspaces)
        ],
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(workspaces: int, links: int, threads: int, keyed: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / "env"
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator", "--time-scale", "5", "--env-file", str(env_file)],
            stdout=subprocess.DEVNULL,
        )
        try:
            while not env_file.exists() or not env_file.read_text(encoding="utf-8").strip():
                if proc.poll() is not None:
                    raise SystemExit("the emulator did not start")
                time.sleep(0.1)
            env = dict(
                line.removeprefix("export ").split("=", 1)
                for line in env_file.read_text(encoding="utf-8").splitlines()
            )
            port = int(urllib.parse.urlsplit(env["CMKCTL_EMULATOR"]).port or 443)
            ca = env["CMKCTL_CA_BUNDLE"]

            def session() -> requests.Session:
                s = requests.Session()
                s.trust_env = False
                s.mount("https://", harness.EmulatorRedirect(port))
                s.verify = ca
                return s

            admin = session()
            base = "https://management.azure.com"
            admin.post(f"{base}/_emulator/config", json={"throttling": False}, timeout=60).raise_for_status()
            estate = _estate(workspaces, keyed)
            admin.post(f"{base}/_emulator/seed", json=estate, timeout=600).raise_for_status()
            clusters = max(1, (workspaces + PER_CLUSTER - 1) // PER_CLUSTER)
            # link i: workspace i * stride, so the links spread over every cluster and subscription
            stride = max(1, workspaces // links)
            todo = [min(i * stride, workspaces - 1) for i in range(links)]
            statuses: dict[int, int] = {}
            lock = threading.Lock()

            def worker(mine: list[int]) -> None:
                s = session()
                for i in mine:
                    c = i // PER_CLUSTER % clusters
                    cluster_id = (
                        f"/subscriptions/{_sub(c * PER_CLUSTER // PER_SUBSCRIPTION)}/resourceGroups/rg"
                        f"/providers/Microsoft.OperationalInsights/clusters/cl-{c:03d}"
                    )
                    r = s.put(
                        f"{base}/subscriptions/{_sub(i // PER_SUBSCRIPTION)}/resourceGroups/rg/providers"
                        f"/Microsoft.OperationalInsights/workspaces/ws-{i:06d}/linkedServices/cluster"
                        f"?api-version={API}",
                        json={"properties": {"writeAccessResourceId": cluster_id}},
                        headers={"Authorization": "Bearer bench"},
                        timeout=120,
                    )
                    with lock:
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

            cpu0, t0 = _cpu_seconds(proc.pid), time.perf_counter()
            pool = [threading.Thread(target=worker, args=(todo[k::threads],)) for k in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            wall, cpu = time.perf_counter() - t0, _cpu_seconds(proc.pid) - cpu0
            return {
                "workspaces": workspaces,
                "link_puts": links,
                "threads": threads,
                "keyed_clusters": keyed,
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
                "seconds": round(wall, 2),
                "puts_per_second": round(links / wall, 1),
                "emulator_cpu_seconds": round(cpu, 2),
                "emulator_cpu_ms_per_put": round(1000 * cpu / links, 2),
                "load_average": [round(x, 1) for x in os.getloadavg()],
            }
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspaces", type=int, default=4000)
    p.add_argument("--links", type=int, default=2000)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--keyed", action="store_true", help="every cluster has a customer-managed key")
    args = p.parse_args(argv)
    print(json.dumps(run(args.workspaces, args.links, args.threads, args.keyed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
