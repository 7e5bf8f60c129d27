"""Hands the memory an apply has freed back to the operating system.

CPython returns a freed object's memory to its allocator, not to the system: after 40,000 links in
flight (their tokens, journal rows, answers read and dropped) glibc keeps the freed pages of its heap,
and the end of the apply (the state read again, one journal entry per resource) grows the process
on top of them. `malloc_trim(0)` releases the free pages inside glibc's heap before and after the
execution, so what comes after starts from a smaller process. Elsewhere (macOS, musl) it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


def give_back() -> None:
    """Collect cycles and return the allocator's free pages to the system (where it can)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
