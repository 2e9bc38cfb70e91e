"""Retention of uploaded models and per-session state on each host: a time to live and a total size cap.

- **Uploaded models** (`<state dir>/models/<sha256>.keras`): a model not used for `AppConfig.model_ttl_s` is deleted;
  then, while the models together exceed `AppConfig.models_max_bytes`, the least recently used one is. "Used" is
  the file's modification time, refreshed each time a session is served by it (`touch_model`). A session whose model
  was deleted gets the configured model back. With Redis, the shared copy expires after the same time without use.
- **Per-session state** (the local diskcache tier, `<state dir>/state`): entries expire `AppConfig.state_expire_s`
  after their last use; then, while the entries exceed `AppConfig.state_max_bytes`, the least recently used are
  evicted. In Redis every entry carries the same time to live; cap Redis' memory with its own `maxmemory` and
  `maxmemory-policy volatile-lru`.

Every eviction is logged with what was evicted: the model's file, or the session with its entry count and bytes.
`start_retention` prunes once and then every `AppConfig.retention_period_s` seconds in a daemon thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from dashboard.config import AppConfig, MiB
from dashboard.state.store import DiskStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evicted:
    """One evicted model file or session."""

    name: str
    entries: int
    size: int
    reason: str


def touch_model(path: str | Path) -> None:
    """Mark a model file as used now (its retention clock restarts)."""
    try:
        os.utime(path)
    except OSError:
        pass


def _log(kind: str, item: Evicted) -> None:
    log.warning("retention: evicted %s %s (%d entr%s, %.2f MiB): %s", kind, item.name, item.entries,
                "y" if item.entries == 1 else "ies", item.size / MiB, item.reason)  # fmt: skip


def prune_models(models_dir: str | Path, ttl_s: float, max_bytes: int, now: float | None = None) -> list[Evicted]:
    """Delete models unused for `ttl_s` seconds, then the least recently used ones until they fit in `max_bytes`."""
    now = time.time() if now is None else now
    files = []
    for path in Path(models_dir).glob("*.keras"):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        files.append((stat.st_mtime, stat.st_size, path))
    files.sort()
    evicted: list[Evicted] = []
    total = sum(size for _, size, _ in files)
    for used, size, path in files:
        if ttl_s and now - used > ttl_s:
            reason = f"not used for {(now - used) / 3600:.1f} h (time to live {ttl_s / 3600:.1f} h)"
        elif total > max_bytes:
            reason = f"models over their cap of {max_bytes / MiB:.0f} MiB; least recently used"
        else:
            continue
        path.unlink(missing_ok=True)
        total -= size
        item = Evicted(path.name, 1, size, reason)
        _log("uploaded model", item)
        evicted.append(item)
    return evicted


def _session_of(key: object) -> str:
    return str(key).split("/", 1)[0]


def prune_state(store: DiskStore, max_bytes: int, now: float | None = None) -> list[Evicted]:
    """Drop expired entries of a local state store, then the least recently used until they fit in `max_bytes`;
    returns one `Evicted` per (session, reason)."""
    now = time.time() if now is None else now
    cache = store.cache
    rows = cache._sql(
        "SELECT key, size + COALESCE(length(value), 0), access_time, expire_time FROM Cache ORDER BY access_time"
    ).fetchall()
    groups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    total = sum(size for _, size, _, _ in rows)
    for key, size, _, expire_time in rows:
        if expire_time is not None and expire_time < now:
            reason = f"not used for {(store.expire or 0) / 3600:.1f} h (time to live)"
        elif total > max_bytes:
            reason = f"state over its cap of {max_bytes / MiB:.0f} MiB; least recently used"
        else:
            continue
        if cache.delete(key):
            total -= size
            group = groups[(_session_of(key), reason)]
            group[0] += 1
            group[1] += size
    evicted = [Evicted(f"session {session}", n, size, reason) for (session, reason), (n, size) in groups.items()]
    for item in evicted:
        _log("state of", item)
    return evicted


def prune(config: AppConfig) -> list[Evicted]:
    """Apply the retention policy of `config` to this host's models and local state once."""
    from dashboard.state.resources import get_store

    evicted = prune_models(config.models_path, config.model_ttl_s, config.models_max_bytes)
    store = get_store(config)
    local = getattr(store, "local", store)
    if isinstance(local, DiskStore):
        evicted += prune_state(local, config.state_max_bytes)
    return evicted


def start_retention(config: AppConfig) -> threading.Thread:
    """Prune now and then every `config.retention_period_s` seconds, in a daemon thread."""

    def loop() -> None:
        while True:
            try:
                prune(config)
            except Exception:
                log.exception("retention pass failed")
            time.sleep(config.retention_period_s)

    thread = threading.Thread(target=loop, name="segx-retention", daemon=True)
    thread.start()
    return thread
