"""Observe: read the live state a spec touches with the fewest requests, into `ObservedState` + `History`.

Request budget (asserted by tests/azure/test_observe.py and tests/integration/test_fleet.py):

* per subscription the spec touches: 1 cluster list + 1 workspace list (+ nextLink pages), and
  1 Activity Log query (`resourceProvider eq 'Microsoft.OperationalInsights'` over the link window,
  only the 5 fields we read; `activity_log=False` skips it);
* per workspace the spec names WITH a BYOS block: 1 linkedStorageAccounts list (rules B1/B2);
* per referenced key: 1 list of its versions (Key Vault data plane; + the 401 challenge once per
  vault per process). Its `x-ms-keyvault-region` header gives the vault's region for free (rule C8);
* per subscription holding a cluster whose (non-HSM) key we read: 1 vault list (management plane),
  matched by vaultUri; other spec subscriptions are tried only while a vault is still unfound;
* per subscription where a declared cluster does not exist yet: 1 resource group list (a create
  into a missing group fails at apply);
* per user-assigned identity a declared cluster names: 1 GET of the identity (its principal id, so
  the vault's access policies can be checked before a create or key update, rule C7);
* per Managed HSM key a declared cluster uses and principal known (the user-assigned identity's, an
  existing cluster's): 1 list of that principal's role assignments on the key (the HSM's local RBAC,
  rule C7).

Link state comes from the lists alone (`features.clusterResourceId`, `associatedWorkspaces`): no
per-workspace GETs. W3 history = `associateDate` ∪ Activity Log (one operation per correlation id that
succeeded, or that started and has not finished: that one also marks the workspace busy, rule W5); the
CLI adds the local journal. Cluster, workspace and linkedStorageAccounts lists are read as raw JSON
through the SDK client's own pipeline (`send_request`, streamed so each page is parsed once; 3x faster
than building models at 40k workspaces); other reads go through the generated operations and `_raw`,
so SDK generations that type dates differently (RFC-1123 strings in SDK 14, docs/azure-wire.md) parse
the same way. Lists run two subscriptions at a time; identities and the spec's keys are read alongside,
and a subscription's BYOS reads and Activity Log query start as soon as its lists are in. An
unreadable cluster or workspace list raises (planning from an empty view would propose re-creating
everything); any other unreadable part becomes `ObservedState.warnings` and an "unknown", never a
"missing".
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any, TypeVar

from controller.azure.clients import AzureClients
from controller.azure.errors import AzureError, Forbidden, NotFound, Terminal, map_error
from controller.model import ids
from controller.model.history import ClusterDeletion, History, LinkOperation
from controller.model.limits import for_profile
from controller.model.observed import (
    AccessPolicy,
    HsmRoleAssignment,
    KeyVersion,
    ObservedCluster,
    ObservedKey,
    ObservedState,
    ObservedVault,
    ObservedWorkspace,
)
from controller.model.spec import DesiredState

log = logging.getLogger(__name__)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
T = TypeVar("T")

LINK_WRITE = "microsoft.operationalinsights/workspaces/linkedservices/write"
LINK_DELETE = "microsoft.operationalinsights/workspaces/linkedservices/delete"
_LINKED_SERVICE_TAIL = re.compile(r"/linkedservices/[^/]+$", re.I)
_FRACTION = re.compile(r"\.(\d+)")
_RFC1123 = re.compile(r"^[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$")
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                       "nov", "dec"), start=1)}


# -- parsing helpers ------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 (any fraction length, Z or offset) or RFC-1123 -> aware UTC datetime; junk -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if not text:
        return None
    if text[0].isdigit():
        iso = text.replace("Z", "+00:00").replace("z", "+00:00")
        # Python wants at most 6 fractional digits; Azure sends 7.
        iso = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), iso, count=1)
        try:
            parsed = datetime.fromisoformat(iso)
        except ValueError:
            return None
    else:
        fixed = _RFC1123.match(text)
        month = _MONTHS.get(fixed.group(2).lower()) if fixed else None
        if fixed and month:
            # ARM's usual form (`Thu, 01 Jan 2026 00:00:00 GMT`, e.g. 40,000 associateDates of a fleet's
            # clusters) read directly; anything else goes through the general RFC-822 parser
            day, _, year, hour, minute, second = fixed.groups()
            try:
                return datetime(int(year), month, int(day), int(hour), int(minute), int(second), tzinfo=UTC)
            except ValueError:
                return None
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _raw(model: Any) -> dict[str, Any]:
    """The wire JSON (camelCase) of an SDK model, whichever generator produced it."""
    if isinstance(model, dict):
        return model
    if isinstance(model, Mapping):  # TypeSpec-generated models (SDK 14, keyvault-mgmt 14)
        as_dict = getattr(model, "as_dict", None)
        return dict(as_dict()) if callable(as_dict) else dict(model)
    serialize = getattr(model, "serialize", None)  # msrest models (azure-mgmt-monitor)
    if callable(serialize):
        out = serialize(keep_readonly=True)
        return out if isinstance(out, dict) else {}
    return {}


def _get(data: Mapping[str, Any] | None, *path: str) -> Any:
    """Nested lookup that tolerates missing levels and key casing."""
    cur: Any = data
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        if key in cur:
            cur = cur[key]
            continue
        lower = key.lower()
        cur = next((v for k, v in cur.items() if str(k).lower() == lower), None)
    return cur


def _bool(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _workspace_key_from_link(resource_id: str) -> str:
    """…/workspaces/ws/linkedServices/cluster -> the workspace id key."""
    return ids.id_key(_LINKED_SERVICE_TAIL.sub("", resource_id))


# -- converting one resource ---------------------------------------------------------------------


def unwrap_cluster(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The cluster inside api-version 2020-03-01-preview's PATCH answer
    `{"message": "The cluster upsert was successful", "status": 0, "cluster": {...}}` (docs/azure-wire.md);
    any other body as it is."""
    inner = data.get("cluster")
    if "id" not in data and isinstance(inner, Mapping) and "id" in inner:
        return inner
    return data


