"""Keeps an apply's process small: few allocator arenas, and freed memory handed back to the system.

glibc gives each thread that allocates its own arena (up to 8 per core), and each arena keeps its own
free pages: an apply's thirty threads (senders, the watch's readers, the HTTP pools) each grew one,
and the process carried their free space on top of what it used. `few_arenas()` caps the arenas at
ARENAS for all threads (our threads allocate under the GIL, so they rarely contend for one). It has
to run before the threads start: every command and the controller call it first.

CPython returns a freed object's memory to its allocator, not to the system: after 40,000 links in
flight (their tokens, journal rows, answers read and dropped) glibc keeps the freed pages of its heap,
and the end of the apply (the state read again, one journal entry per resource) grows the process
on top of them. `malloc_trim(0)` releases the free pages inside glibc's heap before and after the
execution, so what comes after starts from a smaller process. Elsewhere (macOS, musl) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable

# glibc's mallopt parameter for the arena cap, and the cap: the main arena and one for all threads
M_ARENA_MAX = -8
ARENAS = 2


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


@functools.cache
def few_arenas() -> bool:
    """Cap glibc's malloc arenas at ARENAS for this process (once; True where it took effect)."""
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None) if libc is not None else None
    return bool(mallopt(M_ARENA_MAX, ARENAS)) if mallopt is not None else False


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    trim: Callable[[int], int] | None = getattr(_libc(), "malloc_trim", None)  # glibc only
    return trim


def give_back() -> None:
    """Collect cycles and return the allocator's free pages to the system (where it can)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
