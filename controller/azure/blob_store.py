"""History (the journal) kept in one Azure Storage blob, for controllers that run without a local disk.

Why a blob: several runners (CI jobs, controller replicas) must share one record of link operations
(rule W3 budget), cluster deletions (C11 names) and in-flight operations (resume, never re-issue).

* Writes are read-modify-write guarded by the blob's ETag (`If-Match`); a 412 means another writer got
  there first, so we re-read and re-apply (optimistic concurrency; nothing is ever lost or doubled).
* `BlobLease` is the one-writer lock: a blob lease (15-60 s, renewed while held) whose holder is named
  in the lock blob's metadata, so a refused apply can say who holds it.

Implements the `HistoryStore` protocol of controller.model.history.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import AzureError as AzureCoreError
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)

from controller.azure.errors import map_error
from controller.errors import CmkError, LockHeldError
from controller.model import clouds
from controller.model.history import (
    AppliedResource,
    ClusterDeletion,
    History,
    HistoryStore,
    InFlightOperation,
    LinkOperation,
    Revision,
    WriterLock,
)
from controller.model.settings import Settings

FORMAT = 1
KEEP = timedelta(days=90)  # older link operations can no longer matter for a 30-day window


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _dt(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _empty() -> dict[str, Any]:
    return {
        "format": FORMAT,
        "link_operations": [],
        "cluster_deletions": [],
        "in_flight": {},
        "finished": [],
        "revisions": [],
        "applied": {},
    }


# In the container's metadata once a journal blob was written there: a journal blob that is then missing or
# empty is damage, not a first run (its in-flight operations and link history, rule W3, would be lost)
MARKER_PREFIX = "cmkctljournal"
REBUILD = "cmkctl state rebuild -f SPEC --state {state}"


def marker_key(blob_name: str) -> str:
    """Metadata names are C# identifiers: one per journal blob in the container, from its name's hash."""
    return f"{MARKER_PREFIX}{hashlib.sha256(blob_name.encode()).hexdigest()[:16]}"


class JournalLost(CmkError):
    """The journal blob is missing or empty where the container's marker says one was written."""


class ConcurrentWriteError(CmkError):
    """Too many other writers changed the journal while we tried to write it."""


