"""The local writer lock: one apply at a time; the other waits, then fails naming the holder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.errors import LockHeldError
from controller.state.file_lock import FileLock

_HOLD = (
    "import sys, time\n"
    "from controller.state.file_lock import FileLock\n"
    "lock = FileLock(sys.argv[1], command='cmkctl apply -f prod')\n"
    "lock.acquire(timeout=0)\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


def _holder(tmp_path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_times_out_naming_the_holder(tmp_path: Path) -> None:
    """Scenario: a CI apply holds the state; a second apply waits --lock-timeout and names the holder."""
    proc = _holder(tmp_path, 30)
    try:
        start = time.monotonic()
        with pytest.raises(LockHeldError) as err:
            FileLock(tmp_path, poll_interval=0.05).acquire(timeout=0.3)
        assert time.monotonic() - start >= 0.3
        message = str(err.value)
        assert "cmkctl apply -f prod" in message
        assert f"pid {proc.pid}" in message
    finally:
        proc.kill()
        proc.wait()


def test_waiting_writer_proceeds_when_holder_dies(tmp_path: Path) -> None:
    """Scenario: the holder is SIGKILLed; the kernel drops the flock, so the next one gets it."""
    proc = _holder(tmp_path, 30)
    proc.kill()
    proc.wait()
    lock = FileLock(tmp_path, command="second")
    lock.acquire(timeout=2)
    assert "second" in (lock.holder() or "")
    assert f"pid {os.getpid()}" in (lock.holder() or "")
    lock.release()
    lock.release()  # idempotent


def test_lock_is_released_and_reacquirable(tmp_path: Path) -> None:
    """Scenario: two sequential applies in one process both get the lock."""
    with FileLock(tmp_path):
        pass
    with FileLock(tmp_path) as again:
        assert again.holder() is not None
