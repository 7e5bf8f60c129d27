"""Linked services (`workspaces/{w}/linkedServices/cluster`): linking a workspace to a cluster and
unlinking it, with rules W1-W5 and their Activity Log entries."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from emulator.clock import iso7
from emulator.http import Request, Response, arm_error
from emulator.resources import activity_log
from emulator.resources.common import LS_TYPE, MSG_WS_404, _json, no_route
from emulator.resources.operations import _apply_faults_to_op, _client_request_id, _op_headers, _start_logged
from emulator.resources.workspaces import _invalidate, _ws_404
from emulator.state import Cluster, Emulator, Workspace, norm_loc

MSG_LINK_IN_PROCESS = "Workspace link or unlink operation in process."
MSG_LINK_CLUSTER_404 = "Cluster not found, the cluster you specified doesn't exist or was deleted."


def _ls_body(em: Emulator, w: Workspace) -> dict[str, Any] | None:
    op = w.running_link_op()
    if op is not None:
        target = op.data.get("cluster") if op.kind == "link" else w.cluster
        state = "ProvisioningAccount" if op.kind == "link" else "Deleting"
    elif w.cluster is not None:
        target, state = w.cluster, "Succeeded"
    else:
        return None
    return {
        "properties": {"writeAccessResourceId": target, "provisioningState": state},
        "id": activity_log.link_resource_id(w),
        "name": "Cluster",
        "type": LS_TYPE,
        "tags": {},
    }


def list_linked_services(em: Emulator, ws_key: str, rg: str, name: str) -> Response:
    w = em.workspaces.get(ws_key)
    if w is None:
        return _ws_404(rg, name)
    b = _ls_body(em, w)
    return Response(200, {"value": [b] if b else []})


def _link_window_count(em: Emulator, w: Workspace, now: datetime) -> list[datetime]:
    window = timedelta(days=em.limits.link_window_days)
    return sorted(t for t, _ in w.link_history if now - t < window)


def handle_linked_service(
    em: Emulator, req: Request, sub: str, rg: str, ws_name: str, ls_name: str
) -> Response:
    w = em.workspaces.get(f"{sub}/{rg}/{ws_name}".lower())
    if ls_name.lower() != "cluster":
        if w is None:
            return _ws_404(rg, ws_name)
        return arm_error(404, "NotFound", None)
    if req.method == "GET":
        if w is None:
            return _ws_404(rg, ws_name)
        b = _ls_body(em, w)
        if b is None:
            return arm_error(404, "NotFound", None)  # real: no message (facts §1.6)
        return Response(200, b)
    if w is None:
        return arm_error(404, "ResourceNotFound", MSG_WS_404)
    if req.method not in ("PUT", "DELETE"):
        return no_route(req)
    resp = _link_write(em, req, sub, w)
    if resp.status >= 400 or resp.status == 204:
        # ARM logs a refused write as Started + Failed: in the Activity Log, never in the W3 count
        activity_log.record_refused_link_write(
            em,
            w,
            delete=req.method == "DELETE",
            http_status=resp.status,
            client_request_id=_client_request_id(req),
        )
    return resp


def _link_write(em: Emulator, req: Request, sub: str, w: Workspace) -> Response:
    """PUT or DELETE of a workspace's linkedServices/cluster (rules W1-W5, C8)."""
    now = em.now()
    if req.method == "PUT":
        body = _json(req)
        props = body.get("properties") if isinstance(body, dict) else None
        target = None
        if isinstance(props, dict):
            target = props.get("writeAccessResourceId") or props.get("WriteAccessResourceId")
        if not isinstance(target, str) or not target:
            return arm_error(
                400, "InvalidParameter", "'properties.writeAccessResourceId' must be a cluster resource id."
            )
        if w.running_link_op() is not None:
            return arm_error(409, "Conflict", MSG_LINK_IN_PROCESS)  # rule W5
        c = _find_cluster(em, target)
        if c is None:
            return arm_error(400, "BadRequest", MSG_LINK_CLUSTER_404)
        if c.running_op() is not None and c.running_op().kind == "cluster_delete":  # type: ignore[union-attr]
            return arm_error(400, "BadRequest", MSG_LINK_CLUSTER_404)
        if w.cluster is not None:
            if w.cluster.lower() == c.arm_id.lower():
                return Response(200, _ls_body(em, w))  # already linked there: nothing to do
            return arm_error(
                400,
                "BadRequest",  # rule W2
                f"Workspace '{w.name}' is already linked to cluster '{w.cluster}'. Unlink it "
                "before linking it to another cluster.",
            )
        if norm_loc(c.location) != w.location:  # rule C8
            return arm_error(
                400,
                "InvalidParameter",
                f"Workspace '{w.name}' is in region '{w.location}' but cluster '{c.name}' is in "
                f"'{norm_loc(c.location)}'; they must be in the same region.",
            )
        linked, pending = em.linked_or_linking(c.arm_id)
        if linked + pending >= em.limits.workspaces_per_cluster:  # rule W1
            return arm_error(
                400,
                "BadRequest",
                f"A maximum of {em.limits.workspaces_per_cluster} Log Analytics workspaces can be linked to "
                f"a cluster. Cluster '{c.name}' has {linked + pending}.",
            )
        started = _start_link_operation(em, req, w, "link", sub, c.arm_id, now)
        if isinstance(started, Response):
            return started
        op = started
        creating = c.running_op() is not None and c.running_op().kind == "cluster_create"  # type: ignore[union-attr]
        if creating or c.failed:
            # rule W4: Azure accepts the link; data ingested meanwhile is dropped, unrecoverably. (A key
            # update in progress is not this: the cluster's provisioning already succeeded.)
            em.harm(
                "data_dropped",
                "W4",
                w.arm_id,
                f"Workspace linked to cluster '{c.name}' while its provisioning state was "
                f"'{c.provisioning_state()}': ingested data is dropped and unrecoverable.",
            )
        _invalidate(em, w)
        # 2020 real: 200 + body ProvisioningAccount + Azure-AsyncOperation (facts §4.3)
        return Response(200, _ls_body(em, w), _op_headers(em, req, op))
    if req.method == "DELETE":
        if w.running_link_op() is not None:
            return arm_error(409, "Conflict", MSG_LINK_IN_PROCESS)  # rule W5
        if w.cluster is None:
            return Response(204)
        started = _start_link_operation(em, req, w, "unlink", sub, w.cluster, now)
        if isinstance(started, Response):
            return started
        op = started
        _invalidate(em, w)
        # 200 + body + AAO (never a bare 204, which breaks SDK 14 .result(), facts §12.13)
        return Response(200, _ls_body(em, w), _op_headers(em, req, op))
    return no_route(req)


