"""The `/_emulator/` admin API (any host): request log, clock, faults, harm events, seed, reset,
config. It is how tests, benchmarks and users' CI steer and observe the emulator."""

from __future__ import annotations

import random
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from emulator.clock import iso7, parse_time
from emulator.http import Request, Response
from emulator.limits import PROFILES
from emulator.regions import has_zones
from emulator.resources import activity_log
from emulator.state import Cluster, Emulator, Fault, Workspace, norm_loc


def _err(status: int, message: str) -> Response:
    return Response(status, {"error": {"code": "BadRequest", "message": message}})


def handle(em: Emulator, req: Request) -> Response:
    what = req.path[len("/_emulator/") :].strip("/").lower()
    try:
        body = req.json() if req.body else {}
    except ValueError:
        return _err(400, "The body is not JSON.")
    if body is None:
        body = {}
    try:
        return _dispatch(em, req.method, what, body)
    except (KeyError, TypeError, ValueError) as exc:
        return _err(400, f"Bad admin request: {type(exc).__name__}: {exc}")


def _dispatch(em: Emulator, method: str, what: str, body: Any) -> Response:
    with em.lock:
        em.something_changed()  # faults, seeds and clock moves may change what a key allows
        em.tick()
        if what == "requests":
            if method == "GET":
                return Response(200, {"requests": list(em.requests)})
            if method == "DELETE":
                em.requests.clear()
                return Response(200, {"requests": []})
        if what == "clock":
            if method == "POST":
                if "now" in body:
                    em.clock.set(parse_time(str(body["now"])))
                if "advance_seconds" in body:
                    em.clock.advance(float(body["advance_seconds"]))
                if "time_scale" in body:
                    em.clock.set_time_scale(float(body["time_scale"]))
                em.something_changed()  # a clock set back may make a version not yet valid again
                em.tick()
            if method in ("GET", "POST"):
                return Response(200, {"now": iso7(em.now()), "time_scale": em.clock.time_scale})
        if what == "events" and method == "GET":
            return Response(200, {"events": list(em.events)})
        if what == "faults":
            if method == "POST":
                em.faults.append(make_fault(body))
                return Response(200, {"faults": len(em.faults)})
            if method == "DELETE":
                em.faults.clear()
                return Response(200, {"faults": 0})
            if method == "GET":
                return Response(
                    200,
                    {
                        "faults": [
                            {"method": f.method, "path": f.path.pattern, "count": f.count} for f in em.faults
                        ]
                    },
                )
        if what == "seed" and method == "POST":
            return Response(200, seed(em, body))
        if what == "role-assignments" and method == "POST":
            return role_assignment(em, body)
        if what == "reset" and method == "POST":
            em.reset()
            return Response(200, {"reset": True})
        if what == "config":
            if method == "POST":
                configure(em, body)
            if method in ("GET", "POST"):
                return Response(
                    200,
                    {
                        "durations": dict(em.durations),
                        "limits": em.limits.name,
                        "throttling": em.throttling,
                        "tenant_id": em.tenant_id,
                        "no_double_encryption_regions": sorted(em.no_double_encryption_regions),
                    },
                )
    return _err(404, f"Unknown admin endpoint {method} /_emulator/{what}")


def role_assignment(em: Emulator, body: dict[str, Any]) -> Response:
    """A data-plane role assignment on a Managed HSM (or an RBAC vault), as
    `az keyvault role assignment create --hsm-name H --role R --assignee-object-id P --scope /keys`
    makes it; a Managed HSM then lists it on its own role-assignment API
    (`GET {hsm}/{scope}/providers/Microsoft.Authorization/roleAssignments`).
    Body: {"vault": URI, "principal_id", "role", "scope"?: "/keys" (default), "/" or "/keys/<name>"}."""
    vault, principal, role = str(body["vault"]), str(body["principal_id"]), str(body["role"])
    try:
        em.vaults.role_grant(vault, principal, role, str(body.get("scope") or "/keys"))
    except KeyError:
        return Response(404, {"error": {"code": "NotFound", "message": f"No vault or HSM at '{vault}'."}})
    return Response(200, {"vault": vault, "principal_id": principal, "role": role})


