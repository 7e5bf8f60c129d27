"""Frozen plan models given the same fields share one "fields given" set (controller.model.frozen):
copying one with an update, as the executor does for each link's request id, changes neither the
others nor what any of them says in JSON."""

from __future__ import annotations

from controller.planning.plan import Action, Change

SUB = "00000000-0000-0000-0000-000000000001"
CLUSTER = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.OperationalInsights/clusters/c1"


def _link(i: int) -> Change:
    ws = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w{i}"
    return Change(
        id=f"link-{i}", action=Action.LINK, address=f"workspace.w{i}", resource_id=ws, cluster_id=CLUSTER,
        parameters={"workspace_id": ws, "cluster_id": CLUSTER}, before={"cluster_id": None},
        after={"cluster_id": CLUSTER}, reason="declared on cluster c1",
    )


def test_links_share_their_fields_set_and_a_copy_with_an_update_changes_no_other() -> None:
    a, b = _link(1), _link(2)
    assert a.model_fields_set is b.model_fields_set  # one set for the same shape
    assert a.parameters.model_fields_set is b.parameters.model_fields_set
    before_json = b.model_dump_json()
    sent = a.model_copy(
        update={"parameters": a.parameters.model_copy(update={"request_id": "r-1"})}
    )
    assert sent.parameters.request_id == "r-1" and b.parameters.request_id is None
    assert "request_id" in sent.parameters.model_fields_set
    assert "request_id" not in b.parameters.model_fields_set  # the shared set was not touched
    assert b.model_dump_json() == before_json
    assert Change.model_validate_json(b.model_dump_json()) == b
