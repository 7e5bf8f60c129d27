"""Where the controller keeps its journal and lock: `local:DIR` (SQLite + file lock) or
`azureblob://ACCOUNT/CONTAINER[/BLOB]` (ETag-guarded blob + blob lease), the same two backends as
`cmkctl apply`, so a CI apply and the controller exclude each other on either.

Local files the controller needs besides the journal (git clone, deferred intent, drift baseline)
stay in the state directory in both cases (an emptyDir is enough with azureblob).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Protocol

from controller.azure.blob_store import BlobState
from controller.model.clouds import Cloud
from controller.model.history import HistoryStore, Revision, WriterLock
from controller.state.file_lock import FileLock
from controller.state.sqlite_store import SqliteHistoryStore


class JournalStore(HistoryStore, Protocol):
    def revisions(self) -> list[Revision]: ...

    def close(self) -> None: ...


class StateBackend(Protocol):
    def store(self) -> JournalStore: ...

    def lock(self) -> WriterLock: ...

    def has_journal(self) -> bool: ...


class LocalState:
    def __init__(self, state_dir: Path, *, command: str, now: Callable[[], datetime]) -> None:
        self._dir, self._command, self._now = state_dir, command, now

    def store(self) -> JournalStore:
        return SqliteHistoryStore(self._dir, now=self._now)

    def lock(self) -> WriterLock:
        return FileLock(self._dir, command=self._command)

    def has_journal(self) -> bool:
        return (self._dir / "history.sqlite").exists()


class AzureBlobState:
    def __init__(self, url: str, *, command: str, cloud: Cloud | None = None) -> None:
        self._blob = BlobState(url, command=command, cloud=cloud)

    def store(self) -> JournalStore:
        return self._blob.store()

    def lock(self) -> WriterLock:
        return self._blob.lock()

    def has_journal(self) -> bool:
        return True


def open_backend(
    state_dir: Path,
    state_url: str | None,
    *,
    command: str,
    now: Callable[[], datetime],
    cloud: Cloud | None = None,
) -> StateBackend:
    if state_url:
        # parse_state_url refuses a non-azureblob URL
        return AzureBlobState(state_url, command=command, cloud=cloud)
    return LocalState(state_dir, command=command, now=now)