class BlobHistoryStore:
    """HistoryStore on one blob (JSON), safe for concurrent writers across machines."""

    def __init__(
        self,
        container: Any,
        blob_name: str = "cmkctl/history.json",
        *,
        now: Callable[[], datetime] | None = None,
        max_attempts: int = 30,
        create: bool = True,
        state: str | None = None,
    ) -> None:
        """`create=False`: a reader that must not create anything (a missing container = empty journal).
        `state`: the `--state` URL, for the messages that name the rebuild command."""
        self._container = container
        self._blob_name = blob_name
        container_name = getattr(container, "container_name", "CONTAINER")
        self._state = state or f"azureblob://ACCOUNT/{container_name}/{blob_name}"
        self._marked = False
        self._blob = container.get_blob_client(blob_name)
        # what each apply left per resource (intent, baseline) in a blob of its own: it is large (one
        # entry per workspace) and written once per apply, so the journal's frequent writes (every
        # link operation) never re-upload it
        self._applied = container.get_blob_client(f"{blob_name}.applied")
        self._now = now or (lambda: datetime.now(UTC))
        self._max_attempts = max_attempts
        self._mutex = threading.Lock()
        if not create:
            return
        try:
            container.create_container()
        except ResourceExistsError:
            pass
        except HttpResponseError as exc:
            raise map_error(exc, operation="create the history container") from None

    # -- reading ------------------------------------------------------------------------------------
    # -- the marker ---------------------------------------------------------------------------------
    def has_marker(self) -> bool:
        """Whether the container's metadata says this journal blob was written (a missing container:
        no)."""
        try:
            meta = self._container.get_container_properties().metadata or {}
        except ResourceNotFoundError:
            return False
        except AzureCoreError as exc:
            raise map_error(exc, operation="read the state container's metadata") from None
        key = marker_key(self._blob_name)
        return any(k.lower() == key for k in meta)

    def mark(self) -> None:
        """Record in the container's metadata that this journal blob exists (once per store)."""
        if self._marked:
            return
        key = marker_key(self._blob_name)
        try:
            # metadata is replaced as a whole: a writer of another journal in the container may replace
            # it at the same time, so read it back until ours is in it
            for _ in range(5):
                meta = dict(self._container.get_container_properties().metadata or {})
                if any(k.lower() == key for k in meta):
                    self._marked = True
                    return
                meta[key] = quote(self._blob_name, safe="")
                self._container.set_container_metadata(meta)
        except AzureCoreError as exc:
            raise map_error(exc, operation="mark the state container") from None

    def _lost(self, what: str) -> JournalLost:
        return JournalLost(
            f"the journal blob {self._blob_name} in container "
            f"{getattr(self._container, 'container_name', '?')} is {what}, but the container's metadata "
            f"({marker_key(self._blob_name)}) says one was written there: its in-flight operations and "
            "link history (rule W3) would be lost. Restore it from a blob version or snapshot if the "
            f"account keeps them, or rebuild it from what Azure shows: {REBUILD.format(state=self._state)} "
            "(the link history comes back from the Activity Log; operations that were running are not "
            "known, and apply reads them back from Azure before it sends anything)"
        )

    def whole(self) -> bool:
        """True when the journal blob exists and reads as a journal, False when there is none yet (no
        marker either); raises JournalLost / CmkError where it is lost or damaged."""
        _, etag = self._read()
        return etag is not None

    def _read(self, blob: Any = None) -> tuple[dict[str, Any], str | None]:
        """(document, etag); a missing blob is an empty journal with no etag, unless the container's
        marker says the journal was written (then it is lost, and refused)."""
        journal = blob is None or blob is self._blob
        blob = blob or self._blob
        try:
            downloader = blob.download_blob()
            raw = downloader.readall()
            etag = downloader.properties.etag
        except ResourceNotFoundError:
            if journal and self.has_marker():
                raise self._lost("missing") from None
            return _empty(), None
        except AzureCoreError as exc:  # any status, or the storage account not reachable at all
            raise map_error(exc, operation="read the history blob") from None
        if journal and not raw:  # cmkctl never writes an empty journal
            raise self._lost("empty (0 bytes)") if self.has_marker() else CmkError(
                f"the journal blob {self._blob_name} is empty (0 bytes), which cmkctl never writes; "
                f"rebuild it from what Azure shows: {REBUILD.format(state=self._state)}"
            )
        try:
            doc = json.loads(raw or b"{}")
        except ValueError as exc:
            name = blob.blob_name
            raise CmkError(f"the history blob {name} is not JSON ({exc}); refusing to overwrite") from None
        if not isinstance(doc, dict) or doc.get("format", FORMAT) != FORMAT:
            raise CmkError(f"the history blob {blob.blob_name} has an unknown format")
        base = _empty()
        base.update(doc)
        return base, etag

    def load(self) -> History:
        doc, _ = self._read()
        applied, _ = self._read(self._applied)
        return History(
            link_operations=tuple(
                LinkOperation(
                    workspace_key=o["workspace_key"],
                    kind=o["kind"],
                    at=_dt(o["at"]),
                    cluster_key=o.get("cluster_key"),
                    source=o.get("source", "journal"),
                    op_id=o.get("op_id"),
                    request_id=o.get("request_id"),
                )
                for o in doc["link_operations"]
            ),
            cluster_deletions=tuple(
                ClusterDeletion(
                    cluster_key=d["cluster_key"],
                    subscription=d["subscription"],
                    location=d["location"],
                    name=d["name"],
                    at=_dt(d["at"]),
                )
                for d in doc["cluster_deletions"]
            ),
            in_flight=tuple(
                InFlightOperation(
                    op_id=op_id,
                    action=o["action"],
                    target=o["target"],
                    status_url=o.get("status_url"),
                    started=_dt(o["started"]),
                    plan_id=o.get("plan_id"),
                    continuation_token=o.get("continuation_token"),
                    phase=o.get("phase", "begin"),
                    request_id=o.get("request_id"),
                )
                for op_id, o in sorted(doc["in_flight"].items())
            ),
            applied=tuple(
                AppliedResource(
                    key=key,
                    revision=a["revision"],
                    at=_dt(a["at"]),
                    intent=dict(a.get("intent", {})),
                    baseline=dict(a.get("baseline", {})),
                )
                for key, a in sorted(applied["applied"].items())
            ),
        )

    def running(self) -> tuple[InFlightOperation, ...]:
        return self.load().in_flight  # one JSON document: reading part of it costs the whole download

    def close(self) -> None:
        """Nothing to release: the container client belongs to whoever opened the state."""

    def revisions(self) -> list[Revision]:
        doc, _ = self._read()
        return [
            Revision(
                revision=r["revision"], applied_at=_dt(r["applied_at"]), summary=dict(r.get("summary", {}))
            )
            for r in doc["revisions"]
        ]

    # -- writing --------------------------------------------------------------------------------------
    def _mutate(self, change: Callable[[dict[str, Any]], None], blob: Any = None) -> None:
        """Read, change, write back only if nobody wrote in between (If-Match); else retry."""
        blob = blob or self._blob
        with self._mutex:
            for attempt in range(self._max_attempts):
                doc, etag = self._read(blob)
                change(doc)
                self._trim(doc)
                body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
                try:
                    if etag is None:  # first write: only if the blob still does not exist
                        blob.upload_blob(body, overwrite=False)
                    else:
                        blob.upload_blob(
                            body, overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified
                        )
                    if blob is self._blob:
                        self.mark()
                    return
                except (ResourceModifiedError, ResourceExistsError):
                    time.sleep(min(0.5, 0.01 * (2**attempt)))  # another writer won: re-read, re-apply
                except HttpResponseError as exc:
                    if exc.status_code in (409, 412):
                        time.sleep(min(0.5, 0.01 * (2**attempt)))
                        continue
                    raise map_error(exc, operation="write the history blob") from None
                except AzureCoreError as exc:  # unreachable: the caller sees one line, never a traceback
                    raise map_error(exc, operation="write the history blob") from None
            raise ConcurrentWriteError(
                f"the history blob {blob.blob_name} kept changing under us "
                f"({self._max_attempts} attempts); try again"
            )

    def _trim(self, doc: dict[str, Any]) -> None:
        cutoff = self._now() - KEEP
        doc["link_operations"] = [o for o in doc["link_operations"] if _dt(o["at"]) > cutoff]
        doc["cluster_deletions"] = [d for d in doc["cluster_deletions"] if _dt(d["at"]) > cutoff]
        doc["finished"] = doc["finished"][-500:]
        doc["revisions"] = doc["revisions"][-200:]

    def rebuild(self, history: History) -> str | None:
        """Replace the journal with what `history` (read from Azure) holds, and mark it; call under the
        writer lease. A whole journal is refused (a rebuild would drop its in-flight operations); a
        damaged (non-empty) blob is first copied aside: returns where, if it was."""
        try:
            whole = self.whole()
        except CmkError:
            whole = False
        if whole:
            raise CmkError(
                f"the journal blob {self._blob_name} is whole; nothing to rebuild (a rebuild would drop the "
                "operations it has in flight)"
            )
        aside = None
        with self._mutex:
            try:
                raw = self._blob.download_blob().readall()
            except ResourceNotFoundError:
                raw = b""
            except AzureCoreError as exc:
                raise map_error(exc, operation="read the history blob") from None
            doc = _empty()
            doc["link_operations"] = [{**asdict(op), "at": _ts(op.at)} for op in history.link_operations]
            doc["cluster_deletions"] = [{**asdict(d), "at": _ts(d.at)} for d in history.cluster_deletions]
            self._trim(doc)
            try:
                if raw:
                    aside = f"{self._blob_name}.damaged-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
                    self._container.get_blob_client(aside).upload_blob(raw, overwrite=False)
                body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
                self._blob.upload_blob(body, overwrite=True)
            except AzureCoreError as exc:
                raise map_error(exc, operation="write the history blob") from None
        self.mark()
        return aside

    def record_link_operation(self, op: LinkOperation) -> None:
        entry = asdict(op)
        entry["at"] = _ts(op.at)

        def change(doc: dict[str, Any]) -> None:
            if entry not in doc["link_operations"]:  # a retried write must not count twice (W3)
                doc["link_operations"].append(entry)

        self._mutate(change)

    def record_cluster_deletion(self, deletion: ClusterDeletion) -> None:
        entry = asdict(deletion)
        entry["at"] = _ts(deletion.at)

        def change(doc: dict[str, Any]) -> None:
            if entry not in doc["cluster_deletions"]:
                doc["cluster_deletions"].append(entry)

        self._mutate(change)

    def begin_operation(self, op: InFlightOperation) -> None:
        entry = {
            "action": op.action,
            "target": op.target,
            "status_url": op.status_url,
            "started": _ts(op.started),
            "plan_id": op.plan_id,
            "continuation_token": op.continuation_token,
            "phase": op.phase,
            "request_id": op.request_id,
        }

        def change(doc: dict[str, Any]) -> None:
            doc["in_flight"][op.op_id] = entry

        self._mutate(change)

    def record_operation_sent(
        self, op_id: str, *, status_url: str | None, continuation_token: str | None
    ) -> None:
        """Journal the LRO handle before anyone waits on it: a restarted apply resumes, never re-sends."""

        def change(doc: dict[str, Any]) -> None:
            entry = doc["in_flight"].get(op_id)
            if entry is None:
                return  # ended meanwhile (or never begun): nothing to resume
            entry.update(phase="sent", status_url=status_url, continuation_token=continuation_token)

        self._mutate(change)

    def end_operation(self, op_id: str, outcome: str, detail: str = "") -> None:
        ended = _ts(self._now())

        def change(doc: dict[str, Any]) -> None:
            started = doc["in_flight"].pop(op_id, None)
            if started is not None:
                started.pop("continuation_token", None)  # no longer needed; keep the record small
            doc["finished"].append(
                {"op_id": op_id, "outcome": outcome, "detail": detail[:500], "ended": ended, "op": started}
            )

        self._mutate(change)

    def record_revision(self, revision: Revision) -> None:
        entry = {
            "revision": revision.revision,
            "applied_at": _ts(revision.applied_at),
            "summary": dict(revision.summary),
        }
        self._mutate(lambda doc: doc["revisions"].append(entry))

    def record_applied(self, resources: Sequence[AppliedResource]) -> None:
        entries = {
            r.key: json.loads(
                json.dumps(
                    {"revision": r.revision, "at": _ts(r.at), "intent": r.intent, "baseline": r.baseline},
                    default=str,
                )
            )
            for r in resources
        }
        if entries:
            self._mutate(lambda doc: doc["applied"].update(entries), self._applied)