def cluster_from_arm(data: Mapping[str, Any]) -> ObservedCluster:
    """One cluster's wire JSON -> ObservedCluster (ids kept as returned, location normalised)."""
    data = unwrap_cluster(data)
    cid = str(data.get("id") or "")
    rid = ids.ResourceId.parse(cid)
    props = _get(data, "properties") or {}
    identity = _get(data, "identity") or {}
    uai_map = _get(identity, "userAssignedIdentities") or {}
    uais = tuple(str(k) for k in uai_map) if isinstance(uai_map, Mapping) else ()
    principal = _get(identity, "principalId")
    if principal is None and isinstance(uai_map, Mapping):
        principal = next((_get(v, "principalId") for v in uai_map.values() if _get(v, "principalId")), None)
    kvp = _get(props, "keyVaultProperties") or {}
    key: ids.KeyRef | None = None
    if _get(kvp, "keyVaultUri") and _get(kvp, "keyName"):
        try:
            vault = ids.parse_vault_uri(str(_get(kvp, "keyVaultUri")))
        except ids.InvalidId:
            vault = ids.normalise_vault_uri(str(_get(kvp, "keyVaultUri")))
        version = _get(kvp, "keyVersion") or None
        key = ids.KeyRef(vault_uri=vault, name=str(_get(kvp, "keyName")), version=version)
    associated: dict[str, datetime | None] = {}
    dates: dict[Any, datetime | None] = {}  # up to 1,000 workspaces, often linked at the same times
    for aw in _get(props, "associatedWorkspaces") or []:
        rid_ws = _get(aw, "resourceId")
        if rid_ws:
            raw = _get(aw, "associateDate")
            when = dates[raw] if type(raw) is str and raw in dates else parse_time(raw)
            if type(raw) is str:
                dates[raw] = when
            associated[ids.id_key(str(rid_ws))] = when
    sku = _get(data, "sku") or {}
    last_sku = _get(sku, "lastSkuUpdate") or _get(props, "capacityReservationProperties", "lastSkuUpdate")
    unknown: set[str] = set()
    raw_capacity = _get(sku, "capacity")
    if isinstance(raw_capacity, bool) or _int(raw_capacity, -1) <= 0:
        unknown.add("capacity")  # "abc" is not 0 GB/day
    if not isinstance(_get(identity, "type"), str) or not str(_get(identity, "type")).strip():
        unknown.add("identity")  # no identity in the answer is not identity None (rule C12)
    if not isinstance(data.get("location"), str) or not str(data.get("location")).strip():
        unknown.add("location")
    return ObservedCluster(
        id=cid,
        subscription=rid.subscription,
        resource_group=rid.resource_group,
        name=str(data.get("name") or rid.name),
        location=ids.normalise_location(str(data.get("location") or "")),
        provisioning_state=str(_get(props, "provisioningState") or "Succeeded"),
        identity_type=str(_get(identity, "type") or "None"),
        user_assigned_identities=uais,
        principal_id=str(principal) if principal else None,
        tenant_id=str(_get(identity, "tenantId")) if _get(identity, "tenantId") else None,
        capacity=_int(_get(sku, "capacity")),
        billing_type=str(_get(props, "billingType") or "Cluster"),
        double_encryption=_bool(_get(props, "isDoubleEncryptionEnabled"), default=True),
        availability_zones=_bool(_get(props, "isAvailabilityZonesEnabled"), default=True),
        key=key,
        last_sku_update=parse_time(last_sku),
        created=parse_time(_get(props, "createdDate")),
        tags={str(k): str(v) for k, v in (data.get("tags") or {}).items()},
        associated_workspaces=associated,
        unknown=frozenset(unknown),
    )


def workspace_from_arm(data: Mapping[str, Any]) -> ObservedWorkspace:
    wid = str(data.get("id") or "")
    parts = ids.simple_parts(wid)
    if parts is None:
        rid = ids.ResourceId.parse(wid)
        parts = (rid.subscription, rid.resource_group, rid.name)
    subscription, resource_group, id_name = parts
    props: Any = data.get("properties")
    features = props.get("features") if isinstance(props, dict) else None
    if isinstance(features, dict) and "clusterResourceId" in features and "provisioningState" in props:
        cluster = features["clusterResourceId"]  # the wire's own spelling: no case-blind search
    else:
        props = _get(data, "properties") or {}
        cluster = _get(props, "features", "clusterResourceId")
    # values a whole fleet shares (a region, a state, one of a few clusters) kept once, not per workspace
    return ObservedWorkspace(
        id=wid,
        subscription=subscription,
        resource_group=resource_group,
        name=str(data.get("name") or id_name),
        location=sys.intern(ids.normalise_location(str(data.get("location") or ""))),
        provisioning_state=sys.intern(str(_get(props, "provisioningState") or "Succeeded")),
        cluster_id=sys.intern(str(cluster)) if cluster else None,
    )


def _workspace_stub(workspace_id: str, **fields: Any) -> ObservedWorkspace:
    """A workspace as one of its sub-resources shows it: location and state of the workspace itself are
    not part of that read (empty), only what the sub-resource says."""
    rid = ids.ResourceId.parse(workspace_id)
    return ObservedWorkspace(
        id=workspace_id, subscription=rid.subscription, resource_group=rid.resource_group, name=rid.name,
        location="", provisioning_state="", **fields,
    )


