"""Property: whatever estate Azure holds (names, casings, region spellings, links, dates), observe()
reports it faithfully — the planner's view never invents or loses a cluster, a link or a SKU date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests_azure_support import SUB, cluster_doc, workspace_id, write_spec

from controller.azure.clients import AzureClients
from controller.azure.observe import observe
from controller.model import ids

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
REGIONS = {"westeurope": ["westeurope", "West Europe"], "eastus": ["eastus", "East US"]}


@st.composite
def estates(draw: Any) -> dict[str, Any]:
    n_clusters = draw(st.integers(0, 3))
    clusters = []
    for i in range(n_clusters):
        region = draw(st.sampled_from(sorted(REGIONS)))
        clusters.append(
            {
                "subscription": SUB,
                "resource_group": draw(st.sampled_from(["rg-a", "RG-B", "Rg-C"])),
                "name": f"c{i}{draw(st.text('abcXYZ019', min_size=2, max_size=8))}",
                "location": draw(st.sampled_from(REGIONS[region])),
                "capacity": draw(st.sampled_from([1000, 1100, 2000, 5000])),
                "last_sku_update": (
                    NOW - timedelta(days=draw(st.integers(0, 200)), seconds=draw(st.integers(0, 86399)))
                ).isoformat(),
                "double_encryption": draw(st.booleans()),
            }
        )
    workspaces = []
    for j in range(draw(st.integers(0, 8))):
        target = draw(st.sampled_from([None, *range(n_clusters)]))
        region = (
            ids.normalise_location(clusters[target]["location"])
            if target is not None
            else draw(st.sampled_from(sorted(REGIONS)))
        )
        doc: dict[str, Any] = {
            "subscription": SUB,
            "resource_group": draw(st.sampled_from(["rg-w", "RG-W2"])),
            "name": f"ws{j}{draw(st.text('abcXYZ', min_size=1, max_size=5))}",
            "location": region,
        }
        if target is not None:
            c = clusters[target]
            doc["cluster"] = ids.cluster_id(SUB, c["resource_group"], c["name"])
            doc["linked_at"] = (NOW - timedelta(days=draw(st.integers(0, 60)))).isoformat()
        workspaces.append(doc)
    return {"clusters": clusters, "workspaces": workspaces}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(estate=estates())
def test_observe_reports_the_estate_faithfully(
    emulator: Any, clients: AzureClients, tmp_path: Path, estate: dict[str, Any]
) -> None:
    emulator.reset()
    emulator.seed(estate)
    spec = write_spec(tmp_path, [cluster_doc(key=None)])
    observed, history = observe(spec, clients, now=NOW, activity_log=False)

    assert len(observed.clusters) == len(estate["clusters"])
    for c in estate["clusters"]:
        got = observed.clusters[ids.id_key(ids.cluster_id(SUB, c["resource_group"], c["name"]))]
        assert got.location == ids.normalise_location(c["location"])  # "West Europe" == "westeurope"
        assert got.capacity == c["capacity"]
        assert got.double_encryption == c["double_encryption"]
        assert got.last_sku_update is not None
        assert abs(got.last_sku_update - datetime.fromisoformat(c["last_sku_update"])) < timedelta(seconds=1)

    assert len(observed.workspaces) == len(estate["workspaces"])
    for w in estate["workspaces"]:
        wid = workspace_id(w["name"], rg=w["resource_group"])
        got_ws = observed.workspaces[ids.id_key(wid)]
        linked_to = got_ws.cluster_id and ids.id_key(got_ws.cluster_id)
        assert linked_to == (ids.id_key(w["cluster"]) if "cluster" in w else None)
        if "cluster" in w:  # the cluster lists the link too, and its date counts for rule W3
            assert ids.id_key(wid) in observed.clusters[ids.id_key(w["cluster"])].associated_workspaces
            assert any(op.workspace_key == ids.id_key(wid) for op in history.link_operations)
