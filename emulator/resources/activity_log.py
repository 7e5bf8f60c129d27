"""The Activity Log (`Microsoft.Insights/eventtypes/management/values`): the subscription's
management events with `$filter`, `$select` and nextLink pages, as Azure answers them, and the events
the emulated operations write into it."""

from __future__ import annotations

import re
import urllib.parse
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from emulator.clock import iso7, parse_time
from emulator.http import Request, Response

if TYPE_CHECKING:  # at run time state.py imports this module
    from emulator.state import Cluster, Emulator, Operation, Workspace

# Times quoted or not: azure-cli sends `eventTimestamp ge 2018-01-01T00:00:00+00:00` (recorded 2019).
_FILTER_TIME = re.compile(r"eventTimestamp\s+(ge|le)\s+(?:'([^']+)'|([^'\s]+))", re.IGNORECASE)
_FILTER_EQ = re.compile(
    r"(resourceGroupName|resourceUri|resourceProvider|correlationId)\s+eq\s+'([^']*)'", re.IGNORECASE
)


# EventData fields `$select` may name (azure-mgmt-monitor's EventData, docs/azure-wire.md)
_EVENT_FIELDS = frozenset(
    "authorization claims correlationId description eventDataId eventName category httpRequest id level "
    "resourceGroupName resourceProviderName resourceId resourceType operationId operationName properties "
    "status subStatus eventTimestamp submissionTimestamp subscriptionId tenantId".lower().split()
)


def _selected(ev: dict[str, Any], select: list[str]) -> dict[str, Any]:
    """`$select` narrows each event to the fields named (all of them without it)."""
    wanted = {f.lower() for f in select}
    return {k: v for k, v in ev.items() if not k.startswith("_") and (not wanted or k.lower() in wanted)}


def _activity_error(msg: str) -> Response:
    return Response(400, {"Code": "BadRequest", "Message": msg})  # non-ARM envelope (facts §12.18)


def activity_log_values(em: Emulator, req: Request, sub: str) -> Response:
    """`$filter` grammar of facts §11: eventTimestamp ge '..' [and eventTimestamp le '..'] [and one eq]."""
    flt = req.q("$filter")
    if not flt:
        return _activity_error("The $filter query parameter is required.")
    clauses = [c.strip() for c in re.split(r"\s+and\s+", flt.strip(), flags=re.IGNORECASE) if c.strip()]
    start: datetime | None = None
    end: datetime | None = None
    eq: tuple[str, str] | None = None
    for cl in clauses:
        m = _FILTER_TIME.fullmatch(cl)
        if m:
            when = m.group(2) or m.group(3)
            try:
                t = parse_time(when)
            except ValueError:
                return _activity_error(f"The time '{when}' is not valid.")
            if m.group(1).lower() == "ge":
                start = t
            else:
                end = t
            continue
        m2 = _FILTER_EQ.fullmatch(cl)
        if m2 and eq is None:
            eq = (m2.group(1).lower(), m2.group(2).lower())
            continue
        return _activity_error(f"The filter '{flt}' is not supported.")
    if start is None:
        return _activity_error("The $filter must contain eventTimestamp ge '<start time>'.")
    now = em.now()
    if now - start > timedelta(days=90):
        return _activity_error("The start time cannot be more than 90 days in the past.")
    out = []
    for ev in em.activity:
        t = ev["_time"]
        if ev["subscriptionId"].lower() != sub.lower() or t < start or (end is not None and t > end):
            continue
        if eq is not None:
            field_, value = eq
            actual = {
                "resourcegroupname": ev["resourceGroupName"],
                "resourceuri": ev["resourceId"],
                "resourceprovider": ev["resourceProviderName"]["value"],
                "correlationid": ev["correlationId"],
            }[field_]
            if actual.lower() != value:
                continue
        out.append(ev)
    out.sort(key=lambda e: e["_time"], reverse=True)  # newest first, like the service
    select = [f.strip() for f in (req.q("$select") or "").split(",") if f.strip()]
    unknown = [f for f in select if f.lower() not in _EVENT_FIELDS]
    if unknown:
        return _activity_error(f"The $select field '{unknown[0]}' is not supported.")
    token = req.q("$skiptoken")
    skip = int(token) if token and token.isdigit() else 0
    size = em.activity_page_size
    body: dict[str, Any] = {"value": [_selected(ev, select) for ev in out[skip : skip + size]]}
    if skip + size < len(out):
        params = {"api-version": req.q("api-version") or "", "$filter": flt}
        if select:
            params["$select"] = ",".join(select)
        params["$skiptoken"] = str(skip + size)
        query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        body["nextLink"] = (
            f"https://{em.cloud.arm_host}/subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management"
            f"/values?{query}"
        )
    return Response(200, body)


