"""Long-running operations as ARM shows them: `Azure-AsyncOperation` status documents, `Location`
operation results, and the faults that shape an operation when it starts."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from emulator.clock import iso7
from emulator.http import Request, Response, arm_error
from emulator.resources.common import OPSTATUS_API
from emulator.state import Emulator, Operation


def _op_headers(em: Emulator, req: Request, op: Operation, result_path: str | None = None) -> dict[str, str]:
    base = f"https://{em.cloud.arm_host}"
    h = {
        "Azure-AsyncOperation": (
            f"{base}/subscriptions/{op.subscription}/providers/Microsoft.OperationalInsights/locations/"
            f"{op.location}/operationStatuses/{op.id}?api-version={OPSTATUS_API}"
        )
    }
    if result_path is not None:
        h["Location"] = f"{base}{result_path}/operationresults/{op.id}?api-version={req.q('api-version')}"
    return h


def operation_status(em: Emulator, op_id: str) -> Response:
    op = em.operations.get(op_id) or next(
        (o for o in em.operations.values() if o.id.lower() == op_id.lower()), None
    )
    if op is None:
        return arm_error(404, "NotFound", f"Operation '{op_id}' was not found.")
    body: dict[str, Any] = {
        "id": f"/subscriptions/{op.subscription}/providers/Microsoft.OperationalInsights/locations/"
        f"{op.location}/operationStatuses/{op.id}",
        "name": op.id,
        "status": "InProgress",
        "startTime": iso7(op.start),
    }
    if op.done:
        body["status"] = "Failed" if op.failed else "Succeeded"
        body["endTime"] = iso7(op.end)
        if op.failed and op.error:
            body["error"] = dict(op.error)
        if op.kind == "cluster_delete":
            body["properties"] = {}
    return Response(200, body)


def operation_result(em: Emulator, op_id: str) -> Response:
    op = em.operations.get(op_id)
    if op is None:
        return arm_error(404, "NotFound", f"Operation '{op_id}' was not found.")
    if not op.done:
        return Response(202, None, {"Retry-After": "0"})
    if op.failed:
        return arm_error(400, (op.error or {}).get("code", "Failed"), (op.error or {}).get("message"))
    return Response(204)


def _op_id() -> str:
    """The 32-hex "Operation Id" Log Analytics quotes in its refusals."""
    return uuid.uuid4().hex


def _apply_faults_to_op(em: Emulator, req: Request, op: Operation) -> None:
    """`fail_operation` / `stick_operation` faults shape the async operation a request starts."""
    for f in list(em.faults):
        if not f.shapes_operation or not f.fires(req.method, req.path, em.rng):
            continue
        if f.fail_operation:
            op.fail = True
            if f.message_given:  # the test chose Azure's words for the failure (e.g. a C7 text)
                op.error = {"code": f.code, "message": f.message}
        if f.stick_operation:
            op.end = op.end + timedelta(seconds=f.stick_operation)


def _client_request_id(req: Request) -> str | None:
    """What the client sent as `x-ms-client-request-id` (the Activity Log's httpRequest.clientRequestId)."""
    return req.headers.get("x-ms-client-request-id")


def _start_logged(req: Request, op: Operation) -> None:
    """ARM keeps a client's `x-ms-correlation-request-id`; otherwise it makes one per request."""
    op.correlation_id = req.headers.get("x-ms-correlation-request-id") or op.correlation_id