def make_fault(body: dict[str, Any]) -> Fault:
    return Fault(
        method=(str(body["method"]).upper() if body.get("method") else None),
        path=re.compile(str(body.get("path", ".*")), re.IGNORECASE),
        status=int(body["status"]) if body.get("status") is not None else None,
        retry_after=float(body["retry_after"]) if body.get("retry_after") is not None else None,
        reset=bool(body.get("reset", False)),
        delay=float(body.get("delay", 0.0)),
        fail_operation=bool(body.get("fail_operation", False)),
        stick_operation=float(body.get("stick_operation", 0.0)),
        count=int(body["count"]) if body.get("count") is not None else None,
        probability=float(body["probability"]) if body.get("probability") is not None else None,
        code=str(
            body.get("code", "InternalServerError" if int(body.get("status") or 500) >= 500 else "BadRequest")
        ),
        message=str(body.get("message", "Injected fault.")),
        after_accept=bool(body.get("after_accept", False)),
        message_given="message" in body,
        body=body.get("body"),
        has_body="body" in body,
        headers=(
            {str(k): (None if v is None else str(v)) for k, v in dict(body["headers"]).items()}
            if body.get("headers") is not None
            else None
        ),
    )


def configure(em: Emulator, body: dict[str, Any]) -> None:
    durations = body.get("durations") or {}
    for k, v in durations.items():
        if k not in em.durations:
            raise ValueError(f"unknown operation kind {k!r}; known: {sorted(em.durations)}")
        em.durations[k] = float(v)
    if "limits" in body:
        em.limits = PROFILES[str(body["limits"])]
    if "throttling" in body:
        em.throttling = bool(body["throttling"])
        em.buckets.clear()
    for kind, pair in (body.get("throttle_limits") or {}).items():
        if kind not in em.throttle_limits:
            raise ValueError(f"unknown bucket {kind!r}; known: reads, writes")
        em.throttle_limits[kind] = (float(pair[0]), float(pair[1]))
        em.buckets.clear()
    if "no_double_encryption_regions" in body:
        em.no_double_encryption_regions = {norm_loc(r) for r in body["no_double_encryption_regions"]}
    if "tenant_id" in body:
        em.tenant_id = str(body["tenant_id"])
    if "activity_page_size" in body:
        em.activity_page_size = max(1, int(body["activity_page_size"]))
    if "cluster_page_size" in body:
        em.cluster_page_size = max(1, int(body["cluster_page_size"]))
    if "time_scale" in body:
        em.clock.set_time_scale(float(body["time_scale"]))


def _ensure_rg(em: Emulator, sub: str, rg: str, location: str, tags: dict[str, str] | None = None) -> None:
    g = em.resource_groups.setdefault(f"{sub}/{rg}".lower(), {"name": rg, "location": norm_loc(location)})
    if tags:
        g["tags"] = {str(k): str(v) for k, v in tags.items()}


def seed(em: Emulator, estate: dict[str, Any]) -> dict[str, int]:
    """Load an estate (see _seed); never records harm events (the past is not news)."""
    with em.seeding():
        return _seed(em, estate)


def _seed(em: Emulator, estate: dict[str, Any]) -> dict[str, int]:
    """Load an estate: the world as it already is in Azure (with its past), before the product runs.

    Keys (all optional): resource_groups, identities, storage_accounts, vaults (→ vault registry),
    clusters, workspaces. Times are ISO-8601; missing times mean "now"."""
    now = em.now()
    for g in estate.get("resource_groups", []):
        _ensure_rg(em, g["subscription"], g["name"], g.get("location", "eastus"), g.get("tags"))
    for i in estate.get("identities", []):
        em.identities[i["id"].lower()] = {
            "principalId": i.get("principal_id") or str(uuid.uuid4()),
            "clientId": i.get("client_id") or str(uuid.uuid4()),
        }
    for s in estate.get("storage_accounts", []):
        sid = s.get("id") or (
            f"/subscriptions/{s['subscription']}/resourceGroups/{s['resource_group']}"
            f"/providers/Microsoft.Storage/storageAccounts/{s['name']}"
        )
        em.storage_accounts[sid.lower()] = {"id": sid, "location": norm_loc(s.get("location", "eastus"))}
    if estate.get("vaults"):
        em.vaults.seed(list(estate["vaults"]))
    for i, c in enumerate(estate.get("clusters", [])):
        _explained(f"clusters[{i}]", lambda c=c: _seed_cluster(em, c, now))
    for i, w in enumerate(estate.get("workspaces", [])):
        _explained(f"workspaces[{i}]", lambda w=w: _seed_workspace(em, w, now))
    em.list_cache.clear()
    em._recheck_revocations()
    return {
        "clusters": len(em.clusters),
        "workspaces": len(em.workspaces),
        "soft_deleted": len(em.soft_deleted),
        "storage_accounts": len(em.storage_accounts),
    }


