"""Retention of uploaded models and per-session state (`state.retention`) on real stores: a diskcache local tier
in front of a real redis-server, and model files in a models directory."""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from dashboard.config import AppConfig
from dashboard.state.retention import prune, prune_models, prune_state, touch_model
from dashboard.state.store import DiskStore, RedisStore, TieredStore, new_session_id


def _model(directory, name: str, size: int, age_s: float) -> str:
    path = directory / f"{name}.keras"
    path.write_bytes(b"m" * size)
    used = time.time() - age_s
    os.utime(path, (used, used))
    return path.name


def test_models_past_their_time_to_live_then_the_least_recently_used_are_deleted_and_logged(tmp_path, caplog):
    old = _model(tmp_path, "a" * 64, 1000, age_s=3 * 3600)
    lru = _model(tmp_path, "b" * 64, 1000, age_s=600)
    recent = _model(tmp_path, "c" * 64, 1000, age_s=300)
    fresh = _model(tmp_path, "d" * 64, 1000, age_s=0)
    touch_model(tmp_path / lru)  # used just now: it moves behind `recent`
    with caplog.at_level(logging.WARNING, logger="dashboard.state.retention"):
        evicted = prune_models(tmp_path, ttl_s=2 * 3600, max_bytes=2500)
    assert [e.name for e in evicted] == [old, recent]  # expired first, then the least recently used over the cap
    assert "time to live" in evicted[0].reason and "cap" in evicted[1].reason
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([lru, fresh])
    assert old in caplog.text and recent in caplog.text


def test_state_entries_expire_and_the_oldest_sessions_go_over_the_cap_through_a_tiered_store(
    tmp_path, redis_server, caplog
):
    store = TieredStore(DiskStore(str(tmp_path / "state"), expire=3600), RedisStore(redis_server.url, expire=3600))
    first, second, third = new_session_id(), new_session_id(), new_session_id()
    for session in (first, second, third):
        store.put_array(session, "image", np.full((64, 64, 3), hash(session) % 255, np.uint8))  # 12 KiB each
        time.sleep(0.01)
    key = store.put(second, "result", "k", {"heatmap": np.zeros((64, 64), np.float32)})  # 16 KiB
    store.get(first, "result", "missing")
    assert store.shared.client.ttl(store.shared.prefix + store._key(second, "result", key)) > 0  # Redis: TTL
    with caplog.at_level(logging.WARNING, logger="dashboard.state.retention"):
        evicted = prune_state(store.local, max_bytes=45_000)  # fits only the newest entries
        assert [e.name for e in evicted] == [f"session {first}"] and evicted[0].entries == 1
        later = prune_state(store.local, max_bytes=10**9, now=time.time() + 7200)  # past the time to live
    assert {e.name for e in later} == {f"session {second}", f"session {third}"}
    assert all("time to live" in e.reason for e in later)
    assert first in caplog.text and second in caplog.text
    assert len(store.local.cache) == 0
    store.close()


def test_prune_applies_the_configured_policy_to_this_hosts_models_and_state(tmp_path):
    config = AppConfig(state_dir=str(tmp_path), model_ttl_s=60, models_max_bytes=10**6, state_max_bytes=10**6)
    (tmp_path / "models").mkdir()
    stale = _model(tmp_path / "models", "e" * 64, 10, age_s=120)
    evicted = prune(config)
    assert [e.name for e in evicted] == [stale] and not (tmp_path / "models" / stale).exists()
