"""Server-side state: images, masks, predictions and computed maps, keyed by session id + content hash.

The browser's `dcc.Store`s hold only the keys. Values live in a `diskcache.Cache` directory, which is safe to share
between threads, processes (background jobs) and web workers on one host. Entries expire after a period without use.
A `StateStore` holds only its directory and opens the cache lazily, so it pickles cheaply into job processes.

Keys look like ``<session>/<kind>/<key>``: two browser sessions never see each other's entries, even for the same
image, and a session id must be a 32-digit hex string (what `new_session_id` makes), so a client cannot address other
namespaces.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import diskcache
import numpy as np

_SESSION_RE = re.compile(r"^[0-9a-f]{32}$")
_KEY_RE = re.compile(r"^[0-9A-Za-z_.:+\-]{1,400}$")


def new_session_id() -> str:
    """A fresh random session id."""
    return uuid.uuid4().hex


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


def check_session(session: Any) -> str:
    """`session` if it is a valid session id; ValueError otherwise."""
    if not isinstance(session, str) or not _SESSION_RE.match(session):
        raise ValueError("Invalid session id.")
    return session


class StateStore:
    """A per-session key-value store over a diskcache directory."""

    def __init__(self, directory: str, *, expire: float | None = 6 * 3600, size_limit: int = 2**31) -> None:
        self.directory = str(directory)
        self.expire = expire
        self.size_limit = size_limit
        self._cache: diskcache.Cache | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory, "expire": self.expire, "size_limit": self.size_limit}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["directory"], expire=state["expire"], size_limit=state["size_limit"])

    @property
    def cache(self) -> diskcache.Cache:
        """The underlying diskcache (opened on first use)."""
        if self._cache is None:
            self._cache = diskcache.Cache(
                self.directory, size_limit=self.size_limit, eviction_policy="least-recently-used"
            )
        return self._cache

    @staticmethod
    def _key(session: str, kind: str, key: str) -> str:
        check_session(session)
        if not _KEY_RE.match(kind) or not _KEY_RE.match(str(key)):
            raise ValueError(f"Invalid state key {kind!r}/{key!r}.")
        return f"{session}/{kind}/{key}"

    def put(self, session: str, kind: str, key: str, value: Any) -> str:
        """Store `value` under (session, kind, key); returns `key`."""
        self.cache.set(self._key(session, kind, key), value, expire=self.expire)
        return key

    def get(self, session: str, kind: str, key: str | None, default: Any = None) -> Any:
        """The value under (session, kind, key), or `default`; refreshes its expiry."""
        if key is None:
            return default
        full = self._key(session, kind, key)
        value = self.cache.get(full, default=default)
        if value is not default and self.expire:
            self.cache.touch(full, expire=self.expire)
        return value

    def has(self, session: str, kind: str, key: str) -> bool:
        """Whether (session, kind, key) holds a value."""
        return self._key(session, kind, key) in self.cache

    def put_array(self, session: str, kind: str, array: np.ndarray) -> str:
        """Store an array under its content hash; returns the hash."""
        key = content_key(array)
        self.put(session, kind, key, np.asarray(array))
        return key

    def close(self) -> None:
        """Close the cache handle (it reopens on the next use)."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None
