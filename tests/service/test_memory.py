"""The memory an apply freed goes back to the system (glibc Linux, where the product runs in its image)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from controller.service.memory import _malloc_trim, give_back


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
    assert before - after > 30, (before, after)
    assert kept[-1] == bytes(2048)  # what is still referenced is untouched