def _start_link_operation(
    em: Emulator, req: Request, w: Workspace, kind: str, sub: str, cluster: str | None, now: datetime
) -> Any:
    """A link or unlink Azure accepts (rule W3 checked first): the operation, its budget entry and its
    Activity Log events; or the refusal Response."""
    bad = _w3(em, w, now)
    if bad:
        return bad
    op = em.new_operation(kind, sub, w.location, w.key_id, cluster=cluster)
    _apply_faults_to_op(em, req, op)
    w.link_op = op
    em.w1_refresh(w.key_id)  # rule W1
    w.link_history.append((now, kind))
    _start_logged(req, op)
    activity_log.record_link_write(
        em, w, op, delete=kind == "unlink", http_status=200, client_request_id=_client_request_id(req)
    )
    return op


def _w3(em: Emulator, w: Workspace, now: datetime) -> Response | None:
    """Rule W3. 400 (not 409): a quota refusal is final for weeks, and 409 is what clients treat as
    'busy, retry soon' (W5). Azure publishes no text for it; the message states the documented limit
    ("A maximum of two workspace link operations on particular workspace is allowed in 30 day period")."""
    recent = _link_window_count(em, w, now)
    if len(recent) >= em.limits.link_ops_per_window:
        return arm_error(
            400,
            "BadRequest",
            f"A maximum of {em.limits.link_ops_per_window} workspace link operations on particular "
            f"workspace is allowed in {em.limits.link_window_days} day period. Workspace '{w.name}' had "
            f"{len(recent)} since {iso7(recent[0])}.",
        )
    return None


def _find_cluster(em: Emulator, arm_id: str) -> Cluster | None:
    parts = [p for p in arm_id.split("/") if p]
    low = [p.lower() for p in parts]
    if len(low) != 8 or low[0] != "subscriptions" or low[2] != "resourcegroups" or low[6] != "clusters":
        return None
    return em.clusters.get(f"{parts[1]}/{parts[3]}/{parts[7]}".lower())