_CANONICAL = {
    n.lower(): n
    for n in (
        "Microsoft.OperationalInsights",
        "workspaces",
        "clusters",
        "linkedServices",
        "linkedStorageAccounts",
        "tables",
        "savedSearches",
        "dataSources",
    )
}


_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "NoContent",
    400: "BadRequest",
    404: "NotFound",
    409: "Conflict",
}


def _resource_type(resource_id: str) -> str:
    """`/subscriptions/s/resourceGroups/g/providers/P/t1/n1/t2/n2` -> `P/t1/t2` (the Activity Log's
    resourceType)."""
    parts = [p for p in resource_id.split("/") if p]
    low = [p.lower() for p in parts]
    if "providers" not in low:
        return ""
    rest = parts[low.index("providers") + 1 :]
    if not rest:
        return ""
    return "/".join(_CANONICAL.get(p.lower(), p) for p in [rest[0], *rest[1::2]])


def activity_event(
    em: Emulator,
    *,
    subscription: str,
    resource_group: str,
    resource_id: str,
    operation_name: str,
    status: str,
    correlation_id: str,
    when: datetime,
    sub_status: str = "",
    http_status: int | None = None,
    method: str = "PUT",
    operation_id: str | None = None,
    client_request_id: str | None = None,
) -> None:
    """One Activity Log event as ARM writes it (docs/azure-wire.md): every event of one operation on
    one resource shares `operationId`; one ARM deployment shares `correlationId` across resources."""
    props: dict[str, str] = {}
    if http_status is not None:
        props["statusCode"] = _STATUS_TEXT.get(http_status, str(http_status))
    event_id = str(uuid.uuid4())
    provider = "Microsoft.OperationalInsights"
    rtype = _resource_type(resource_id) or provider
    em.activity.append(
        {
            "authorization": {"action": operation_name, "scope": resource_id},
            "caller": "cmkctl@emulator",
            "channels": "Operation",
            "claims": {},
            "correlationId": correlation_id,
            "description": "",
            "eventDataId": event_id,
            "eventName": {
                "value": "BeginRequest" if status == "Started" else "EndRequest",
                "localizedValue": "Begin request" if status == "Started" else "End request",
            },
            "category": {"value": "Administrative", "localizedValue": "Administrative"},
            "httpRequest": {
                "clientRequestId": client_request_id or str(uuid.uuid4()),
                "clientIpAddress": "127.0.0.1",
                "method": method,
            },
            "id": f"{resource_id}/events/{event_id}/ticks/{int(when.timestamp() * 10_000_000)}",
            "level": "Error" if status == "Failed" else "Informational",
            "resourceGroupName": resource_group,
            "resourceProviderName": {"value": provider, "localizedValue": provider},
            "resourceId": resource_id,
            "resourceType": {"value": rtype, "localizedValue": rtype},
            "operationId": operation_id or correlation_id,
            "operationName": {"value": operation_name, "localizedValue": operation_name},
            "properties": props,
            "status": {"value": status, "localizedValue": status},
            "subStatus": {
                "value": sub_status,
                "localizedValue": f"{sub_status} (HTTP Status Code: {http_status})"
                if sub_status and http_status
                else sub_status,
            },
            "eventTimestamp": iso7(when),
            "submissionTimestamp": iso7(when + timedelta(seconds=5)),
            "subscriptionId": subscription,
            "tenantId": em.tenant_id,
            "_time": when,
        }
    )


