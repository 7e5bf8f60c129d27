"""The memory an apply freed goes back to the system (glibc Linux, where the product runs in its image)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller.service.memory import ARENAS, _malloc_trim, give_back


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux") or _malloc_trim() is None, reason="glibc only")
def test_freed_pages_between_live_objects_leave_the_process() -> None:
    # like an apply's in-flight state: many mid-sized objects, most freed, a few kept between them,
    # so the heap's top never frees and glibc keeps the pages in between
    held = [bytes(2048) for _ in range(40_000)]  # ~80 MB
    kept = held[::32]
    del held
    before = _rss_mb()
    give_back()
    after = _rss_mb()
    del kept  # alive until measured: the pages between them are what must go
    assert before - after > 30, (before, after)


_THREADS_ALLOCATE = """
import ctypes, sys, threading
from controller.service.memory import few_arenas
if sys.argv[1] == "capped":
    few_arenas()
start = threading.Barrier(8)
kept = []
def work():
    start.wait()  # all alive at once, as an apply's senders and readers are
    kept.append([bytes(4096) for _ in range(200)])  # past pymalloc's 512 bytes: glibc's malloc
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


def _arenas(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _THREADS_ALLOCATE, mode],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
    )
    return sum(1 for line in done.stderr.splitlines() if line.startswith("Arena "))


@pytest.mark.skipif(not sys.platform.startswith("linux") or _malloc_trim() is None, reason="glibc only")
def test_threads_share_few_arenas_once_capped() -> None:
    # each arena keeps its own free pages: eight threads left to glibc's default make eight more
    assert _arenas("default") > ARENAS
    assert _arenas("capped") <= ARENAS