def link_from_arm(workspace_id: str, link: Mapping[str, Any] | None) -> ObservedWorkspace:
    """A workspace's linkedServices/cluster (None: not linked) -> its cluster and link state (W2, W5)."""
    if link is None:
        return _workspace_stub(workspace_id, cluster_id=None)
    props = _get(link, "properties") or {}
    cluster = _get(props, "writeAccessResourceId") or _get(props, "resourceId")
    state = _get(props, "provisioningState")
    return _workspace_stub(workspace_id, cluster_id=str(cluster) if cluster else None,
                           link_state=str(state) if state else None)


def byos_link_from_arm(workspace_id: str, storage: Mapping[str, Any] | None) -> ObservedWorkspace:
    """One linkedStorageAccounts resource (None: no link of that type) -> the workspace's BYOS view."""
    return _workspace_stub(workspace_id, cluster_id=None, byos=byos_from_arm([storage] if storage else []),
                           byos_read=True)


def _key_from_versions(ref: ids.KeyRef, items: Iterable[Any]) -> ObservedKey:
    versions: list[KeyVersion] = []
    recovery: str | None = None
    for item in items:
        kid = str(getattr(item, "id", "") or "")
        version = getattr(item, "version", None) or kid.rstrip("/").rsplit("/", 1)[-1]
        versions.append(
            KeyVersion(
                version=str(version),
                enabled=bool(getattr(item, "enabled", True)),
                created=parse_time(getattr(item, "created_on", None)),
                expires=parse_time(getattr(item, "expires_on", None)),
                not_before=parse_time(getattr(item, "not_before", None)),
            )
        )
        level = getattr(item, "recovery_level", None)
        recovery = recovery or (str(getattr(level, "value", level)) if level is not None else None)
    epoch = datetime.min.replace(tzinfo=UTC)
    versions.sort(key=lambda v: v.created or epoch)
    enabled = [v for v in versions if v.enabled]
    return ObservedKey(
        vault_uri=ref.vault_uri,
        name=ref.name,
        exists=bool(versions),
        current_version=enabled[-1].version if enabled else None,
        versions=tuple(versions),
        recovery_level=str(recovery) if recovery else None,
    )


def vault_from_arm(data: Mapping[str, Any]) -> ObservedVault:
    props = _get(data, "properties") or {}
    policies = []
    for p in _get(props, "accessPolicies") or []:
        perms = _get(p, "permissions", "keys") or []
        policies.append(
            AccessPolicy(
                tenant_id=str(_get(p, "tenantId") or ""),
                object_id=str(_get(p, "objectId") or ""),
                key_permissions=frozenset(str(x).lower() for x in perms),
            )
        )
    uri = str(_get(props, "vaultUri") or "")
    return ObservedVault(
        uri=uri,
        readable=True,
        location=ids.normalise_location(str(data.get("location") or "")) or None,
        tenant_id=str(_get(props, "tenantId")) if _get(props, "tenantId") else None,
        soft_delete=_bool(_get(props, "enableSoftDelete"), default=True),
        # absent from real responses when never set (docs/azure-wire.md) = off
        purge_protection=_bool(_get(props, "enablePurgeProtection"), default=False),
        rbac=_bool(_get(props, "enableRbacAuthorization"), default=False),
        access_policies=tuple(policies),
    )


_TERMINAL = ("succeeded", "failed", "canceled")
_ACCEPTED = ("accepted", "succeeded")  # a refused request is Started + Failed, with no Accepted
PENDING_HORIZON = timedelta(hours=6)  # a link takes up to ~90 min; older unfinished ones are stale
CLUSTER_DELETE = "microsoft.operationalinsights/clusters/delete"
_CLUSTER_LINK = re.compile(r"/workspaces/[^/]+/linkedservices/cluster$", re.I)
_CLUSTER_ID = re.compile(r"/providers/microsoft\.operationalinsights/clusters/[^/]+$", re.I)


@dataclass
class _Attempt:
    """The events of one operation on one resource (Started, Accepted, Succeeded/Failed)."""

    resource: str
    kind: str  # link | unlink | cluster_delete
    op_id: str
    first: datetime
    statuses: dict[str, datetime] = field(default_factory=dict)
    request_id: str | None = None

    @property
    def accepted(self) -> bool:
        """Azure took it on (rule W3 counts it whatever its outcome); a refusal never counts."""
        return any(s in self.statuses for s in _ACCEPTED)

    def pending(self, now: datetime) -> bool:
        return not any(s in self.statuses for s in _TERMINAL) and self.first > now - PENDING_HORIZON


def _attempts(events: Iterable[Mapping[str, Any]]) -> list[_Attempt]:
    """Group the events that matter by operation: resource + operationId.

    Only `.../linkedServices/cluster` is the cluster link (a workspace's `Automation` linked service has
    the same operation name), and `correlationId` is not an identity: one ARM deployment that links many
    workspaces shares it across all of them.
    """
    attempts: dict[tuple[str, str], _Attempt] = {}
    for ev in events:
        name = str(_get(ev, "operationName", "value") or "").lower()
        resource = str(_get(ev, "resourceId") or "")
        if name in (LINK_WRITE, LINK_DELETE) and _CLUSTER_LINK.search(resource):
            kind = "link" if name == LINK_WRITE else "unlink"
        elif name == CLUSTER_DELETE and _CLUSTER_ID.search(resource):
            kind = "cluster_delete"
        else:
            continue
        at = parse_time(_get(ev, "eventTimestamp"))
        if at is None:
            continue
        # per resource, the correlation id tells operations apart too (a deployment touches each once)
        op_id = str(_get(ev, "operationId") or _get(ev, "correlationId") or at.isoformat())
        status = str(_get(ev, "status", "value") or "").lower()
        a = attempts.setdefault(
            (resource.lower(), op_id), _Attempt(resource=resource, kind=kind, op_id=op_id, first=at)
        )
        a.first = min(a.first, at)
        a.statuses.setdefault(status, at)
        if status == "started" or a.request_id is None:
            a.request_id = str(_get(ev, "httpRequest", "clientRequestId") or "") or a.request_id
    return list(attempts.values())