class BlobLease:
    """One writer at a time, across machines: a lease on a lock blob that names its holder.

    `acquire(timeout)` waits up to `timeout` seconds, then raises LockHeldError naming the holder (from
    the blob's metadata). While held, `renew()` keeps it (call it more often than `duration`); a holder
    that dies loses the lock after `duration` seconds by itself.
    """

    def __init__(
        self, container: Any, holder: str, *, blob_name: str = "cmkctl/lock", duration: int = 60
    ) -> None:
        if not 15 <= duration <= 60:
            raise ValueError("a blob lease lasts 15 to 60 seconds")
        self._container = container
        self._blob = container.get_blob_client(blob_name)
        self.holder = holder
        self.duration = duration
        self._lease: Any = None
        with contextlib.suppress(ResourceExistsError):
            container.create_container()

    def _ensure_blob(self) -> None:
        try:
            self._blob.upload_blob(b"", overwrite=False)
        except ResourceExistsError:
            pass
        except HttpResponseError as exc:
            if exc.status_code not in (409, 412):  # 412: a lease is active on it = it exists
                raise map_error(exc, operation="create the lock blob") from None

    def _holder_soon(self) -> str | None:
        """The holder as written; the winner writes it just after its lease, so wait a moment for it."""
        who = self.current_holder()
        for _ in range(10):
            if who != "an unknown holder":
                break
            time.sleep(0.05)
            who = self.current_holder()
        return who

    def current_holder(self) -> str | None:
        """Who holds the lock, as the holder wrote it (None when free or unknown)."""
        try:
            props = self._blob.get_blob_properties()
        except ResourceNotFoundError:
            return None
        if str(getattr(props.lease, "state", "")).lower() != "leased":
            return None
        meta = props.metadata or {}
        return meta.get("holder") or "an unknown holder"

    def acquire(self, timeout: float = 0.0, poll: float = 1.0) -> BlobLease:
        self._ensure_blob()
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                self._lease = self._blob.acquire_lease(lease_duration=self.duration)
            except HttpResponseError as exc:
                if exc.status_code != 409:
                    raise map_error(exc, operation="acquire the lock") from None
                if time.monotonic() >= deadline:
                    holder = self._holder_soon() or "another writer"
                    raise LockHeldError(
                        f"another cmkctl holds the lock ({holder}); "
                        "try again later or wait with --lock-timeout"
                    ) from None
                time.sleep(min(poll, max(0.05, deadline - time.monotonic())))
                continue
            since = _ts(datetime.now(UTC))
            self._blob.set_blob_metadata({"holder": self.holder, "since": since}, lease=self._lease)
            return self

    def renew(self) -> None:
        if self._lease is None:
            raise CmkError("renew() of a lock that is not held")
        try:
            self._lease.renew()
        except HttpResponseError as exc:
            self._lease = None
            raise LockHeldError(f"the lock was lost before renewal ({map_error(exc)})") from None

    def release(self) -> None:
        if self._lease is None:
            return
        lease, self._lease = self._lease, None
        try:
            self._blob.set_blob_metadata({}, lease=lease)
            lease.release()
        except HttpResponseError:
            pass  # it expires by itself within `duration` seconds

    @property
    def held(self) -> bool:
        return self._lease is not None

    def __enter__(self) -> BlobLease:
        if self._lease is None:
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def container_client(clients: Any, account_url: str, container: str, credential: Any = None) -> Any:
    """The container for the store and the lock, built by AzureClients (Azurite in tests)."""
    return clients.blob_service(account_url, credential).get_container_client(container)


