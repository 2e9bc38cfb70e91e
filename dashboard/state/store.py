"""Server-side state: images, masks, predictions and computed maps, keyed by session id + content hash.

The browser's `dcc.Store`s hold only the keys. Values live in a `StateStore`; one interface, three backends:

- `DiskStore` (the default): a `diskcache.Cache` directory, safe to share between threads, processes (background
  jobs) and web workers on one host.
- `RedisStore`: a Redis database, shared by the web tier and the Celery workers of several machines.
- `TieredStore`: what the app uses when Redis is configured: a host-local `DiskStore` in front of a `RedisStore`.
  Writes go to both, reads are answered locally when they can (and refresh / restore the Redis copy). When Redis is
  unreachable the store keeps working on the local tier alone and retries Redis after a short pause, so the fast
  methods, which run inside the web request, keep working through a Redis outage (background jobs do not: they need
  the broker; see `dashboard.jobs.background`).

Entries expire after a period without use. Stores hold only their location (directory, URL) and open their handles
lazily, so they pickle cheaply into job processes.

Keys look like ``<session>/<kind>/<key>``: two browser sessions never see each other's entries, even for the same
image, and a session id must be a 32-digit hex string (what `new_session_id` makes), so a client cannot address other
namespaces. Values are pickled (diskcache does the same): the Redis server must be private to the deployment.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import sqlite3
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import diskcache
import numpy as np

from explainers.keys import content_key  # the engine's keys, also imported from here by the app

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)
_SESSION_RE = re.compile(r"^[0-9a-f]{32}$")
_KEY_RE = re.compile(r"^[0-9A-Za-z_.:+\-]{1,400}$")
_MISSING = object()
REDIS_PREFIX = "segx:state:"


def new_session_id() -> str:
    """A fresh random session id."""
    return uuid.uuid4().hex


def check_session(session: Any) -> str:
    """`session` if it is a valid session id; ValueError otherwise."""
    if not isinstance(session, str) or not _SESSION_RE.match(session):
        raise ValueError("Invalid session id.")
    return session


def is_redis_url(location: str | None) -> bool:
    """Whether `location` names a Redis server (redis://, rediss://, unix://) rather than a directory."""
    return bool(location) and str(location).split("://", 1)[0] in ("redis", "rediss", "unix")


class StateStore:
    """A per-session key-value store: the interface every backend implements.

    Subclasses implement the primitives `_set`, `_get` (returns `_MISSING` when absent), `_touch`, `_contains` and
    `close`; key validation, expiry refresh and content-hashed arrays live here, once.
    """

    expire: float | None

    @staticmethod
    def _key(session: str, kind: str, key: str) -> str:
        check_session(session)
        if not _KEY_RE.match(kind) or not _KEY_RE.match(str(key)):
            raise ValueError(f"Invalid state key {kind!r}/{key!r}.")
        return f"{session}/{kind}/{key}"

    def put(self, session: str, kind: str, key: str, value: Any) -> str:
        """Store `value` under (session, kind, key); returns `key`."""
        self._set(self._key(session, kind, key), value)
        return key

    def get(self, session: str, kind: str, key: str | None, default: Any = None) -> Any:
        """The value under (session, kind, key), or `default`; refreshes its expiry."""
        if key is None:
            return default
        full = self._key(session, kind, key)
        value = self._get(full)
        if value is _MISSING:
            return default
        if self.expire:
            self._touch(full)
        return value

    def fetch(self, session: str, kind: str, key: str | None, default: Any = None) -> Any:
        """`get` for an entry another host has just written (a background job's result): a store that pauses a tier
        after a failure (`TieredStore`) tries it anyway."""
        return self.get(session, kind, key, default)

    def has(self, session: str, kind: str, key: str) -> bool:
        """Whether (session, kind, key) holds a value."""
        return self._contains(self._key(session, kind, key))

    def put_array(self, session: str, kind: str, array: np.ndarray) -> str:
        """Store an array under its content hash; returns the hash."""
        key = content_key(array)
        self.put(session, kind, key, np.asarray(array))
        return key

    def share(self, session: str, kind: str, key: str) -> bool:
        """Make sure the entry is visible to every host (a job on another machine is about to read it); returns
        whether it is. Stores on one host have nothing to do."""
        return self.has(session, kind, key)

    def close(self) -> None:
        """Close the backend's handles (they reopen on the next use)."""

    def _set(self, full: str, value: Any) -> None:
        raise NotImplementedError

    def _get(self, full: str) -> Any:
        raise NotImplementedError

    def _touch(self, full: str) -> None:
        raise NotImplementedError

    def _contains(self, full: str) -> bool:
        raise NotImplementedError


class OneWriteDisk(diskcache.Disk):
    """diskcache's Disk, except that a pickled value big enough for its own file is written in one call.

    diskcache writes such a file by iterating over a BytesIO of the pickle, which yields it line by line: a 4 MB map
    record made ~10,000 writes (split at every newline byte), ~20 ms per question at 512x512. The file and its table
    row are the ones diskcache itself would make (MODE_PICKLE with a file name), so any Disk reads them.
    """

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> tuple[int, int, str | None, Any]:
        if read or type(value) in (str, bytes, int, float):
            return super().store(value, read, key=key)
        result = pickle.dumps(value, protocol=self.pickle_protocol)
        if len(result) < self.min_file_size:
            return 0, diskcache.core.MODE_PICKLE, None, sqlite3.Binary(result)
        filename, full_path = self.filename(key, value)
        os.makedirs(os.path.dirname(full_path), exist_ok=True)
        with open(full_path, "xb") as writer:
            writer.write(result)
        return len(result), diskcache.core.MODE_PICKLE, filename, None


class DiskStore(StateStore):
    """The store over a diskcache directory (one host)."""

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
                self.directory, size_limit=self.size_limit, eviction_policy="least-recently-used", disk=OneWriteDisk
            )
        return self._cache

    def _set(self, full: str, value: Any) -> None:
        self.cache.set(full, value, expire=self.expire)

    def _get(self, full: str) -> Any:
        return self.cache.get(full, default=_MISSING)

    def _touch(self, full: str) -> None:
        self.cache.touch(full, expire=self.expire)

    def _contains(self, full: str) -> bool:
        return full in self.cache

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None


