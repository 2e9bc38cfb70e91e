"""The Redis-backed state stores and the lost-job bookkeeping of `SegxCeleryManager`, against a real redis-server."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

from dashboard.config import AppConfig
from dashboard.jobs.scaleout import LOST_MESSAGE, QUEUE_MESSAGE, REDIS_MESSAGE, UNSUBMITTED, celery_manager
from dashboard.state.store import DiskStore, RedisStore, TieredStore, is_redis_url, new_session_id, open_store


@pytest.fixture()
def session() -> str:
    return new_session_id()


def test_redis_store_round_trip_sessions_and_expiry(redis_server, session):
    store = RedisStore(redis_server.url, expire=600)
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    key = store.put_array(session, "image", array)
    np.testing.assert_array_equal(store.get(session, "image", key), array)
    assert store.has(session, "image", key)
    assert store.get(new_session_id(), "image", key) is None
    assert store.get(session, "image", "missing", default="d") == "d"
    ttl = store.client.ttl(store.prefix + store._key(session, "image", key))
    assert 0 < ttl <= 600
    with pytest.raises(ValueError):
        store.get("../other", "image", key)
    clone = pickle.loads(pickle.dumps(store))
    assert clone._client is None and clone.get(session, "image", key) is not None
    clone.close()
    store.close()


def test_open_store_picks_the_backend(tmp_path, redis_server):
    assert isinstance(open_store(str(tmp_path / "a")), DiskStore)
    tiered = open_store(str(tmp_path / "b"), redis_url=redis_server.url)
    assert isinstance(tiered, TieredStore) and tiered.shared.url == redis_server.url
    assert is_redis_url(redis_server.url) and not is_redis_url(str(tmp_path))
    tiered.close()


def test_tiered_store_shares_through_redis_and_survives_an_outage(tmp_path, redis_server, session):
    """Two hosts (two local tiers) see each other's entries through Redis; with Redis down the local tier answers,
    and entries written meanwhile reach Redis once it is back."""
    host_a = TieredStore(DiskStore(str(tmp_path / "a")), RedisStore(redis_server.url), retry_after=0.0)
    host_b = TieredStore(DiskStore(str(tmp_path / "b")), RedisStore(redis_server.url), retry_after=0.0)
    host_a.put(session, "result", "k1", {"v": 1})
    assert host_b.get(session, "result", "k1") == {"v": 1}
    assert host_b.local.get(session, "result", "k1") == {"v": 1}  # copied into B's local tier

    redis_server.stop()
    try:
        host_a.put(session, "result", "k2", {"v": 2})
        assert host_a.get(session, "result", "k2") == {"v": 2}
        assert host_a.get(session, "result", "k1") == {"v": 1}
        assert host_b.get(session, "result", "k2") is None  # not shared while Redis is down
        assert not host_a.shared_ok or host_a.retry_after == 0.0
    finally:
        redis_server.start()  # empty: no persistence
    assert host_a.get(session, "result", "k2") == {"v": 2}  # local hit restores the Redis copy
    assert host_b.get(session, "result", "k2") == {"v": 2}
    host_a.close()
    host_b.close()


def test_share_pushes_a_local_entry_to_a_restarted_redis_even_while_paused(tmp_path, redis_server, session):
    web = TieredStore(DiskStore(str(tmp_path / "web")), RedisStore(redis_server.url), retry_after=600.0)
    worker = RedisStore(redis_server.url)
    web.put(session, "image", "k", np.ones(3))
    redis_server.stop()
    try:
        web.get(session, "image", "k")  # fails over to the local tier and pauses Redis for 600 s
        assert not web.shared_ok
        assert not web.share(session, "image", "k")  # Redis is down: not shared
    finally:
        redis_server.start()  # empty
    assert worker.get(session, "image", "k") is None
    assert web.share(session, "image", "k")
    np.testing.assert_array_equal(worker.get(session, "image", "k"), np.ones(3))
    assert not web.share(session, "image", "never-stored")
    web.close()
    worker.close()


def test_share_question_makes_image_region_and_stored_maps_visible_to_a_worker(tmp_path, redis_server, session):
    """What a job on another machine reads (the question's image and region, and the maps a trust job measures) is
    pushed to Redis before the job is queued, also when Redis lost it (restarted empty)."""
    from dashboard.usecases import analysis

    web = TieredStore(DiskStore(str(tmp_path / "web")), RedisStore(redis_server.url))
    worker = RedisStore(redis_server.url)
    question = {"image": web.put_array(session, "image", np.ones((4, 4, 3), np.uint8)),
                "region": web.put_array(session, "region", np.eye(4, dtype=bool)), "target": 1}  # fmt: skip
    key = analysis.result_key(question, "gradcam")
    web.put(session, "result", key, {"method": "gradcam"})
    web.put(session, "layers", key, {"conv": np.zeros((2, 2))})
    redis_server.stop()
    redis_server.start()  # empty
    assert worker.get(session, "result", key) is None
    analysis.share_question(web, session, question, ["gradcam", "saliency"])  # saliency has nothing stored: skipped
    assert worker.get(session, "result", key) == {"method": "gradcam"}
    np.testing.assert_array_equal(worker.get(session, "layers", key)["conv"], np.zeros((2, 2)))
    np.testing.assert_array_equal(worker.get(session, "region", question["region"]), np.eye(4, dtype=bool))
    assert worker.get(session, "image", question["image"]) is not None
    web.close()
    worker.close()


def test_tiered_store_pauses_redis_after_a_failure(tmp_path, session):
    """An unreachable Redis is tried once, then skipped for `retry_after` seconds; the local tier answers."""
    from benchmarks.app_server import free_port

    store = TieredStore(DiskStore(str(tmp_path / "a")), RedisStore(f"redis://127.0.0.1:{free_port()}/0"),
                        retry_after=60.0)  # fmt: skip
    calls = []
    real_set = store.shared._set
    store.shared._set = lambda *args: calls.append(args) or real_set(*args)
    assert store.shared_ok
    store.put(session, "x", "k1", 1)
    assert not store.shared_ok and len(calls) == 1
    store.put(session, "x", "k2", 2)
    assert len(calls) == 1  # skipped while paused
    assert store.get(session, "x", "k1") == 1 and store.get(session, "x", "k2") == 2
    assert store.has(session, "x", "k2") and not store.has(session, "x", "k3")
    store.close()


def test_an_entry_another_host_wrote_is_fetched_while_redis_is_paused(tmp_path, redis_server, session):
    """After an outage the web tier pauses Redis for `retry_after` seconds, and `get` answers from its local tier
    alone; a job's result, written to Redis by a worker meanwhile, must still be found: `fetch` tries Redis anyway."""
    web = TieredStore(DiskStore(str(tmp_path / "web")), RedisStore(redis_server.url), retry_after=60.0)
    worker = TieredStore(DiskStore(str(tmp_path / "worker")), RedisStore(redis_server.url))
    web._down_until = time.monotonic() + 60.0  # as after a failed call during an outage
    worker.put(session, "result", "job", {"heatmap": 1})
    assert web.get(session, "result", "job") is None  # paused: the local tier alone
    assert web.fetch(session, "result", "job") == {"heatmap": 1}
    assert web.shared_ok and web.get(session, "result", "job") == {"heatmap": 1}
    assert web.fetch(session, "result", "missing", default="d") == "d"
    plain = DiskStore(str(tmp_path / "plain"))
    plain.put(session, "result", "job", 3)
    assert plain.fetch(session, "result", "job") == 3
    for store in (web, worker, plain):
        store.close()


@pytest.fixture()
def manager(redis_server):
    return celery_manager(AppConfig(redis_url=redis_server.url, job_queue_timeout_s=30.0))


def test_manager_tells_a_lost_job_from_a_running_or_queued_one(manager):
    client = manager.redis
    queued, started, beat, _ = manager._keys("job-a")
    client.set(queued, repr(time.time()))
    assert manager.job_lost("job-a") is None  # waiting in the queue, within the timeout
    client.set(started, "1")
    client.set(beat, "1", ex=10)
    assert manager.job_lost("job-a") is None  # running, beating
    client.delete(beat)
    assert manager.job_lost("job-a") == LOST_MESSAGE  # started, heartbeat expired: its worker is gone
    result = manager.get_result("no-such-result-key", "job-a")
    assert result == {"background_callback_error": {"msg": LOST_MESSAGE, "tb": ""}}
    assert not manager.job_running("job-a")


def test_manager_gives_up_a_job_no_worker_took(manager):
    queued, _, _, abandoned = manager._keys("job-b")
    manager.redis.set(queued, repr(time.time() - 31.0))
    assert manager.job_lost("job-b") == QUEUE_MESSAGE.format(seconds=30.0)
    assert manager.redis.get(abandoned)  # a worker that comes back later skips it


def test_manager_reports_a_job_it_could_not_submit(manager):
    job = UNSUBMITTED + "x"
    assert manager.job_lost(job) == REDIS_MESSAGE
    assert manager.get_result("k", job)["background_callback_error"]["msg"] == REDIS_MESSAGE
    assert not manager.job_running(job)