def operation_events(
    em: Emulator,
    *,
    subscription: str,
    resource_group: str,
    resource_id: str,
    operation_name: str,
    method: str,
    start: datetime,
    end: datetime | None,
    outcome: str = "Succeeded",
    http_status: int = 202,
    correlation_id: str | None = None,
    operation_id: str | None = None,
    client_request_id: str | None = None,
    asynchronous: bool = True,
) -> None:
    """The events of one write: Started, then Accepted for an asynchronous one, then the outcome at
    `end` (None: still running). A request the service refused is Started + Failed, never Accepted."""
    common: dict[str, Any] = {
        "subscription": subscription,
        "resource_group": resource_group,
        "resource_id": resource_id,
        "operation_name": operation_name,
        "correlation_id": correlation_id or str(uuid.uuid4()),
        "operation_id": operation_id or str(uuid.uuid4()),
        "client_request_id": client_request_id,
        "method": method,
    }
    activity_event(em, status="Started", when=start, **common)
    if http_status >= 400:
        activity_event(
            em,
            status="Failed",
            when=start,
            sub_status=_STATUS_TEXT.get(http_status, ""),
            http_status=http_status,
            **common,
        )
        return
    if not asynchronous:
        activity_event(em, status="Succeeded", when=start, http_status=http_status, **common)
        return
    activity_event(
        em, status="Accepted", when=start, sub_status="Accepted", http_status=http_status, **common
    )
    if end is not None:
        activity_event(
            em, status=outcome, when=end, http_status=200 if outcome == "Succeeded" else None, **common
        )


def link_resource_id(ws: Workspace, linked_service: str = "cluster") -> str:
    return f"{ws.arm_id}/linkedServices/{linked_service}"


def record_link_write(
    em: Emulator,
    ws: Workspace,
    op: Operation,
    *,
    delete: bool,
    http_status: int,
    client_request_id: str | None,
) -> None:
    """Started + Accepted now; the outcome when the operation finishes (`activity_end`)."""
    name = "Microsoft.OperationalInsights/workspaces/linkedServices/" + ("delete" if delete else "write")
    method = "DELETE" if delete else "PUT"
    operation_events(
        em,
        subscription=ws.subscription,
        resource_group=ws.resource_group,
        resource_id=link_resource_id(ws),
        operation_name=name,
        method=method,
        start=op.start,
        end=None,
        http_status=http_status,
        correlation_id=op.correlation_id,
        operation_id=op.id,
        client_request_id=client_request_id,
    )
    op.data["activity"] = (ws.subscription, ws.resource_group, link_resource_id(ws), name, method)


def record_refused_link_write(
    em: Emulator, ws: Workspace, *, delete: bool, http_status: int, client_request_id: str | None
) -> None:
    """A link or unlink the service refused (Started, Failed) or had nothing to do for (Started,
    Succeeded with 204): in the Activity Log, but not an accepted operation."""
    name = "Microsoft.OperationalInsights/workspaces/linkedServices/" + ("delete" if delete else "write")
    operation_events(
        em,
        subscription=ws.subscription,
        resource_group=ws.resource_group,
        resource_id=link_resource_id(ws),
        operation_name=name,
        method="DELETE" if delete else "PUT",
        start=em.now(),
        end=None,
        http_status=http_status,
        client_request_id=client_request_id,
        asynchronous=False,
    )


def record_cluster_delete(em: Emulator, c: Cluster, op: Operation, *, client_request_id: str | None) -> None:
    """Rule C11 evidence: a cluster deletion is in the Activity Log even when nobody journaled it."""
    name = "Microsoft.OperationalInsights/clusters/delete"
    operation_events(
        em,
        subscription=c.subscription,
        resource_group=c.resource_group,
        resource_id=c.arm_id,
        operation_name=name,
        method="DELETE",
        start=op.start,
        end=None,
        http_status=202,
        correlation_id=op.correlation_id,
        operation_id=op.id,
        client_request_id=client_request_id,
    )
    op.data["activity"] = (c.subscription, c.resource_group, c.arm_id, name, "DELETE")


def activity_end(em: Emulator, op: Operation) -> None:
    if "activity" not in op.data:
        return
    sub, rg, rid, name, method = op.data["activity"]
    activity_event(
        em,
        subscription=sub,
        resource_group=rg,
        resource_id=rid,
        operation_name=name,
        status="Failed" if op.failed else "Succeeded",
        correlation_id=op.correlation_id,
        operation_id=op.id,
        when=op.end,
        http_status=None if op.failed else 200,
        method=method,
    )
