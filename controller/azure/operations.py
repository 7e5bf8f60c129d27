"""One function per plan action, on the real SDK (azure-mgmt-loganalytics 14), made crash-safe.

Every action has the same four phases so the executor can journal between them:

* `view(change)`      re-read the target as observe models it (controller.model.observed);
* `precheck(change)`  from the view: DONE (skip, idempotency), NEEDED, or IN_PROGRESS (someone's
                      operation is running on it: wait, never send a second one, rules C6/W5);
* `start(change, on_sent)`  send the request, and hand the LRO's continuation token and status URL
                      to `on_sent` (which journals them) BEFORE anything waits;
* `when_done(handle, on_end)` / `wait(handle)` / `resume(action, target, token)`  follow it to the end:
                      `when_done` hands it to the Watch and returns at once (`on_end` is called when
                      it ends: the operation holds no thread), `wait` blocks; after a restart the
                      poller is rebuilt from the journaled token (`begin_*(continuation_token=...)`),
                      never re-sent;
* `verify(change)`    re-read and compare with the change's parameters: a mismatch is InconsistentResult
                      (a link the watch followed to its end: as the SDK's final GET read it then).

Precheck and verify compare through controller.model.compare, the functions the planner decides
with: a change the planner wants is never taken for "already done", and the reverse.

Bodies are built from the plan's parameters and carry writable fields only (never
associatedWorkspaces, provisioningState, clusterId...). Errors are mapped by controller.azure.errors.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from controller.azure import errors
from controller.azure.clients import AzureClients, check_host
from controller.azure.observe import byos_link_from_arm, cluster_from_arm, link_from_arm, list_raw
from controller.azure.pacing import READS, subscription_of
from controller.azure.tokens import TokenPacker
from controller.azure.watch import DeferredPolling, Watch
from controller.model import compare, ids
from controller.model.access import grant_remedy
from controller.model.observed import ObservedCluster, ObservedWorkspace
from controller.model.rules import Rule
from controller.planning.plan import (
    Action,
    ByosLinkParams,
    ByosUnlinkParams,
    Change,
    CreateParams,
    DeleteParams,
    IdentityParams,
    KeyParams,
    LinkParams,
    SetKeyParams,
    UnlinkParams,
    UpdateParams,
)

_LINKED_SERVICE = "cluster"


class Precheck(StrEnum):
    DONE = "done"
    NEEDED = "needed"
    IN_PROGRESS = "in_progress"


class InconsistentResult(errors.Terminal):
    """The operation ended but the resource does not look like the plan said it would."""


@dataclass
class Handle:
    """A started operation: the poller (None when Azure finished synchronously) and its journal data."""

    action: Action
    target: str
    poller: Any
    continuation_token: str | None
    status_url: str | None
    # how the workspaces list shows a link (unlink) ended: (workspace key, cluster key or None)
    probe: tuple[str, str | None] | None = None


OnSent = Callable[[str | None, str | None], None]  # (status_url, continuation_token)


def _request_id(p: LinkParams | UnlinkParams) -> dict[str, str]:
    """The journaled x-ms-client-request-id (azure-core's `request_id` option): the Activity Log shows
    it as httpRequest.clientRequestId, so the journal's record and Azure's are one operation (rule W3)."""
    return {"request_id": p.request_id} if p.request_id else {}


def _as_dict(model: Any) -> dict[str, Any]:
    """An SDK model as its wire JSON (camelCase keys): azure-mgmt-loganalytics 14 models are Mappings
    over the wire JSON."""
    if model is None:
        return {}
    if isinstance(model, Mapping):
        return dict(model)
    raise TypeError(f"not an azure-mgmt-loganalytics 14 model: {type(model).__name__}")


def _status_url(poller: Any) -> str | None:
    """The Azure-AsyncOperation (or Location) URL of the initial response, for the journal and logs."""
    try:
        initial = poller.polling_method()._initial_response.http_response
        headers = initial.headers
        url = headers.get("Azure-AsyncOperation") or headers.get("Location")
        return str(url) if url else None
    except Exception:
        return None


_POLL_HEADERS = ("azure-asyncoperation", "location", "operation-location")


def resume_urls(token: str) -> list[str]:
    """Every URL a continuation token makes the SDK call: the request's and the polling headers'.

    The token is azure-core's base64 JSON (`{"version", "data": {"request", "response"}}`); anything
    else is unreadable resume data, refused rather than guessed.
    """
    try:
        data = json.loads(base64.b64decode(token, validate=True).decode("utf-8"))["data"]
        urls = [str(data["request"]["url"])]
        headers = data["response"]["headers"] or {}
        urls += [str(v) for k, v in headers.items() if str(k).lower() in _POLL_HEADERS and v]
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise errors.UntrustedEndpoint("the journaled continuation token is unreadable") from None
    return urls


class _Followed:
    """An operation in the watch between its status reads: how to rebuild its polling and to whom its
    end is reported. One small object, where closures and their cells cost ~1 KB for each of 40,000
    links in flight."""

    __slots__ = ("action", "on_end", "ops", "packed", "target", "zdict")

    def __init__(
        self,
        ops: Operations,
        action: Action,
        target: str,
        on_end: Callable[[errors.AzureError | None], None],
        zdict: bytes,
        packed: bytes,
    ) -> None:
        self.ops, self.action, self.target, self.on_end = ops, action, target, on_end
        self.zdict, self.packed = zdict, packed

    def restore(self) -> DeferredPolling:
        action, target = self.action, self.target
        params = {"workspace_id": target} if action in (Action.LINK, Action.UNLINK) else {}
        token = TokenPacker.unpack(self.zdict, self.packed)
        again = self.ops._begin_from_token(action, target, params, token)
        polling = again.polling_method() if again is not None else None
        if not isinstance(polling, DeferredPolling):
            raise errors.Terminal(f"{action} {target}: its polling could not be rebuilt from its token")
        return polling

    def ended(self, exc: BaseException | None) -> None:
        """Its end, mapped as every other call's error is; named only when it ends in error."""
        if exc is None:
            self.on_end(None)
        elif isinstance(exc, errors.StillRunning):
            self.on_end(self.ops._still_running(f"{self.action} {self.target}"))
        else:
            self.on_end(errors.map_error(exc, operation=f"wait for {self.action} {self.target}"))

    def keep(self, polling: DeferredPolling) -> None:
        self.ops._keep_final_link(self.target, _as_dict(polling.resource()))


class Operations:
    """The executor's gateway to Azure for plan changes (one instance per apply, thread-safe)."""

    def __init__(
        self,
        clients: AzureClients,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float | None = None,
        operation_timeout: float | None = None,
        watch: Watch | None = None,
        list_progress: bool = True,
    ) -> None:
        self.clients = clients
        self._sleep = sleep
        self._poll = clients.polling_interval if poll_interval is None else poll_interval
        # An operation stuck past this stops its branch instead of hanging the apply forever (fault
        # matrix cell "op-stuck"). Creates usually take ~2 h, links up to 90 min.
        default = clients.settings.operation_timeout  # CMKCTL_OPERATION_TIMEOUT
        self._op_timeout = operation_timeout if operation_timeout is not None else default
        # link progress from one workspaces list per subscription (see controller.azure.watch)
        lister = self.linked_clusters if list_progress else None
        # a link as the SDK's final GET read it after Azure ended the operation, until its verify: that
        # GET is the re-read after the operation, and a second GET of the same link would add nothing
        self._seen: dict[str, dict[str, Any]] = {}
        self._seen_guard = threading.Lock()
        self._tokens = TokenPacker()
        self.watch = watch or Watch(read_rate=self._read_rate, min_interval=self._poll, lister=lister)

    def _read_rate(self, subscription: str) -> float | None:
        """Reads per second ARM refills for the subscription as our requests are paced (None: unpaced)."""
        pacer = self.clients.pacer
        return pacer.budget[READS][1] if pacer is not None else None

    def _polling(self) -> DeferredPolling:
        """The SDK's ARM polling, its status reads made by the Watch."""
        return DeferredPolling(self._poll)

    # -- reading -----------------------------------------------------------------------------------

    def _la(self, subscription: str) -> Any:
        return self.clients.loganalytics(subscription)

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            raise errors.map_error(exc, operation=what) from exc

    def _read(self, what: str, fn: Callable[[], Any]) -> dict[str, Any] | None:
        """A GET as a plain dict; None when the resource does not exist (404)."""
        try:
            return _as_dict(self._call(what, fn))
        except errors.NotFound:
            return None

    def read_cluster(self, cluster_arm_id: str) -> dict[str, Any] | None:
        rid = ids.ResourceId.parse(cluster_arm_id)
        return self._read(
            f"read cluster {rid.name}",
            lambda: self._la(rid.subscription).clusters.get(rid.resource_group, rid.name),
        )

    def read_link(self, workspace_id: str) -> dict[str, Any] | None:
        """The workspace's linkedServices/cluster (rule W2: at most one), or None if unlinked."""
        rid = ids.ResourceId.parse(workspace_id)
        return self._read(
            f"read link of {rid.name}",
            lambda: self._la(rid.subscription).linked_services.get(
                rid.resource_group, rid.name, _LINKED_SERVICE
            ),
        )

    def linked_clusters(self, subscription: str) -> dict[str, str | None]:
        """Every workspace of the subscription -> the cluster it is linked to (id keys; None: none), from
        one workspaces list (`features.clusterResourceId`, as observe reads it)."""
        la = self._la(subscription)
        path = f"/subscriptions/{subscription}/providers/Microsoft.OperationalInsights/workspaces"
        items = self._call(
            f"list workspaces of {subscription}", lambda: list_raw(la, path, la.workspaces.list)
        )
        out: dict[str, str | None] = {}
        for item in items:
            features = (item.get("properties") or {}).get("features") or {}
            cluster = features.get("clusterResourceId") if isinstance(features, dict) else None
            out[ids.id_key(str(item.get("id") or ""))] = ids.id_key(str(cluster)) if cluster else None
        return out

    def read_byos(self, workspace_id: str, data_source_type: str) -> dict[str, Any] | None:
        rid = ids.ResourceId.parse(workspace_id)
        return self._read(
            f"read {data_source_type} storage of {rid.name}",
            lambda: self._la(rid.subscription).linked_storage_accounts.get(
                rid.resource_group, rid.name, data_source_type
            ),
        )

    def view(self, change: Change) -> View | None:
        """The target as observe models it (controller.model.observed); None: the cluster does not exist.

        A workspace is never None: its link or BYOS read says whether it is linked (`cluster_id`,
        `link_state`) or has storage of the type (`byos`).
        """
        p = change.parameters
        if isinstance(p, LinkParams | UnlinkParams):
            return link_from_arm(p.workspace_id, self.read_link(p.workspace_id))
        if isinstance(p, ByosLinkParams | ByosUnlinkParams):
            return byos_link_from_arm(p.workspace_id, self.read_byos(p.workspace_id, p.data_source_type))
        cluster = self.read_cluster(change.resource_id)
        return None if cluster is None else cluster_from_arm(cluster)

    # -- precheck ----------------------------------------------------------------------------------

    def precheck(self, change: Change) -> Precheck:
        """Idempotency: is the change already in effect, needed, or being done by a running operation?"""
        view = self.view(change)
        a = change.action
        p = change.parameters
        running = compare.busy(_state(view))
        if a is Action.DELETE:
            if view is None:
                return Precheck.DONE
            return Precheck.IN_PROGRESS if running else Precheck.NEEDED
        if isinstance(view, ObservedWorkspace) and isinstance(p, UnlinkParams):
            if view.cluster_id is None:
                return Precheck.DONE
            if p.cluster_id and not compare.same_id(view.cluster_id, p.cluster_id):
                return Precheck.DONE  # linked elsewhere meanwhile: not ours to unlink (W2), no W3 spent
            return Precheck.IN_PROGRESS if running else Precheck.NEEDED
        if isinstance(view, ObservedWorkspace) and isinstance(p, ByosUnlinkParams):
            return Precheck.NEEDED if p.data_source_type.lower() in view.byos else Precheck.DONE
        if view is None:
            return Precheck.NEEDED
        if running:
            return Precheck.IN_PROGRESS  # rule C6 / W5: one operation at a time; wait for it
        if a is Action.CREATE:
            return Precheck.DONE if _state(view).lower() == "succeeded" else Precheck.NEEDED
        if a is Action.LINK and _state(view).lower() not in ("succeeded", ""):
            return Precheck.NEEDED  # a Failed link is sent again
        return Precheck.NEEDED if differences(change, view) else Precheck.DONE

    def wait_idle(
        self, change: Change, *, timeout: float, sleep: Callable[[float], None] | None = None
    ) -> None:
        """Poll the target until no operation runs on it (rules C6/W5), or raise Busy at the timeout."""
        nap = sleep or self._sleep
        deadline = time.monotonic() + timeout
        while True:
            state = _state(self.view(change))
            if not compare.busy(state):
                return
            if time.monotonic() >= deadline:
                raise errors.Busy(f"{change.address}: still {state} after {timeout:g}s (rules C6/W5)")
            nap(max(self._poll, 0.05))

    # -- sending -----------------------------------------------------------------------------------

    def start(self, change: Change, on_sent: OnSent) -> Handle:
        """Send the change; `on_sent` journals the LRO handle before anyone waits on it."""
        try:
            poller = self._call(f"{change.action} {change.address}", lambda: self._begin(change))
        except errors.RuleViolation as exc:
            if exc.rule_id is Rule.C4:
                raise self._with_unlock_date(change, exc) from exc
            if exc.rule_id is Rule.C7:
                raise self._with_key_access_fix(change, exc) from exc
            raise
        token: str | None = None
        url: str | None = None
        if poller is not None and hasattr(poller, "continuation_token"):
            url = _status_url(poller)
            try:
                token = poller.continuation_token()
            except Exception:
                token = None
        on_sent(url, token)
        p = change.parameters
        probe: tuple[str, str | None] | None = None
        if isinstance(p, LinkParams):
            probe = (ids.id_key(p.workspace_id), ids.id_key(p.cluster_id))
        elif isinstance(p, UnlinkParams):
            probe = (ids.id_key(p.workspace_id), None)
        return Handle(change.action, change.resource_id, poller, token, url, probe)

    def _with_key_access_fix(self, change: Change, exc: errors.RuleViolation) -> errors.RuleViolation:
        """Rule C7: name the principal, the vault, the permissions and the `az` command that grants them.

        The principal is the cluster's (system-assigned, or the user-assigned identity's); a cluster
        not created yet is asked through its user-assigned identity, else a placeholder stands in."""
        p = change.parameters
        if not isinstance(p, CreateParams | SetKeyParams) or p.key is None:
            return exc
        ref = p.key.ref()
        try:
            cluster = self.read_cluster(change.resource_id)
        except errors.AzureError:
            cluster = None
        # the system-assigned principal, or the user-assigned identity's (what observe reads)
        principal = cluster_from_arm(cluster).principal_id if cluster else None
        wanted = p.identity.user_assigned_identity if isinstance(p, CreateParams) else None
        if not principal and wanted:
            principal = self._identity_principal(wanted)
        return exc.with_remedy(grant_remedy(ref, str(principal) if principal else None))

    def _identity_principal(self, identity_id: str) -> str | None:
        """A user-assigned identity's principal id (one ARM GET), or None when it cannot be read."""
        from azure.core.rest import HttpRequest

        try:
            rid = ids.ResourceId.parse(identity_id)
            response = self._la(rid.subscription).send_request(
                HttpRequest("GET", f"{identity_id}?api-version=2023-01-31"))
            response.raise_for_status()
            principal = (response.json().get("properties") or {}).get("principalId")
        except Exception:  # the remedy then carries a placeholder: the refusal itself still stands
            return None
        return str(principal) if principal else None

    def _with_unlock_date(self, change: Change, exc: errors.RuleViolation) -> errors.RuleViolation:
        """Rule C4: the refusal states the lock's length, the cluster its last SKU update; together they
        say from when the decrease is accepted. Without either the refusal stands as Azure worded it."""
        days = errors.lock_days(exc.azure_message)
        try:
            cluster = self.read_cluster(change.resource_id)
        except errors.AzureError:
            return exc
        if days is None or cluster is None:
            return exc
        last = cluster_from_arm(cluster).last_sku_update
        return exc.lifting(last + timedelta(days=days)) if last is not None else exc

    def wait(self, handle: Handle) -> None:
        if handle.poller is None or not hasattr(handle.poller, "result"):
            return
        self._wait_poller(f"{handle.action} {handle.target}", handle.poller)

    def when_done(self, handle: Handle, on_end: Callable[[errors.AzureError | None], None]) -> None:
        """Follow the operation without a thread: `on_end(None)` when it succeeded, else its error
        (mapped; StillRunning past the operation timeout). Returns at once."""
        probe = handle.probe
        poller = handle.poller
        method = poller.polling_method() if poller is not None and hasattr(poller, "polling_method") else None
        if not isinstance(method, DeferredPolling):  # synchronous answer or a foreign poller
            try:
                self.wait(handle)
            except errors.AzureError as exc:
                on_end(exc)
                return
            on_end(None)
            return
        sub = subscription_of(method._initial_response.http_response.request.url) or ""
        token = handle.continuation_token
        if not token:  # nothing to rebuild it from: the watch keeps the SDK's polling itself
            followed = _Followed(self, handle.action, handle.target, on_end, b"", b"")
            self.watch.watch(sub, method, timeout=self._op_timeout, on_done=followed.ended, probe=probe)
            return
        # between reads the operation is its packed continuation token (~140 bytes): 40,000 links in
        # flight would otherwise hold ~40 KB of SDK objects each (their last answers)
        zdict, packed = self._tokens.pack(handle.action, token)
        followed = _Followed(self, handle.action, handle.target, on_end, zdict, packed)
        del poller, method, handle  # nothing of the SDK's answers is kept past here
        self.watch.watch(
            sub,
            None,
            timeout=self._op_timeout,
            on_done=followed.ended,
            probe=probe,
            restore=followed.restore,
            on_result=followed.keep if followed.action is Action.LINK else None,
        )

    def _keep_final_link(self, workspace_id: str, seen: dict[str, Any]) -> None:
        """Keep, for `verify`, the link as the SDK's final GET read it once Azure ended the operation."""
        if seen.get("properties"):
            with self._seen_guard:
                self._seen[ids.id_key(workspace_id)] = seen

    def _take_final_link(self, workspace_id: str) -> dict[str, Any] | None:
        with self._seen_guard:
            return self._seen.pop(ids.id_key(workspace_id), None)

    def _still_running(self, what: str) -> errors.StillRunning:
        return errors.StillRunning(
            f"{what}: Azure is still running it after {self._op_timeout:g}s "
            "(CMKCTL_OPERATION_TIMEOUT); it was not sent again: run apply later to resume it"
        )

    def _wait_poller(self, what: str, poller: Any) -> None:
        """Wait at most the operation timeout; past it raise StillRunning (the journal keeps the token).

        The status reads are the Watch's, spread over the subscription's read budget (no thread and
        no fixed poll of our own per operation)."""
        method = poller.polling_method()
        if not isinstance(method, DeferredPolling):  # synchronous answer or a foreign poller
            self._call(f"wait for {what}", lambda: poller.result(timeout=self._op_timeout))
            return
        sub = subscription_of(method._initial_response.http_response.request.url) or ""
        try:
            self._call(f"wait for {what}", lambda: self.watch.wait(sub, method, timeout=self._op_timeout))
        except errors.StillRunning:
            raise self._still_running(what) from None

    def resume(self, *, action: str, target: str, parameters: dict[str, Any], token: str) -> None:
        """Rebuild the poller from a journaled continuation token and wait: the request is not re-sent."""
        act = Action(action)
        self.check_resume_token(target, token)
        poller = self._call(
            f"resume {action} {target}",
            lambda: self._begin_from_token(act, target, parameters, token),
        )
        if poller is not None:
            self._wait_poller(f"{action} {target}", poller)

    def check_resume_token(self, target: str, token: str) -> None:
        """The journal is untrusted: a resumed poll goes to this cloud's Resource Manager, for `target`."""
        arm = self.clients.cloud.arm_host
        what = f"resume {target} from the journal"
        for url in resume_urls(token) if token else []:
            check_host(url, lambda host: host == arm, what)
        request_path = urlsplit(resume_urls(token)[0]).path if token else ""
        if token and not ids.id_key(request_path).startswith(ids.id_key(target)):
            raise errors.UntrustedEndpoint(f"{what}: the journaled token is for another resource")

    def _begin(self, change: Change) -> Any:
        p = change.parameters
        if isinstance(p, CreateParams | UpdateParams | SetKeyParams | DeleteParams):
            la = self._la(p.subscription)
            rg, name = p.resource_group, p.name
            if isinstance(p, CreateParams):
                return la.clusters.begin_create_or_update(rg, name, cluster_body(p), polling=self._polling())
            if isinstance(p, DeleteParams):
                return la.clusters.begin_delete(rg, name, polling=self._polling())
            return la.clusters.begin_update(rg, name, patch_body(p), polling=self._polling())
        ws = ids.ResourceId.parse(p.workspace_id)
        la = self._la(ws.subscription)
        if isinstance(p, LinkParams):
            body = {"properties": {"writeAccessResourceId": p.cluster_id}}
            # rule W3: the client never re-sends this PUT (clients._SendOnceRetryPolicy); a lost answer or
            # a 5xx reaches the executor, which re-observes the link instead of sending it again
            return la.linked_services.begin_create_or_update(
                ws.resource_group, ws.name, _LINKED_SERVICE, body, polling=self._polling(), **_request_id(p)
            )
        if isinstance(p, UnlinkParams):  # rule W3, as above
            return la.linked_services.begin_delete(
                ws.resource_group, ws.name, _LINKED_SERVICE, polling=self._polling(), **_request_id(p)
            )
        if isinstance(p, ByosLinkParams):
            byos: dict[str, Any] = {"properties": {"storageAccountIds": [p.storage_account_id]}}
            la.linked_storage_accounts.create_or_update(ws.resource_group, ws.name, p.data_source_type, byos)
            return None
        la.linked_storage_accounts.delete(ws.resource_group, ws.name, p.data_source_type)
        return None

    def _begin_from_token(self, action: Action, target: str, p: dict[str, Any], token: str) -> Any:
        if action in (Action.CREATE, Action.UPDATE, Action.SET_KEY, Action.DELETE):
            rid = ids.ResourceId.parse(target)
            ops = self._la(rid.subscription).clusters
            if action is Action.CREATE:
                return ops.begin_create_or_update(
                    rid.resource_group, rid.name, {}, continuation_token=token, polling=self._polling()
                )
            if action is Action.DELETE:
                return ops.begin_delete(
                    rid.resource_group, rid.name, continuation_token=token, polling=self._polling()
                )
            return ops.begin_update(
                rid.resource_group, rid.name, {}, continuation_token=token, polling=self._polling()
            )
        if action in (Action.LINK, Action.UNLINK):
            ws = ids.ResourceId.parse(str(p.get("workspace_id") or target))
            ls = self._la(ws.subscription).linked_services
            if action is Action.LINK:
                return ls.begin_create_or_update(
                    ws.resource_group,
                    ws.name,
                    _LINKED_SERVICE,
                    {},
                    continuation_token=token,
                    polling=self._polling(),
                )
            return ls.begin_delete(
                ws.resource_group, ws.name, _LINKED_SERVICE, continuation_token=token, polling=self._polling()
            )
        return None  # BYOS calls are synchronous: nothing to resume

    # -- verifying ---------------------------------------------------------------------------------

    def verify(self, change: Change) -> None:
        """Re-read after the operation; anything not as the parameters say is an error, not silence.

        A link is compared as the SDK's final GET read it once Azure had ended the operation (that GET
        is the re-read), when the watch kept it; else it is read again here."""
        p = change.parameters
        seen = self._take_final_link(p.workspace_id) if isinstance(p, LinkParams) else None
        view: View | None
        if isinstance(p, LinkParams) and seen is not None:
            view = link_from_arm(p.workspace_id, seen)
        else:
            view = self.view(change)
        a = change.action
        if a in (Action.DELETE, Action.UNLINK, Action.BYOS_UNLINK):
            gone = (
                view is None
                or _state(view).lower() == "deleting"
                or (a is Action.UNLINK and isinstance(view, ObservedWorkspace) and view.cluster_id is None)
                or (isinstance(change.parameters, ByosUnlinkParams) and isinstance(view, ObservedWorkspace)
                    and change.parameters.data_source_type.lower() not in view.byos)
            )
            if not gone:
                raise InconsistentResult(f"{change.address}: inconsistent result: still exists after {a}")
            return
        if view is None:
            raise InconsistentResult(f"{change.address}: inconsistent result: not found after {a}")
        state = _state(view) or "Succeeded"
        if state.lower() != "succeeded":
            raise InconsistentResult(
                f"{change.address}: inconsistent result: provisioningState {state} after {a}"
            )
        diffs = differences(change, view)
        if diffs:
            raise InconsistentResult(f"{change.address}: inconsistent result after {a}: " + "; ".join(diffs))


View = ObservedCluster | ObservedWorkspace


def _state(view: View | None) -> str:
    """The provisioning state of the operation the view can show: the cluster's, or the link's."""
    if isinstance(view, ObservedCluster):
        return view.provisioning_state
    if isinstance(view, ObservedWorkspace):
        return view.link_state or ""
    return ""


def _key_text(ref: ids.KeyRef | None) -> str:
    return "none" if ref is None else ref.uri()


def differences(change: Change, view: View) -> list[str]:
    """What the change's parameters set that the live resource does not show, compared by the
    planner's own functions (controller.model.compare); empty when the change is in effect."""
    p = change.parameters
    out: list[str] = []
    if isinstance(view, ObservedWorkspace):
        if isinstance(p, LinkParams) and not compare.same_id(p.cluster_id, view.cluster_id):
            out.append(f"cluster_id: expected {p.cluster_id}, found {view.cluster_id}")
        if isinstance(p, ByosLinkParams):
            have = view.byos.get(p.data_source_type.lower())
            if not compare.same_id(p.storage_account_id, have):
                out.append(f"storage_account_id: expected {p.storage_account_id}, found {have}")
        return out
    capacity = billing = location = None
    tags: dict[str, str] | None = None
    identity: IdentityParams | None = None
    key: tuple[KeyParams | None] | None = None  # (None,): the key must be gone (rule C13)
    if isinstance(p, CreateParams):
        # a create's key and tags are checked when it sets them (a repair re-issues the live cluster)
        capacity, billing, location, identity = p.capacity, p.billing_type, p.location, p.identity
        tags = p.tags or None
        key = (p.key,) if p.key is not None else None
    elif isinstance(p, UpdateParams):
        capacity, billing, tags, identity = p.capacity, p.billing_type, p.tags, p.identity
    elif isinstance(p, SetKeyParams):
        key = (p.key,)
    if capacity is not None and capacity != view.capacity:
        out.append(f"capacity: expected {capacity}, found {view.capacity}")
    if billing is not None and billing.lower() != view.billing_type.lower():
        out.append(f"billing_type: expected {billing}, found {view.billing_type}")
    if location is not None and ids.normalise_location(location) != view.location:
        out.append(f"location: expected {location}, found {view.location}")
    if tags is not None and not compare.same_tags(tags, view.tags):
        out.append(f"tags: expected {tags}, found {view.tags}")
    if identity is not None and not compare.same_identity(
        identity.type, identity.user_assigned_identity, view.identity_type, view.user_assigned_identities
    ):
        wanted = f"{identity.type} {identity.user_assigned_identity or ''}".strip()
        found = f"{view.identity_type} {', '.join(view.user_assigned_identities)}".strip()
        out.append(f"identity: expected {wanted}, found {found}")
    if key is not None:
        want_key = key[0].ref() if key[0] is not None else None
        if not compare.same_key(want_key, view.key):
            out.append(f"key: expected {_key_text(want_key)}, found {_key_text(view.key)}")
    return out


def _identity_body(identity: IdentityParams, unassign: tuple[str, ...] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"type": identity.type}
    uais: dict[str, Any] = dict.fromkeys(unassign)  # ARM PATCH merges: `null` removes an identity
    if identity.user_assigned_identity:
        uais[identity.user_assigned_identity] = {}
    if uais:
        body["userAssignedIdentities"] = uais
    return body


def _key_body(key: KeyParams | None) -> dict[str, Any]:
    if key is None:
        # rule C13: a key is removed by sending all three fields as empty strings; the service ignores
        # an empty keyVaultProperties object, so `{}` would leave the key in place
        return {"keyVaultUri": "", "keyName": "", "keyVersion": ""}
    # versionless (rule K1 auto-rotation) sends an empty version, as the portal does
    return {"keyVaultUri": key.vault_uri, "keyName": key.name, "keyVersion": key.version or ""}


def cluster_body(p: CreateParams) -> dict[str, Any]:
    """PUT body for a new cluster: writable fields only (rules C3, C5, C9)."""
    props: dict[str, Any] = {
        "billingType": p.billing_type,
        "isDoubleEncryptionEnabled": p.double_encryption,
    }
    if p.availability_zones is not None:
        # rule C9: sent only when the spec sets it; left out, Azure decides by region
        props["isAvailabilityZonesEnabled"] = p.availability_zones
    if p.key is not None:
        # rule C5: only a granted UserAssigned identity may carry the key at creation (the planner decides)
        props["keyVaultProperties"] = _key_body(p.key)
    body: dict[str, Any] = {
        "location": p.location,
        "identity": _identity_body(p.identity),
        "sku": {"name": "CapacityReservation", "capacity": p.capacity},
        "properties": props,
    }
    if p.tags:
        body["tags"] = dict(p.tags)
    return body


def patch_body(p: UpdateParams | SetKeyParams) -> dict[str, Any]:
    """PATCH body with only the fields this change sets (never read-only ones)."""
    if isinstance(p, SetKeyParams):
        return {"properties": {"keyVaultProperties": _key_body(p.key)}}
    body: dict[str, Any] = {}
    if p.capacity is not None:
        body["sku"] = {"name": "CapacityReservation", "capacity": p.capacity}
    if p.billing_type is not None:
        body.setdefault("properties", {})["billingType"] = p.billing_type
    if p.tags is not None:
        body["tags"] = dict(p.tags)
    if p.identity is not None:
        body["identity"] = _identity_body(p.identity, p.unassign_identities)
    return body
