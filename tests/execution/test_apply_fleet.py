"""examples/fleet applied to an empty emulator (only workspaces, storage, identities and vaults exist):
the whole story a platform team lives through, with zero harm events (W4, K1, B2) on the way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apply_fleet_estate import seed_fleet, vault_docs

from controller.azure.clients import AzureClients
from controller.cli import apply_cmd
from controller.loading import load
from controller.model import ids

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet"


@pytest.fixture
def env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {**emulator.env, "CMKCTL_RETRY_BACKOFF": "0.01"}.items():
        monkeypatch.setenv(name, value)
    yield


def _apply(state: Path) -> int:
    clients = AzureClients()
    try:
        return apply_cmd.run(None, [str(FLEET)], auto_approve=True, state=str(state), clients=clients)
    finally:
        clients.close()


def test_fleet_converges_from_empty(
    emulator: Any, sdk: Any, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: first apply creates the three clusters (the user-assigned one with its key at creation,
    rule C5), links the East US workspaces and BYOS; the SystemAssigned clusters' key update is refused
    with Azure's C7 message (their new identities have no vault access yet) and their links are skipped
    (W4: never link before the key). The team grants the identities; the second apply converges; a third
    apply writes nothing."""
    desired = load([FLEET])
    seed_fleet(emulator, desired)
    state = tmp_path / "state"

    assert _apply(state) == 1
    first = capsys.readouterr().out
    assert "Failed to validate key in Key Vault" in first and "(rule C7)" in first
    assert emulator.events() == []

    grants: dict[str, list[str]] = {}
    for cluster in desired.clusters:
        assert cluster.spec.key is not None
        live = sdk.loganalytics(cluster.spec.subscription).clusters.get(
            cluster.spec.resource_group, cluster.azure_name
        )
        if live.identity.principal_id:
            grants.setdefault(cluster.spec.key.ref().vault_host, []).append(live.identity.principal_id)
    assert len(grants) == 2  # the two SystemAssigned clusters
    emulator.seed({"vaults": vault_docs(desired, grants)})

    assert _apply(state) == 0
    assert "0 failed" in capsys.readouterr().out
    live_links = {
        ids.id_key(w["id"]): ids.id_key(
            (w.get("properties", {}).get("features") or {}).get("clusterResourceId") or ""
        )
        for w in _workspaces(emulator, desired)
    }
    wanted = {ws: ids.id_key(cluster.arm_id) for ws, cluster in desired.desired_links().items()}
    assert {ws: live_links.get(ws) for ws in wanted} == wanted

    emulator.clear_requests()
    capsys.readouterr()
    assert _apply(state) == 0
    assert "No changes" in capsys.readouterr().out  # the next plan is empty
    assert [r for r in emulator.requests() if r["method"] != "GET"] == []
    assert emulator.events() == []


def _workspaces(emulator: Any, desired: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for sub in sorted(desired.subscriptions()):
        resp = emulator.arm("GET", f"/subscriptions/{sub}/providers/Microsoft.OperationalInsights/workspaces")
        out.extend(resp.json()["value"])
    return out
