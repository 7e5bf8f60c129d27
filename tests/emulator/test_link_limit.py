"""Rule W1 through raw ARM calls: a cluster takes at most 1,000 workspaces, counting those linked and
those whose link is still running; a failed link, an unlink and a deleted workspace free a place."""

from __future__ import annotations

from typing import Any

from emu_helpers import SUB, cluster_id

RG = "rg1"
LINK_SECONDS = 600.0


def _ws_path(name: str) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/{RG}"
        f"/providers/Microsoft.OperationalInsights/workspaces/{name}"
    )


def _link(emulator: Any, ws: str) -> Any:
    return emulator.arm(
        "PUT",
        f"{_ws_path(ws)}/linkedServices/cluster",
        {"properties": {"writeAccessResourceId": cluster_id(RG, "clu1")}},
    )


def _assert_full(emulator: Any, ws: str) -> None:
    r = _link(emulator, ws)
    assert r.status_code == 400, r.text  # W1
    err = r.json()["error"]
    assert err["code"] == "BadRequest"
    assert "A maximum of 1000 Log Analytics workspaces can be linked to a cluster" in err["message"]
    assert "Cluster 'clu1' has 1000." in err["message"]


def test_w1_counts_linked_and_linking_workspaces_and_frees_places(emulator: Any) -> None:
    emulator.configure(durations={"link": LINK_SECONDS, "unlink": LINK_SECONDS})
    free = ["free-a", "free-b", "free-c", "free-d"]
    emulator.seed(
        {
            "clusters": [{"subscription": SUB, "resource_group": RG, "name": "clu1", "location": "eastus"}],
            "workspaces": [
                {"subscription": SUB, "resource_group": RG, "name": f"linked-{i:04d}", "cluster": "clu1"}
                for i in range(998)
            ]
            + [{"subscription": SUB, "resource_group": RG, "name": n} for n in free],
        }
    )
    emulator.fault(method="PUT", path=".*/workspaces/free-b/linkedServices/cluster", fail_operation=True)
    assert _link(emulator, "free-a").status_code == 200  # 998 linked + 1 linking
    assert _link(emulator, "free-b").status_code == 200  # + 1 linking (its operation will fail)
    _assert_full(emulator, "free-c")

    emulator.admin("POST", "clock", {"advance_seconds": LINK_SECONDS + 1})
    # free-a linked, free-b's link failed: 999
    assert _link(emulator, "free-c").status_code == 200
    _assert_full(emulator, "free-d")

    assert emulator.arm("DELETE", _ws_path("linked-0000")).status_code == 200
    assert _link(emulator, "free-d").status_code == 200  # the deleted workspace's place
    _assert_full(emulator, "free-b")

    # an unlink frees its place only when it has ended
    assert emulator.arm("DELETE", f"{_ws_path('linked-0001')}/linkedServices/cluster").status_code == 200
    _assert_full(emulator, "free-b")
    emulator.admin("POST", "clock", {"advance_seconds": LINK_SECONDS + 1})
    assert _link(emulator, "free-b").status_code == 200