# -- `--state azureblob://...` (cmkctl apply / plan) ------------------------------------------------------
SCHEME = "azureblob://"
DEFAULT_BLOB = "cmkctl/history.json"
ACCOUNT_KEY_ENV = "AZURE_STORAGE_KEY"  # the az CLI's name; Azurite and key-only accounts need it
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass(frozen=True)
class BlobStateUrl:
    """Where the journal lives: account endpoint, container, journal blob (the lock blob sits beside it)."""

    account_url: str
    account_name: str
    container: str
    blob: str

    @property
    def lock_blob(self) -> str:
        return f"{self.blob}.lock"


def parse_state_url(url: str, cloud: clouds.Cloud = clouds.DEFAULT) -> BlobStateUrl:
    """`azureblob://ACCOUNT/CONTAINER[/BLOB]` (ACCOUNT: a storage account name, completed with the
    selected cloud's storage suffix, or an endpoint host such as acct.blob.core.usgovcloudapi.net);
    Azurite's path-style endpoint is
    `azureblob://127.0.0.1:10000/devstoreaccount1/CONTAINER[/BLOB]` (plain http, local only)."""
    if not url.startswith(SCHEME):
        raise CmkError(f"--state {url!r}: an azureblob state starts with {SCHEME}")
    host, _, rest = url[len(SCHEME):].partition("/")
    if "?" in url or "#" in url or "@" in host:
        # never trimmed and never echoed: a SAS signature or a password on the command line ends up in
        # shell history, CI logs and process lists
        account = host.split("?")[0].split("#")[0].rpartition("@")[2]
        raise CmkError(
            f"--state {SCHEME}{account}/...: credentials in the URL (a SAS query or "
            "user:password@) are refused; sign in with Azure AD (az login, a managed identity) or give "
            "the account key in AZURE_STORAGE_KEY"
        )
    parts = [p for p in rest.split("/") if p]
    hostname = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host.split("]")[0] + "]"
    usage = "expected azureblob://ACCOUNT/CONTAINER[/BLOB]"
    if hostname in _LOCAL_HOSTS:  # Azurite: http://host:port/ACCOUNT
        if len(parts) < 2:
            raise CmkError(f"--state {url!r}: {usage} (Azurite: azureblob://127.0.0.1:PORT/ACCOUNT/CONTAINER)")
        account, parts = parts[0], parts[1:]
        account_url = f"http://{host}/{account}"
    else:
        if not host or not parts:
            raise CmkError(f"--state {url!r}: {usage}")
        account = host.split(".")[0]
        account_url = f"https://{host}" if "." in host else cloud.blob_endpoint(host)
    container = parts[0]
    plain = container.replace("-", "")
    if not 3 <= len(container) <= 63 or not plain.isalnum() or container != container.lower():
        raise CmkError(
            f"--state {url!r}: container {container!r} must be 3-63 lowercase letters, digits or hyphens"
        )
    blob = "/".join(parts[1:]) or DEFAULT_BLOB
    return BlobStateUrl(account_url=account_url, account_name=account, container=container, blob=blob)