def _explained(where: str, step: Any) -> None:
    """Seed errors name the entry and the field, not a bare KeyError."""
    try:
        step()
    except KeyError as exc:
        raise ValueError(f"estate {where}: missing field {exc}") from None
    except (TypeError, AttributeError) as exc:
        raise ValueError(f"estate {where}: {exc}") from None


def _seed_cluster(em: Emulator, c: dict[str, Any], now: Any) -> None:
    sub, rg, name = c["subscription"], c["resource_group"], c["name"]
    location = c.get("location", "eastus")
    _ensure_rg(em, sub, rg, location)
    ident = c.get("identity", "SystemAssigned")
    if isinstance(ident, str):
        ident = {"type": ident}
    itype = str(ident.get("type", "SystemAssigned"))
    uais: dict[str, dict[str, str]] = {}
    for rid in ident.get("userAssignedIdentities") or {}:
        known = em.identities.get(rid.lower()) or {
            "principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, rid.lower())),
            "clientId": str(uuid.uuid5(uuid.NAMESPACE_DNS, rid.lower())),
        }
        uais[rid] = dict(known)
    created = parse_time(c["created"]) if c.get("created") else now
    cl = Cluster(
        subscription=sub,
        resource_group=rg,
        name=name,
        location=location,
        tags=dict(c.get("tags") or {}),
        identity_type=itype,
        principal_id=(c.get("principal_id") or str(uuid.uuid4()))
        if "systemassigned" in itype.lower()
        else None,
        tenant_id=c.get("tenant_id", em.tenant_id),
        user_identities=uais,
        capacity=int(c.get("capacity", 1000)),
        sku_name="CapacityReservation",
        billing_type=c.get("billing_type", "Cluster"),
        double_encryption=bool(c.get("double_encryption", True)),
        availability_zones=(  # rule C9: unset, the region decides
            has_zones(norm_loc(str(location)))
            if c.get("availability_zones") is None
            else bool(c["availability_zones"])
        ),
        key=dict(c["key"]) if c.get("key") else None,
        cluster_id=c.get("cluster_id") or str(uuid.uuid4()),
        created=created,
        last_modified=created,
        last_sku_update=parse_time(c["last_sku_update"]) if c.get("last_sku_update") else created,
    )
    if c.get("key") is not None:
        cl.key = {
            "keyVaultUri": c["key"].get("keyVaultUri"),
            "keyName": c["key"].get("keyName"),
            "keyVersion": c["key"].get("keyVersion") or "",
        }
    state = str(c.get("provisioning_state", "Succeeded"))
    if c.get("deleted"):
        cl.deleted_at = parse_time(c["deleted"])
        em.soft_deleted.append(cl)  # rule C11
        activity_log.operation_events(
            em, subscription=sub, resource_group=rg, resource_id=cl.arm_id,
            operation_name="Microsoft.OperationalInsights/clusters/delete", method="DELETE",
            start=cl.deleted_at - timedelta(seconds=em.durations["cluster_delete"]), end=cl.deleted_at,
        )
        return
    em.clusters[cl.key_id] = cl
    if state.lower() in ("creating", "provisioningaccount"):
        remaining = float(c.get("remaining_seconds", em.durations["cluster_create"]))
        end = now + timedelta(seconds=remaining)
        cl.op = em.new_operation("cluster_create", sub, location, cl.key_id, end=end)
    elif state.lower() == "failed":
        cl.failed = True


