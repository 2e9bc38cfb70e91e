"""Keeping the web process's heap small when background jobs run in its threads (glibc's malloc; elsewhere a no-op).

glibc gives each thread that allocates under contention its own heap arena, up to 8 per core, and returns memory
that a finished job freed to the system only when the top of an arena is free. In a server whose request threads
and job threads come and go, that leaves one job's freed working set in one arena while the next job, in another
thread, grows another: the process's resident memory climbs by a job's working set per arena. So when jobs run in
threads (`dashboard.jobs.thread_jobs`):

- `cap_arenas()` (at app start-up, before the job threads start) limits the arenas to one per core, so a later job
  mostly reuses what an earlier one freed;
- `release_freed()` (after every job) hands the freed pages of every arena back to the system (`malloc_trim`).

Neither changes what a computation allocates; they only change what stays resident between jobs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import platform

log = logging.getLogger(__name__)
M_ARENA_MAX = -8  # glibc's mallopt parameter


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def cap_arenas(arenas: int | None = None) -> bool:
    """Limit glibc's malloc arenas to `arenas` (default: the core count, at least 2); False where not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    count = arenas or max(2, len(os.sched_getaffinity(0)))
    ok = bool(libc.mallopt(M_ARENA_MAX, count))
    log.debug("malloc arenas capped at %d: %s", count, ok)
    return ok


def release_freed() -> bool:
    """Return the freed memory of every malloc arena to the system; False where not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