class BlobWriterLock:
    """WriterLock on a blob lease: held for the whole apply (renewed in the background every third of
    the lease), named after the command, pid and host so a refused writer can say who holds it."""

    def __init__(self, lease: BlobLease, *, on_release: Callable[[], None] | None = None) -> None:
        self._lease = lease
        self._on_release = on_release
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self, *, timeout: float) -> None:
        try:
            self._lease.acquire(timeout=timeout, poll=min(1.0, max(0.1, timeout / 10 or 0.1)))
        except AzureCoreError as exc:  # the storage account not reachable, auth refused...
            raise map_error(exc, operation="take the state lock") from None
        self._stop.clear()
        self._renewer = threading.Thread(target=self._keep, name="cmkctl-lease-renewal", daemon=True)
        self._renewer.start()

    def _keep(self) -> None:
        while not self._stop.wait(self._lease.duration / 3):
            try:
                self._lease.renew()
            except CmkError:
                return  # lost: the next journal write still works; another writer may now start

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
            self._renewer = None
        try:
            self._lease.release()
        finally:
            if self._on_release is not None:
                callback, self._on_release = self._on_release, None
                callback()

    def holder(self) -> str | None:
        return self._lease.current_holder()


def _storage_key() -> str | None:
    """AZURE_STORAGE_KEY, through the one settings object (handed to the SDK only, never printed)."""
    secret = Settings.read().storage_key
    return secret.get_secret_value() if secret is not None else None


