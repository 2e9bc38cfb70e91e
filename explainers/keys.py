"""Stable content keys: one short hash for arrays, strings and numbers.

The engine's caches, the questions (`explainers.question`) and the app's server-side store all key their entries
with `content_key`, so equal content always gets the same key in every process and on every machine (unlike Python's
`hash`, which is salted per process).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def content_key(*parts: Any) -> str:
    """A short stable hash of arrays, strings and numbers (16 hex digits)."""
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        if isinstance(part, np.ndarray):
            array = np.ascontiguousarray(part)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        else:
            digest.update(repr(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()
