"""The Activity Log (`Microsoft.Insights/eventtypes/management/values`): the subscription's
management events with `$filter`, `$select` and nextLink pages, as Azure answers them."""

from __future__ import annotations

import re
import urllib.parse
from datetime import datetime, timedelta
from typing import Any

from emulator.clock import parse_time
from emulator.http import Request, Response
from emulator.state import Emulator

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