def open_state(
    url: str, *, command: str, cloud: clouds.Cloud | None = None
) -> tuple[WriterLock, Callable[[], HistoryStore]]:
    """The azureblob backend of `--state`: (blob-lease writer lock, opener of the ETag-guarded journal).

    Credentials: $AZURE_STORAGE_KEY (shared key, e.g. Azurite) when set, else the same Azure identity
    as every other call (DefaultAzureCredential; needs Storage Blob Data Contributor on the container).
    The key is handed to the SDK only, never printed.
    """
    from controller.azure.clients import AzureClients  # the one client factory (emulator/real)

    clients = AzureClients(cloud=cloud)
    where = parse_state_url(url, clients.cloud)
    key = _storage_key()
    credential: Any = {"account_name": where.account_name, "account_key": key} if key else None
    container = container_client(clients, where.account_url, where.container, credential)
    holder = (
        f"{command}, pid {os.getpid()} on {socket.gethostname()}, "
        f"since {datetime.now(UTC).isoformat(timespec='seconds')}"
    )
    try:
        lease = BlobLease(container, holder, blob_name=where.lock_blob, duration=60)
    except AzureCoreError as exc:
        clients.close()
        raise map_error(exc, operation=f"open the state container {where.container}") from None
    except Exception:
        clients.close()
        raise
    lock = BlobWriterLock(lease, on_release=clients.close)
    # typed as the protocols so mypy proves the blob backend implements all of them (record_operation_sent)
    return lock, lambda: BlobHistoryStore(container, where.blob, state=url)


def read_history(url: str, *, cloud: clouds.Cloud | None = None) -> History:
    """The journal for a read-only command (`cmkctl plan`, report): no lock, nothing created."""
    from controller.azure.clients import AzureClients

    clients = AzureClients(cloud=cloud)
    where = parse_state_url(url, clients.cloud)
    key = _storage_key()
    credential: Any = {"account_name": where.account_name, "account_key": key} if key else None
    try:
        container = container_client(clients, where.account_url, where.container, credential)
        return BlobHistoryStore(container, where.blob, create=False, state=url).load()  # plan never writes
    finally:
        clients.close()


class BlobState:
    """The azureblob backend for a long-running process (the controller): one client for its life,
    a fresh journal view and writer lock per pass. `open_state` is the one-shot form for apply."""

    def __init__(self, url: str, *, command: str, cloud: clouds.Cloud | None = None) -> None:
        from controller.azure.clients import AzureClients

        self._clients = AzureClients(cloud=cloud)
        self._where = parse_state_url(url, self._clients.cloud)
        self._command = command
        self._url = url
        key = _storage_key()
        credential: Any = {"account_name": self._where.account_name, "account_key": key} if key else None
        self._container = container_client(
            self._clients, self._where.account_url, self._where.container, credential
        )

    def store(self) -> BlobHistoryStore:
        return BlobHistoryStore(self._container, self._where.blob, state=self._url)

    def lock(self) -> BlobWriterLock:
        holder = (
            f"{self._command}, pid {os.getpid()} on {socket.gethostname()}, "
            f"since {datetime.now(UTC).isoformat(timespec='seconds')}"
        )
        try:
            lease = BlobLease(self._container, holder, blob_name=self._where.lock_blob, duration=60)
        except AzureCoreError as exc:
            raise map_error(exc, operation=f"open the state container {self._where.container}") from None
        return BlobWriterLock(lease)

    def close(self) -> None:
        self._clients.close()
