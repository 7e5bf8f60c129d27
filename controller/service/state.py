"""`--state`, parsed once: where the journal (history) and the writer lock live.

One grammar for every command and the controller:

    DIR | local:DIR                      SQLite journal + file lock in a local directory
    azureblob://ACCOUNT/CONTAINER[/BLOB] ETag-guarded journal blob + blob lease (shared by CI and the
                                         controller, so they exclude each other)

Unset: $CMKCTL_STATE, else `./.cmkctl`. Read-only commands (plan, drift, report) read the journal
without creating or locking anything; writers (apply, the controller) open it under the lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from controller.azure import blob_store
from controller.errors import CmkError
from controller.model import clouds
from controller.model.history import History, HistoryStore, Revision, WriterLock
from controller.model.settings import Settings
from controller.state.file_lock import FileLock
from controller.state.sqlite_store import FILENAME, SqliteHistoryStore, check_not_lost

AZUREBLOB = "azureblob://"
LOCAL = "local:"
DEFAULT_DIR = ".cmkctl"


class JournalStore(HistoryStore, Protocol):
    """The history store a long-running writer needs: revisions too, and an explicit close."""

    def revisions(self) -> list[Revision]: ...

    def close(self) -> None: ...


class StateBackend(Protocol):
    """A state location opened for a process's life: a fresh journal view and lock per use."""

    def store(self) -> JournalStore: ...

    def lock(self) -> WriterLock: ...

    def has_journal(self) -> bool: ...


@dataclass(frozen=True)
class StateRef:
    """A parsed `--state`: the journal in `url` (azureblob) if set, else in `directory`.

    `directory` is also where a long-running process keeps local files (the controller's git clone).
    """

    directory: Path | None = None
    url: str | None = None

    @property
    def is_blob(self) -> bool:
        return self.url is not None

    @property
    def display(self) -> str:
        return self.url if self.url is not None else str(self.directory)

    def local_dir(self) -> Path:
        """A local directory for files besides the journal (the controller's git clone).

        With azureblob: $CMKCTL_WORKDIR, else $CMKCTL_STATE when that is a directory, else ./.cmkctl
        (an emptyDir is enough). So $CMKCTL_STATE may be the blob URL in a pod, and a `cmkctl apply`
        run there takes the same blob lease as the controller.
        """
        path = self.directory if self.directory is not None else Path.cwd() / DEFAULT_DIR
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- read-only ------------------------------------------------------------------------------
    def read_history(self, *, cloud: clouds.Cloud | None = None) -> History:
        """The journal's history (rule W3 link times, C11 deletions); never creates or locks anything."""
        if self.url is not None:
            return blob_store.read_history(self.url, cloud=cloud)
        if self.directory is None:
            return History()
        check_not_lost(self.directory / FILENAME)
        if not (self.directory / FILENAME).exists():
            return History()
        store = SqliteHistoryStore(self.directory, read_only=True)
        try:
            return store.load()
        finally:
            store.close()

    # -- writers --------------------------------------------------------------------------------
    def open_writer(
        self, *, command: str, cloud: clouds.Cloud | None = None
    ) -> tuple[WriterLock, Callable[[], HistoryStore]]:
        """(writer lock, opener of the journal once the lock is held) for a one-shot apply."""
        if self.url is not None:
            return blob_store.open_state(self.url, command=command, cloud=cloud)
        directory = self.local_dir()
        return FileLock(directory, command=command), lambda: SqliteHistoryStore(directory)

    def backend(
        self,
        *,
        command: str,
        now: Callable[[], datetime] | None = None,
        cloud: clouds.Cloud | None = None,
    ) -> StateBackend:
        """The same two backends for a long-running process (the controller)."""
        if self.url is not None:
            return _BlobBackend(self.url, command=command, cloud=cloud)
        return _LocalBackend(self.local_dir(), command=command, now=now or (lambda: datetime.now(UTC)))


def parse_state(
    text: str | None, settings: Settings | None = None, *, cloud: clouds.Cloud | None = None
) -> StateRef:
    """`--state` (or $CMKCTL_STATE, or ./.cmkctl) as a StateRef; a malformed value is one clear error."""
    knobs = settings or Settings.read()
    env = knobs.state
    chosen = text or env
    if not chosen:
        return StateRef(directory=Path.cwd() / DEFAULT_DIR)
    if chosen.startswith("azureblob:"):
        # refuses a malformed URL (and SAS / credentials in it)
        blob_store.parse_state_url(chosen, cloud or clouds.DEFAULT)
        local = knobs.workdir or (env if env and "://" not in env else None)
        return StateRef(directory=Path(local.removeprefix(LOCAL)) if local else None, url=chosen)
    if chosen.startswith(LOCAL):
        chosen = chosen[len(LOCAL) :]
        if not chosen:
            raise CmkError("--state local: needs a directory, e.g. local:/var/lib/cmkctl")
    elif "://" in chosen:
        raise CmkError(
            f"--state {chosen.split('://', 1)[0]}://... is not a known backend; "
            "use a directory, local:DIR or azureblob://ACCOUNT/CONTAINER[/BLOB]"
        )
    return StateRef(directory=Path(chosen))


class _LocalBackend:
    def __init__(self, state_dir: Path, *, command: str, now: Callable[[], datetime]) -> None:
        self._dir, self._command, self._now = state_dir, command, now

    def store(self) -> JournalStore:
        return SqliteHistoryStore(self._dir, now=self._now)

    def lock(self) -> WriterLock:
        return FileLock(self._dir, command=self._command)

    def has_journal(self) -> bool:
        return (self._dir / FILENAME).exists()


class _BlobBackend:
    def __init__(self, url: str, *, command: str, cloud: clouds.Cloud | None) -> None:
        self._blob = blob_store.BlobState(url, command=command, cloud=cloud)

    def store(self) -> JournalStore:
        return self._blob.store()

    def lock(self) -> WriterLock:
        return self._blob.lock()

    def has_journal(self) -> bool:
        return True