def redis_client(url: str, timeout: float = 2.0) -> redis.Redis:
    """A Redis client that fails fast (no retries, short timeouts): callers decide what an outage means."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )  # fmt: skip


class RedisStore(StateStore):
    """The store over a Redis database (values pickled; keys prefixed with `segx:state:`)."""

    def __init__(self, url: str, *, expire: float | None = 6 * 3600, prefix: str = REDIS_PREFIX) -> None:
        self.url = url
        self.expire = expire
        self.prefix = prefix
        self._client: redis.Redis | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "expire": self.expire, "prefix": self.prefix}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], expire=state["expire"], prefix=state["prefix"])

    @property
    def client(self) -> redis.Redis:
        """The Redis client (created on first use; redis-py pools connections and is thread-safe)."""
        if self._client is None:
            self._client = redis_client(self.url)
        return self._client

    def _ttl(self) -> int | None:
        return max(1, round(self.expire)) if self.expire else None

    def _set(self, full: str, value: Any) -> None:
        self.client.set(self.prefix + full, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), ex=self._ttl())

    def _get(self, full: str) -> Any:
        data = self.client.get(self.prefix + full)
        return _MISSING if data is None else pickle.loads(data)

    def _touch(self, full: str) -> None:
        ttl = self._ttl()
        if ttl:
            self.client.expire(self.prefix + full, ttl)

    def _contains(self, full: str) -> bool:
        return bool(self.client.exists(self.prefix + full))

    def restore(self, full: str, value: Any) -> None:
        """Refresh the entry's expiry; write `value` if the entry is gone (one round trip when it is there)."""
        ttl = self._ttl()
        present = self.client.expire(self.prefix + full, ttl) if ttl else self.client.exists(self.prefix + full)
        if not present:
            self._set(full, value)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class TieredStore(StateStore):
    """A host-local `DiskStore` in front of a shared `RedisStore`, surviving Redis outages on the local tier.

    Values are immutable per key (keys are content hashes, or hashes of the question a result answers), so a local
    hit is always current. While Redis is unreachable, every operation uses the local tier alone and Redis is retried
    after `retry_after` seconds; `shared_ok` tells callers whether the last attempt reached Redis.
    """

    def __init__(self, local: DiskStore, shared: RedisStore, *, retry_after: float = 5.0) -> None:
        self.local, self.shared, self.retry_after = local, shared, retry_after
        self.expire = local.expire
        self._down_until = 0.0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"local": self.local, "shared": self.shared, "retry_after": self.retry_after}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["local"], state["shared"], retry_after=state["retry_after"])

    @property
    def shared_ok(self) -> bool:
        """False while Redis is considered down (after a failed call, for `retry_after` seconds)."""
        return time.monotonic() >= self._down_until

    def _shared(self, op: str, *args: Any) -> Any:
        """Call `self.shared.<op>(*args)`; `_MISSING` if Redis is down (then skipped for `retry_after` seconds)."""
        if not self.shared_ok:
            return _MISSING
        import redis

        try:
            return getattr(self.shared, op)(*args)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as err:
            with self._lock:
                if self.shared_ok:
                    log.warning("Redis state store unreachable (%s); using the local tier for %.0f s",
                                err, self.retry_after)  # fmt: skip
                self._down_until = time.monotonic() + self.retry_after
            return _MISSING

    def _set(self, full: str, value: Any) -> None:
        self.local._set(full, value)
        self._shared("_set", full, value)

    def _get(self, full: str) -> Any:
        value = self.local._get(full)
        if value is not _MISSING:
            self._shared("restore", full, value)
            return value
        value = self._shared("_get", full)
        if value is not _MISSING:
            self.local._set(full, value)
        return value

    def _touch(self, full: str) -> None:
        self.local._touch(full)  # the shared copy was refreshed by `_get`

    def fetch(self, session: str, kind: str, key: str | None, default: Any = None) -> Any:
        """`get`, trying Redis even while it is paused: after an outage this host may still be pausing Redis when a
        worker's result has already reached it there."""
        self._down_until = 0.0
        return self.get(session, kind, key, default)

    def share(self, session: str, kind: str, key: str) -> bool:
        """Copy a local entry to Redis if Redis lacks it (written during an outage, or Redis restarted empty); tries
        Redis even while it is paused. False if the entry is nowhere or Redis is unreachable."""
        full = self._key(session, kind, key)
        value = self.local._get(full)
        self._down_until = 0.0
        if value is _MISSING:
            return self._shared("_contains", full) is True
        return self._shared("restore", full, value) is not _MISSING

    def _contains(self, full: str) -> bool:
        return self.local._contains(full) or bool(self._shared("_contains", full) is True)

    def close(self) -> None:
        self.local.close()
        self.shared.close()


def open_store(directory: str, *, redis_url: str | None = None, expire: float | None = 6 * 3600) -> StateStore:
    """The configured store: a `DiskStore` in `directory`, or a `TieredStore` over it and Redis at `redis_url`."""
    local = DiskStore(directory, expire=expire)
    if not redis_url:
        return local
    return TieredStore(local, RedisStore(redis_url, expire=expire))