def link_ops_from_events(
    events: Iterable[Mapping[str, Any]], *, now: datetime | None = None
) -> list[LinkOperation]:
    """Activity Log events -> link/unlink operations (rule W3): one per operation Azure accepted,
    whatever its outcome, and (when `now` is given) one per operation still running."""
    out: list[LinkOperation] = []
    for a in _attempts(events):
        if a.kind == "cluster_delete":
            continue
        if a.accepted:
            at = a.statuses.get("succeeded", a.first)
        elif now is not None and a.pending(now):
            at = a.first
        else:
            continue
        out.append(
            LinkOperation(
                workspace_key=_workspace_key_from_link(a.resource),
                kind=a.kind,
                at=at,
                source="activityLog",
                op_id=f"{a.resource.lower()}|{a.op_id}",
                request_id=a.request_id,
            )
        )
    return sorted(out, key=lambda o: o.at)


def cluster_deletions_from_events(
    events: Iterable[Mapping[str, Any]], locations: Mapping[str, str] | None = None
) -> list[ClusterDeletion]:
    """Clusters deleted, by anyone (rules C11, C2): the name stays reserved and the slot taken for the
    retention even when our journal never saw the delete. The Activity Log has no region: `locations`
    (cluster key -> region, from the spec) supplies it; an unknown one stays empty."""
    out: list[ClusterDeletion] = []
    for a in _attempts(events):
        if a.kind != "cluster_delete" or "succeeded" not in a.statuses:
            continue
        try:
            rid = ids.ResourceId.parse(a.resource)
        except ids.InvalidId:
            continue
        key = ids.id_key(a.resource)
        out.append(
            ClusterDeletion(
                cluster_key=key,
                subscription=rid.subscription,
                location=(locations or {}).get(key, ""),
                name=rid.name,
                at=a.statuses["succeeded"],
            )
        )
    return sorted(out, key=lambda d: d.at)


def pending_links(events: Iterable[Mapping[str, Any]], now: datetime) -> dict[str, str]:
    """Workspaces with a link or unlink still running (rule W5): started, not yet finished."""
    return {
        _workspace_key_from_link(a.resource): "InProgress"
        for a in _attempts(events)
        if a.kind != "cluster_delete" and a.pending(now)
    }


# -- the read ------------------------------------------------------------------------------------


@dataclass
class _Acc:
    """Results gathered by the worker threads."""

    clusters: dict[str, ObservedCluster] = field(default_factory=dict)
    workspaces: dict[str, ObservedWorkspace] = field(default_factory=dict)
    keys: dict[str, ObservedKey] = field(default_factory=dict)
    vaults: dict[str, ObservedVault] = field(default_factory=dict)
    link_ops: list[LinkOperation] = field(default_factory=list)
    deletions: list[ClusterDeletion] = field(default_factory=list)  # rules C11/C2, from the Activity Log
    pending: dict[str, str] = field(default_factory=dict)  # workspace key -> link state (rule W5)
    vault_regions: dict[str, str] = field(default_factory=dict)  # vault host -> x-ms-keyvault-region
    resource_groups: dict[str, frozenset[str]] = field(default_factory=dict)  # sub lower -> rg names lower
    principals: dict[str, str] = field(default_factory=dict)  # user-assigned identity id_key -> principal
    # Managed HSM host -> the role assignments read, and the (principal, key) pairs they were read for
    hsm_roles: dict[str, list[HsmRoleAssignment]] = field(default_factory=dict)
    hsm_read: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def warn(self, text: str) -> None:
        log.info("observe: %s", text)
        with self.lock:
            self.warnings.append(text)


def _attempt(acc: _Acc, what: str, fn: Callable[[], T], *, required: bool = False) -> T | None:
    """Run one read; a mapped Azure error becomes a warning (unreadable, not missing).

    `required` reads (the cluster and workspace lists) raise instead: planning without them would
    propose to create what already exists.
    """
    try:
        return fn()
    except Exception as exc:  # every SDK failure is mapped, then reported or raised
        err = map_error(exc)
        if required:
            raise err.context(f"could not read {what}") from None
        acc.warn(f"could not read {what}: {err}")
        return None


LIST_API_VERSION = "2025-07-01"  # what azure-mgmt-loganalytics 13/14 send (facts §1.1)


