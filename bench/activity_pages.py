"""How many Activity Log pages one plan reads (rule W3/C11 history) with realistic noise.

`python -m bench.activity_pages WORKSPACES NOISE`: one subscription of the bench fleet with WORKSPACES
linked workspaces, each with its cluster link and NOISE other OperationalInsights writes in the window
(tables, saved searches, data sources, the workspace, the Automation linked service), every write as
ARM logs it (Started/Accepted/Succeeded). Prints the pages of `eventtypes/management/values` one plan
reads at the emulator's page size. Pages grow linearly with workspaces per subscription.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench import fleet, harness


def main(argv: list[str]) -> int:
    workspaces, noise = (int(argv[0]), int(argv[1])) if len(argv) >= 2 else (400, 6)
    f = fleet.generate(fleet.Shape(subscriptions=1, workspaces=workspaces, byos_links=4))
    estate = fleet.estate(f, applied=True)
    for w in estate["workspaces"]:
        w["activity_noise"] = noise
        w["link_ops"] = [{"time": "2026-11-20T00:00:00Z", "kind": "link"}]
    with tempfile.TemporaryDirectory() as tmp, harness.EmulatorProcess(time_scale=0.0) as em:
        em.seed(estate)
        spec = fleet.write_spec(f, Path(tmp))
        em.clear_requests()
        harness.run_worker(em, "plan", str(spec))
        pages = [r for r in em.requests() if r["path"].lower().endswith("/eventtypes/management/values")]
    print(f"{workspaces} workspaces x {noise} other writes: {len(pages)} Activity Log pages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
