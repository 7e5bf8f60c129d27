"""`cmkctl state rebuild`: a new journal from what Azure shows, where the old one is lost or damaged.

Why: plan and apply refuse a journal that existed and is gone, empty or missing entries (its in-flight
operations and rule W3 link history would be lost silently). What Azure keeps comes back: the link and
unlink operations of the spec's workspaces and the cluster deletions (rule C11) from the Activity Log
(90 days, more than the 30-day W3 window). What only the journal knew does not: which operations were
running and their handles. Apply reads every resource from Azure before it sends anything, so a running
operation shows as a busy resource (rule C6) and waits; this command names the ones busy now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from controller.azure import blob_store
from controller.azure.clients import AzureClients
from controller.model import clouds
from controller.model.history import History, WriterLock
from controller.model.settings import Settings
from controller.service.snapshot import snapshot
from controller.service.state import parse_state
from controller.state import sqlite_store
from controller.state.file_lock import FileLock

COMMAND = "cmkctl state rebuild"


@dataclass(frozen=True)
class Rebuilt:
    """What the new journal holds, and what it could not know."""

    where: str
    link_operations: int
    cluster_deletions: int
    moved_aside: str | None
    busy: tuple[str, ...]  # resources Azure shows in the middle of an operation now


def rebuild(
    paths: Sequence[str],
    *,
    state: str | None = None,
    cloud: clouds.Cloud | None = None,
    lock_timeout: float = 0.0,
    clients: AzureClients | None = None,
) -> Rebuilt:
    """Under the writer lock: read the spec's history from Azure, then replace the journal with it."""
    knobs = Settings.read()
    own = clients is None
    azure = clients or AzureClients(cloud=cloud)
    try:
        ref = parse_state(state, knobs, cloud=azure.cloud)
        lock: WriterLock
        replace: Callable[[History], str | None]
        close: Callable[[], None] = lambda: None  # noqa: E731 - a no-op default
        if ref.url is not None:
            blob = blob_store.BlobState(ref.url, command=COMMAND, cloud=azure.cloud)
            lock, close = blob.lock(), blob.close
            replace = lambda history: blob.store().rebuild(history)  # noqa: E731
        else:
            directory = ref.local_dir()
            lock = FileLock(directory, command=COMMAND)

            def replace(history: History) -> str | None:
                aside = sqlite_store.rebuild(directory, history)
                return str(aside) if aside is not None else None

        try:
            lock.acquire(timeout=lock_timeout)
            try:
                snap = snapshot(paths, journal=History(), clients=azure, settings=knobs)
                live = snap.history
                # what Azure recorded; associateDate witnesses are read again at every plan
                found = History(
                    link_operations=tuple(o for o in live.link_operations if o.source == "activityLog"),
                    cluster_deletions=live.cluster_deletions,
                )
                aside = replace(found)
            finally:
                lock.release()
        finally:
            close()
        busy = sorted(
            [f"cluster {c.name} ({c.provisioning_state})" for c in snap.observed.clusters.values() if c.busy]
            + [
                f"workspace {w.name} (link {w.link_state})"
                for w in snap.observed.workspaces.values()
                if w.link_state not in (None, "Succeeded")
            ]
        )
        return Rebuilt(
            where=ref.display,
            link_operations=len(found.link_operations),
            cluster_deletions=len(found.cluster_deletions),
            moved_aside=aside,
            busy=tuple(busy),
        )
    finally:
        if own:
            azure.close()