def list_raw(client: Any, path: str, fallback: Callable[[], Iterable[Any]]) -> list[dict[str, Any]]:
    """GET an ARM list through the SDK client's own pipeline (auth, retries, counting), raw JSON.

    Why not `client.clusters.list()`: the generated models cost ~0.6 ms per workspace to build and we
    only read a few fields; at 10 subscriptions x 4000 workspaces that is most of a plan's time.
    `send_request` is the SDKs' supported way to make a request the generated operations would make.
    Older SDKs without it (12.x) use the generated operation (`fallback`).
    """
    from azure.core.rest import HttpRequest

    if not callable(getattr(client, "send_request", None)):
        return [_raw(item) for item in fallback()]

    api_version = getattr(getattr(client, "_config", None), "api_version", None) or LIST_API_VERSION
    url: str | None = f"{path}?api-version={api_version}"
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    while url:
        response = _read_page(client, HttpRequest, url)
        response.raise_for_status()
        try:
            body = response.json()
        except ValueError:
            body = None
        page = body.get("value") if isinstance(body, dict) else None
        link = body.get("nextLink") if isinstance(body, dict) else None
        # a list that cannot be read is not an empty list: planning from it would create what exists
        if not isinstance(page, list) or not all(isinstance(v, dict) for v in page):
            raise Terminal(
                f"Azure answered GET {path} with a body that is not a list of resources "
                f"({_shape(body)}); nothing is planned from an incomplete view: run again later"
            )
        if link is not None and not isinstance(link, str):
            raise Terminal(f"Azure answered GET {path} with a nextLink that is not a URL ({_shape(link)})")
        items.extend(page)
        url = link or None
        if url in seen:  # a service bug must not loop forever
            break
        if url:
            seen.add(url)
    return items


PAGE_READS = 3  # a page whose body broke off is asked for again, as the SDK's read retries would


def _read_page(client: Any, request_type: Any, url: str) -> Any:
    """One list page through the client's pipeline, streamed and then read whole.

    Streamed because the pipeline's ContentDecodePolicy would otherwise parse every body as JSON once
    more for nobody (the generated operations' way of reading it): 40 MB of JSON for a 40,000-workspace
    fleet. A streamed body is read after the retry policy has let go, so a connection that breaks while
    it is read is re-sent here."""
    from azure.core.exceptions import DecodeError, ServiceResponseError

    for attempt in range(1, PAGE_READS + 1):
        response = client.send_request(request_type("GET", url), stream=True)
        try:
            response.read()
        except (ServiceResponseError, DecodeError):  # IncompleteReadError is a DecodeError
            response.close()
            if attempt == PAGE_READS:
                raise
            continue
        return response
    raise AssertionError("unreachable")


def _shape(value: Any) -> str:
    """What an unreadable answer looked like, briefly (never its content: it may be large)."""
    if isinstance(value, dict):
        if "value" not in value:
            return "no 'value' array"
        if isinstance(value["value"], list):
            return "'value' has items that are not objects"
        return f"'value' is a {type(value['value']).__name__}, not an array of objects"
    return "not a JSON object" if value is not None else "not JSON"


# At most this many subscriptions' cluster/workspace lists are held as raw JSON at once. A list of
# 4,000 workspaces is ~25 MB of Python dicts until converted; 8 at once made a plan of a 40,000-workspace
# fleet peak near 300 MB. Parsing is CPU-bound under the GIL, so more at once would not be faster.
LIST_CONCURRENCY = 2


def _read_lists(sub: str, clients: AzureClients, acc: _Acc) -> None:
    la = clients.loganalytics(sub)
    base = f"/subscriptions/{sub}/providers/Microsoft.OperationalInsights"
    for kind, fallback, parse, into in (
        ("clusters", la.clusters.list, cluster_from_arm, acc.clusters),
        ("workspaces", la.workspaces.list, workspace_from_arm, acc.workspaces),
    ):
        _read_list(acc, sub, kind, partial(list_raw, la, f"{base}/{kind}", fallback), parse, into)


def _read_list(
    acc: _Acc, sub: str, kind: str, read: Callable[[], Any], parse: Callable[[Any], Any], into: dict[str, Any]
) -> None:
    """One subscription-wide list (required: planning from a partial view would re-create things)."""
    items = _attempt(acc, f"{kind} of subscription {sub}", read, required=True)
    for data in items or []:
        try:
            item = parse(data)
        except (ids.InvalidId, ValueError, TypeError, AttributeError) as exc:
            # a skipped cluster would read as "missing" and be planned for creation
            raise Terminal(
                f"could not read {kind} of subscription {sub}: a {kind[:-1]} with an unexpected shape "
                f"({exc}); nothing is planned from an incomplete view"
            ) from None
        with acc.lock:
            into[ids.id_key(item.id)] = item


# The fields the W3 / C11 reading uses, and no more (`$select`): an event is ~2 KB in full.
ACTIVITY_SELECT = "operationName,resourceId,eventTimestamp,status,operationId,httpRequest"
ACTIVITY_PROVIDER = "Microsoft.OperationalInsights"
CLOCK_SKEW = timedelta(hours=1)


def activity_filter(now: datetime, window: timedelta) -> str:
    """As narrow as the Activity Log's `$filter` allows: the time range plus one equality, and of those
    the provider is the narrowest that covers every workspace and cluster of a subscription in one
    query (`resourceUri` would cost one query per workspace; docs/azure-wire.md)."""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    since = (now - window).astimezone(UTC).strftime(fmt)
    # an operation Azure stamped a little after our clock says "now" still counts (clock skew)
    until = (now + CLOCK_SKEW).astimezone(UTC).strftime(fmt)
    return (
        f"eventTimestamp ge '{since}' and eventTimestamp le '{until}' "
        f"and resourceProvider eq '{ACTIVITY_PROVIDER}'"
    )


def _read_activity(
    sub: str,
    clients: AzureClients,
    acc: _Acc,
    *,
    now: datetime,
    window: timedelta,
    locations: Mapping[str, str],
) -> None:
    flt = activity_filter(now, window)
    mon = clients.monitor(sub)
    events = _attempt(
        acc,
        f"activity log of subscription {sub}",
        lambda: [_raw(e) for e in mon.activity_logs.list(filter=flt, select=ACTIVITY_SELECT)],
    )
    if events is not None:
        ops = link_ops_from_events(events, now=now)
        running = pending_links(events, now)
        deletions = cluster_deletions_from_events(events, locations)
        with acc.lock:
            acc.link_ops.extend(ops)
            acc.pending.update(running)
            acc.deletions.extend(deletions)


