"""One writer per local state directory: an `fcntl.flock` on `<state>/lock`.

Why: a CI `cmkctl apply` and the controller must never write at once (two writers could each spend
a workspace's W3 link budget). The holder writes who it is into the file so the loser can name it.
The kernel drops a flock when its process dies, so a SIGKILLed apply never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from controller.errors import CmkError, LockHeldError

FILENAME = "lock"


def _unwritable(path: Path, exc: OSError) -> CmkError:
    """The lock file cannot be written: a read-only or full state directory, named with the way out."""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return CmkError(
            f"{path}: the state directory {path.parent} is read-only ({exc.strerror}); apply needs to "
            "write its lock and journal there: make it writable, or give apply a writable --state (plan "
            "works on a read-only one)"
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return CmkError(f"{path}: the disk is full ({exc.strerror}); free space on it and run again")
    return CmkError(f"{path}: cannot write the lock file ({exc.strerror}); check the path and its rights")


class FileLock:
    """WriterLock for the local backend; use as a context manager or acquire/release."""

    def __init__(
        self,
        directory: str | Path,
        *,
        command: str = "cmkctl",
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        poll_interval: float = 0.2,
    ) -> None:
        self.path = Path(directory) / FILENAME
        self.command = command
        self._sleep = sleep
        self._monotonic = monotonic
        self._poll = poll_interval
        self._fh: IO[str] | None = None

    def _holder_soon(self, attempts: int = 10) -> str | None:
        """The holder's line; the winner writes it just after taking the lock, so wait a moment for it."""
        for _ in range(attempts):
            who = self.holder()
            if who:
                return who
            self._sleep(0.05)
        return None

    def acquire(self, *, timeout: float = 0.0) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise _unwritable(self.path, exc) from None
        deadline = self._monotonic() + max(0.0, timeout)
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if self._monotonic() >= deadline:
                    fh.close()
                    who = self._holder_soon() or "another process (holder unknown)"
                    raise LockHeldError(
                        f"the state in {self.path.parent} is locked by {who}; waited {timeout:g}s "
                        "(use --lock-timeout to wait longer)"
                    ) from None
                self._sleep(self._poll)
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps(
                {
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "command": self.command,
                    "since": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
        )
        fh.flush()
        os.fsync(fh.fileno())
        self._fh = fh

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is None:
            return
        with contextlib.suppress(OSError):
            fh.seek(0)
            fh.truncate()
            fh.flush()
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()

    def holder(self) -> str | None:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            return None
        if not isinstance(info, dict):
            return None
        return (
            f"'{info.get('command', '?')}' (pid {info.get('pid', '?')} on {info.get('host', '?')}, "
            f"since {info.get('since', '?')})"
        )

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