def _seed_workspace(em: Emulator, w: dict[str, Any], now: Any) -> None:
    sub, rg, name = w["subscription"], w["resource_group"], w["name"]
    location = w.get("location", "eastus")
    _ensure_rg(em, sub, rg, location)
    created = parse_time(w["created"]) if w.get("created") else now
    ws = Workspace(
        subscription=sub,
        resource_group=rg,
        name=name,
        location=norm_loc(location),
        tags=dict(w.get("tags") or {}),
        sku=w.get("sku", "PerGB2018"),
        retention=int(w.get("retention", 30)),
        customer_id=w.get("customer_id") or str(uuid.uuid4()),
        created=created,
        modified=created,
        ready_at=created,
        saved_searches=int(w.get("saved_searches", 0)),
    )
    cluster = w.get("cluster")
    if cluster:
        if not str(cluster).startswith("/"):
            cluster = (
                f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights"
                f"/clusters/{cluster}"
            )
        ws.cluster = str(cluster)
        ws.linked_at = parse_time(w["linked_at"]) if w.get("linked_at") else created
    for t, st in (w.get("storage") or {}).items():
        ws.storage[t.lower()] = list(st) if isinstance(st, list) else [st]
    em.workspaces[ws.key_id] = ws
    em.w1_refresh(ws.key_id)  # rule W1
    # Past link/unlink operations: count for rule W3 (when Azure accepted them) and appear in the
    # Activity Log. Entry fields: time, kind (link|unlink), correlation (one ARM deployment shares it
    # across workspaces), status (Succeeded|Failed: accepted; Refused: Started + Failed, never counted),
    # linked_service (default "cluster"; e.g. "Automation" is another linked service, not rule W3).
    for entry in w.get("link_ops", []):
        if isinstance(entry, str):
            entry = {"time": entry, "kind": "link"}
        t = parse_time(entry["time"])
        kind = entry.get("kind", "link")
        status = str(entry.get("status", "Succeeded"))
        service = str(entry.get("linked_service", "cluster"))
        if service.lower() == "cluster" and status != "Refused":
            ws.link_history.append((t, kind))
        activity_log.operation_events(
            em, subscription=sub,
            resource_group=rg,
            resource_id=activity_log.link_resource_id(ws, service),
            operation_name="Microsoft.OperationalInsights/workspaces/linkedServices/"
            + ("delete" if kind == "unlink" else "write"),
            method="DELETE" if kind == "unlink" else "PUT",
            start=t,
            end=t + timedelta(seconds=float(entry.get("seconds", 1800))),
            outcome="Failed" if status == "Failed" else "Succeeded",
            http_status=409 if status == "Refused" else 200,
            asynchronous=status != "Refused",
            correlation_id=entry.get("correlation"),
        )
    _seed_noise(em, ws, int(w.get("activity_noise", 0)), now)


# Writes other than the cluster link that a workspace sees in the Activity Log under the same provider:
# tables, saved searches, data sources, the workspace itself, and other linked services (Automation)
# whose operation name is the cluster link's.
_LS = "Microsoft.OperationalInsights/workspaces/linkedServices"
_NOISE = (
    ("tables/{n}", "Microsoft.OperationalInsights/workspaces/tables/write", "PUT", True),
    ("savedSearches/{n}", "Microsoft.OperationalInsights/workspaces/savedSearches/write", "PUT", False),
    ("dataSources/{n}", "Microsoft.OperationalInsights/workspaces/dataSources/write", "PUT", False),
    ("", "Microsoft.OperationalInsights/workspaces/write", "PUT", True),
    ("linkedServices/Automation", _LS + "/write", "PUT", True),
    ("linkedServices/Automation", _LS + "/delete", "DELETE", True),
)


def _seed_noise(em: Emulator, ws: Workspace, count: int, now: datetime) -> None:
    """`activity_noise: N`: N other OperationalInsights writes on the workspace over the last 30 days,
    each with its Started/Accepted/Succeeded events (or Started/Succeeded when synchronous)."""
    rng = random.Random(ws.key_id)  # the same estate gives the same log
    for i in range(count):
        tail, name, method, asynchronous = _NOISE[i % len(_NOISE)]
        start = now - timedelta(seconds=rng.uniform(60, 30 * 86400))
        activity_log.operation_events(
            em, subscription=ws.subscription,
            resource_group=ws.resource_group,
            resource_id=ws.arm_id + ("/" + tail.format(n=f"Custom{i}_CL") if tail else ""),
            operation_name=name,
            method=method,
            start=start,
            end=start + timedelta(seconds=rng.uniform(1, 120)),
            http_status=202 if asynchronous else 200,
            asynchronous=asynchronous,
        )