def _read_byos(ws_id: str, clients: AzureClients, acc: _Acc) -> None:
    rid = ids.ResourceId.parse(ws_id)
    la = clients.loganalytics(rid.subscription)
    key = ids.id_key(ws_id)
    try:
        # raw JSON through the client's pipeline, like the lists: one small read per BYOS workspace,
        # where building the SDK's models costs as much as the request
        items = list_raw(
            la,
            f"{rid}/linkedStorageAccounts",
            partial(la.linked_storage_accounts.list_by_workspace, rid.resource_group, rid.name),
        )
    except Exception as exc:  # mapped below
        err = map_error(exc, operation=f"BYOS of {rid.name}")
        if isinstance(err, NotFound):
            return  # the workspace does not exist (yet): nothing linked
        acc.warn(f"could not read BYOS of workspace {rid.name}: {err}")
        return
    byos = byos_from_arm(items)
    with acc.lock:
        ws = acc.workspaces.get(key)
        if ws is not None:
            acc.workspaces[key] = dataclasses.replace(ws, byos=byos, byos_read=True)


def byos_from_arm(items: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """A linkedStorageAccounts list -> data source type (lower-case) -> first storage account id.

    Azure answers `dataSourceType` and `name` lower-cased (`customlogs`) while the id keeps the
    request's casing (docs/azure-wire.md); rules B1/B2 compare types case-insensitively.
    """
    byos: dict[str, str] = {}
    for item in items:
        kind = str(_get(item, "properties", "dataSourceType") or _get(item, "name") or "").lower()
        accounts = _get(item, "properties", "storageAccountIds") or []
        if kind and accounts:
            byos[kind] = str(accounts[0])
    return byos


def _read_key(ref: ids.KeyRef, clients: AzureClients, acc: _Acc) -> None:
    kc = clients.keys(ref.vault_uri)
    region: list[str] = []

    def hook(response: Any) -> None:
        # Key Vault names its region on every data-plane answer: rule C8 evidence for free when the
        # vault resource itself is not readable.
        clients.counter.hook(response)
        value = response.http_response.headers.get("x-ms-keyvault-region")
        if value:
            region.append(ids.normalise_location(str(value)))

    try:
        items = list(kc.list_properties_of_key_versions(ref.name, raw_response_hook=hook))
        observed = _key_from_versions(ref, items)
    except Exception as exc:  # mapped below
        err = map_error(exc)
        if isinstance(err, NotFound):
            observed = ObservedKey(ref.vault_uri, ref.name, False, None, (), None)
        else:
            if isinstance(err, Forbidden):
                acc.warn(f"Key Vault refused to list versions of key {ref.key()}: {err}")
            else:
                acc.warn(f"could not read key {ref.key()}: {err}")
            observed = ObservedKey(ref.vault_uri, ref.name, False, None, (), None, readable=False)
    with acc.lock:
        acc.keys[ref.key()] = observed
        if region:
            acc.vault_regions[ref.vault_host.lower()] = region[-1]


def _read_vaults(sub: str, clients: AzureClients, acc: _Acc, wanted: set[str]) -> set[str]:
    """List vaults of one subscription; record those whose host is wanted. Returns hosts found."""
    kv = clients.keyvault_mgmt(sub)
    vaults = _attempt(
        acc, f"key vaults of subscription {sub}", lambda: [_raw(v) for v in kv.vaults.list_by_subscription()]
    )
    found: set[str] = set()
    for data in vaults or []:
        try:
            vault = vault_from_arm(data)
        except (ValueError, TypeError):
            continue
        host = ids.KeyRef(vault.uri, "x").vault_host.lower()
        if host in wanted:
            found.add(host)
            with acc.lock:
                acc.vaults[host] = vault
    return found


RESOURCE_GROUPS_API_VERSION = "2022-09-01"
IDENTITY_API_VERSION = "2023-01-31"


def _arm_get(client: Any, url: str) -> dict[str, Any]:
    """One ARM GET through an SDK client's own pipeline (auth, retries, counting), raw JSON.

    Resource groups and identities are read this way: the management SDKs for them are not
    dependencies, and one list/GET is all we need."""
    from azure.core.rest import HttpRequest

    response = client.send_request(HttpRequest("GET", url))
    response.raise_for_status()
    body = response.json()
    return body if isinstance(body, dict) else {}


def _read_resource_groups(sub: str, clients: AzureClients, acc: _Acc) -> None:
    """The subscription's resource group names (nextLink pages followed); unreadable = unknown."""
    la = clients.loganalytics(sub)

    def read() -> frozenset[str]:
        names: set[str] = set()
        url: str | None = f"/subscriptions/{sub}/resourcegroups?api-version={RESOURCE_GROUPS_API_VERSION}"
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            body = _arm_get(la, url)
            groups = [g for g in body.get("value") or [] if isinstance(g, dict)]
            names.update(str(g.get("name") or "").lower() for g in groups)
            url = body.get("nextLink") or None
        return frozenset(names - {""})

    groups = _attempt(acc, f"resource groups of subscription {sub}", read)
    if groups is not None:
        with acc.lock:
            acc.resource_groups[sub.lower()] = groups


def _read_identity(identity_id: str, clients: AzureClients, acc: _Acc) -> None:
    """A user-assigned identity's principal id; a missing or unreadable one is a warning."""
    rid = ids.ResourceId.parse(identity_id)
    la = clients.loganalytics(rid.subscription)
    try:
        body = _arm_get(la, f"{identity_id}?api-version={IDENTITY_API_VERSION}")
    except Exception as exc:  # mapped below
        err = map_error(exc, operation=f"identity {rid.name}")
        if isinstance(err, NotFound):
            acc.warn(f"user-assigned identity {identity_id} does not exist")
        else:
            acc.warn(f"could not read user-assigned identity {rid.name}: {err}")
        return
    principal = _get(body, "properties", "principalId")
    if principal:
        with acc.lock:
            acc.principals[ids.id_key(identity_id)] = str(principal)


def _read_hsm_roles(read: tuple[str, str, str], clients: AzureClients, acc: _Acc) -> None:
    """Rule C7 on a Managed HSM: the role assignments of one principal that reach one key, from the
    HSM's local RBAC (`GET {hsm}/keys/{key}/providers/Microsoft.Authorization/roleAssignments` with
    `$filter=principalId eq '{id}'`). Unreadable: a warning, and the access stays unverified."""
    host, key_name, principal = read
    try:
        client = clients.access_control(f"https://{host}/")
        only = f"principalId eq '{principal}'"
        items = list(client.list_role_assignments(f"/keys/{key_name}", filter=only))
    except Exception as exc:  # mapped below
        acc.warn(f"could not read the role assignments of principal {principal} on Managed HSM {host}: "
                 f"{map_error(exc)}")
        return
    roles = []
    for item in items:
        props = getattr(item, "properties", None)
        role_id = str(getattr(props, "role_definition_id", "") or "")
        scope = getattr(props, "scope", None)
        roles.append(HsmRoleAssignment(
            principal_id=str(getattr(props, "principal_id", "") or ""),
            role_id=role_id.rstrip("/").rsplit("/", 1)[-1].lower(),
            # the SDK turns "/" and "/keys" into KeyVaultRoleScope members (str enums): their value
            scope=str(getattr(scope, "value", scope) or "/"),
        ))
    with acc.lock:
        acc.hsm_roles.setdefault(host, []).extend(roles)
        acc.hsm_read.setdefault(host, set()).add((principal.lower(), key_name.lower()))


def _hsm_reads(desired: DesiredState, clients: AzureClients, acc: _Acc) -> list[tuple[str, str, str]]:
    """(HSM host, key name, principal) for every Managed HSM key a declared cluster uses or will use and
    every principal known now: the user-assigned identity's, and an existing cluster's. A new cluster's
    system-assigned principal does not exist yet (its access is checked once it does)."""
    out: set[tuple[str, str, str]] = set()
    for c in desired.clusters:
        live = acc.clusters.get(ids.id_key(c.arm_id))
        uai = c.spec.identity.user_assigned_identity
        principals = {acc.principals.get(ids.id_key(uai)) if uai else None,
                      live.principal_id if live else None}
        for ref in (c.spec.key.ref() if c.spec.key is not None else None, live.key if live else None):
            if ref is None or not ref.is_managed_hsm or not clients.cloud.owns_vault_host(ref.vault_host):
                continue
            # a principal id goes into an OData filter: only a GUID, as Azure makes them
            out |= {(ref.vault_host.lower(), ref.name, p) for p in principals if p and _GUID.match(p)}
    return sorted(out)


def _map_parallel(pool: ThreadPoolExecutor, fn: Callable[[Any], None], items: Iterable[Any]) -> None:
    for future in [pool.submit(fn, item) for item in items]:
        future.result()


def observe(
    desired: DesiredState,
    clients: AzureClients,
    *,
    now: datetime | Callable[[], datetime],
    activity_log: bool = True,
    max_workers: int = 8,
) -> tuple[ObservedState, History]:
    """Read everything the spec touches.

    `now` is a time, or a clock read once the lists have answered (the service's clock needs one
    ARM response first): the Activity Log window and `read_at` use it.

    Raises an `AzureError` only when a subscription's cluster or workspace list is unreadable (a plan
    from an empty view would be dangerous); any other unreadable part becomes a warning.
    """
    clock: Callable[[], datetime] = now if callable(now) else (lambda: now)
    subs = sorted(desired.subscriptions())
    limits = for_profile(desired.settings.limits_profile)
    window = max(limits.link_window, limits.soft_delete_retention)
    locations = {ids.id_key(c.arm_id): c.spec.location for c in desired.clusters}
    acc = _Acc()
    # BYOS only for named workspaces with a BYOS block that exist (1 request each), per subscription
    byos_ids: dict[str, list[tuple[str, str]]] = {}
    for ws_key, entry in desired.workspace_entries().items():
        if entry.byos is not None:
            sub = ids.ResourceId.parse(entry.id).subscription.lower()
            byos_ids.setdefault(sub, []).append((ws_key, entry.id))
    # Keys: the spec's and those the managed clusters reference now (rule K1 drift).
    refs: dict[str, ids.KeyRef] = {}
    for c in desired.clusters:
        if c.spec.key is not None:
            ref = c.spec.key.ref()
            refs.setdefault(ref.key(), ref)
    spec_refs = list(refs.values())
    uais = {
        ids.id_key(c.spec.identity.user_assigned_identity): c.spec.identity.user_assigned_identity
        for c in desired.clusters
        if c.spec.identity.user_assigned_identity and c.spec.key is not None
    }
    workers = max(1, min(max_workers, 16))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="observe") as pool, \
            ThreadPoolExecutor(max_workers=LIST_CONCURRENCY, thread_name_prefix="observe-list") as lists:
        # Reads that need nothing from the lists start with them: the spec's identities and keys.
        # Each subscription's BYOS reads and Activity Log query start as soon as its lists are read,
        # while other subscriptions' lists are still being answered.
        started: list[Future[None]] = [
            *(pool.submit(_read_identity, i, clients, acc) for i in uais.values()),
            *(pool.submit(_read_key, r, clients, acc) for r in spec_refs),
        ]

        def after_lists(sub: str) -> None:
            _read_lists(sub, clients, acc)
            follow: list[Future[None]] = []
            if activity_log:
                # the log covers the longer of the W3 window and the C11 retention
                follow.append(pool.submit(
                    _read_activity, sub, clients, acc, now=clock(), window=window, locations=locations
                ))
            follow += [
                pool.submit(_read_byos, ws_id, clients, acc)
                for ws_key, ws_id in byos_ids.get(sub.lower(), [])
                if ws_key in acc.workspaces
            ]
            with acc.lock:
                started.extend(follow)

        for future in [lists.submit(after_lists, s) for s in subs]:
            future.result()
        for future in list(started):
            future.result()

        cluster_keys = {ids.id_key(c.arm_id) for c in desired.clusters}
        for key, oc in acc.clusters.items():
            if key in cluster_keys and oc.key is not None:
                if not clients.cloud.owns_vault_host(oc.key.vault_host):
                    # Azure's keyVaultUri is untrusted: a host outside this cloud's Key Vault / Managed
                    # HSM suffixes never gets a token; it is a finding, not a key to read
                    acc.warn(
                        f"cluster {oc.name} names the key vault host {oc.key.vault_host!r}, which is not a "
                        f"Key Vault or Managed HSM of {clients.cloud.name}: not contacted"
                    )
                    continue
                refs.setdefault(oc.key.key(), oc.key)
        # Resource groups only where a declared cluster is missing: its create needs the group.
        missing_subs = sorted(
            {c.spec.subscription for c in desired.clusters if ids.id_key(c.arm_id) not in acc.clusters}
        )
        _map_parallel(pool, lambda s: _read_resource_groups(s, clients, acc), missing_subs)
        read_refs = {r.key() for r in spec_refs}
        later = [r for k, r in refs.items() if k not in read_refs]  # keys only the live clusters name
        _map_parallel(pool, lambda r: _read_key(r, clients, acc), later)

        # Vaults: the subscriptions of clusters using them first, the rest only if still unfound.
        # A Managed HSM is not a Microsoft.KeyVault/vaults resource and is RBAC-only: no access
        # policies to read; its recoverability comes from the key's recoveryLevel.
        _map_parallel(pool, lambda r: _read_hsm_roles(r, clients, acc), _hsm_reads(desired, clients, acc))
        for r in refs.values():
            if r.is_managed_hsm:
                host = r.vault_host.lower()
                acc.vaults[host] = ObservedVault(
                    uri=f"https://{host}/", readable=False, rbac=True, location=acc.vault_regions.get(host),
                    hsm_roles_read=frozenset(acc.hsm_read.get(host, set())),
                    hsm_roles=tuple(acc.hsm_roles.get(host, [])),
                )
        wanted = {r.vault_host.lower() for r in refs.values() if not r.is_managed_hsm}
        if wanted:
            first = sorted(
                {
                    c.spec.subscription
                    for c in desired.clusters
                    if c.spec.key is not None and not c.spec.key.ref().is_managed_hsm
                }
            )
            found: set[str] = set()
            for sub in first:
                found |= _read_vaults(sub, clients, acc, wanted - found)
                if found >= wanted:
                    break
            for sub in subs:
                if found >= wanted:
                    break
                if sub not in first:
                    found |= _read_vaults(sub, clients, acc, wanted - found)
            for host in sorted(wanted - found):
                vault_uri = f"https://{host}/"
                acc.vaults[host] = ObservedVault(
                    uri=vault_uri, readable=False, location=acc.vault_regions.get(host)
                )
                acc.warn(
                    f"vault {host} is not readable in the spec's subscriptions; "
                    "falling back to the key's recoveryLevel for soft delete / purge protection (rule C7)"
                )

    for ws_key, link_state in acc.pending.items():  # rule W5: one link operation at a time
        if ws_key in acc.workspaces:
            acc.workspaces[ws_key] = dataclasses.replace(acc.workspaces[ws_key], link_state=link_state)
    history = History(
        link_operations=tuple(_associate_ops(acc.clusters) + acc.link_ops),
        cluster_deletions=tuple(d for d in acc.deletions if ids.id_key(d.cluster_key) not in acc.clusters),
    )
    state = ObservedState(
        subscriptions=tuple(subs),
        clusters=dict(sorted(acc.clusters.items())),
        workspaces=dict(sorted(acc.workspaces.items())),
        keys=dict(sorted(acc.keys.items())),
        vaults=dict(sorted(acc.vaults.items())),
        read_at=clock(),
        warnings=tuple(sorted(set(acc.warnings))),
        resource_groups=dict(sorted(acc.resource_groups.items())),
        identity_principals=dict(sorted(acc.principals.items())),
    )
    return state, History().merged(history)


def _associate_ops(clusters: Mapping[str, ObservedCluster]) -> list[LinkOperation]:
    """`associateDate` of every linked workspace is a link operation for rule W3."""
    out = []
    for key, c in clusters.items():
        for ws_key, at in c.associated_workspaces.items():
            if at is not None:
                out.append(LinkOperation(ws_key, "link", at, cluster_key=key, source="associateDate"))
    return out


__all__ = [
    "AzureError",
    "byos_from_arm",
    "byos_link_from_arm",
    "cluster_deletions_from_events",
    "cluster_from_arm",
    "link_from_arm",
    "link_ops_from_events",
    "observe",
    "parse_time",
    "unwrap_cluster",
    "vault_from_arm",
    "workspace_from_arm",
]
