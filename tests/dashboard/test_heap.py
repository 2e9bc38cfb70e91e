"""`dashboard.jobs.heap`: a finished job's freed memory really leaves the process (glibc)."""

from __future__ import annotations

import threading

import psutil
import pytest

from dashboard.jobs import heap

pytestmark = pytest.mark.skipif(heap._glibc() is None, reason="glibc's malloc only")
MiB = 1024 * 1024


def test_memory_a_thread_freed_goes_back_to_the_system():
    """A "job" thread allocates 160 MB in 64 KiB blocks (below malloc's mmap threshold: from its heap arena) and
    frees all but the last, which pins the arena's top so plain `free` cannot shrink it; `release_freed` returns the
    freed pages."""
    process = psutil.Process()
    kept = []

    def job() -> None:
        blocks = [bytearray(64 * 1024) for _ in range(160 * 16)]  # bytearray writes its zeros: the pages are resident
        kept.append(blocks[-1])
        del blocks

    thread = threading.Thread(target=job)
    thread.start()
    thread.join()
    before = process.memory_info().rss
    assert heap.release_freed()
    after = process.memory_info().rss
    assert before - after > 100 * MiB, (before / MiB, after / MiB)


def test_arenas_can_be_capped():
    assert heap.cap_arenas(8)
