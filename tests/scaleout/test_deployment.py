"""The scaled-out deployment end to end: redis-server, ``gunicorn -w 2 app:server`` and a Celery worker, all real.

The app is driven over HTTP the way dash-renderer drives it (`benchmarks.app_server.DashClient`: page load, the
callbacks a prop change triggers, background jobs started and polled with their signed handles). The worker has its
own state directory, so everything it reads and writes goes through Redis, as on another machine. Tests run in file
order and share the deployment; the Redis outage comes last.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from benchmarks import app_server as bench
from benchmarks.deployment import RedisServer, Service, web_service, worker_service
from dashboard.jobs.scaleout import KEY_PREFIX, LOST_MESSAGE, REDIS_MESSAGE

SLOW_METHODS = ["integrated_gradients", "smoothgrad", "deep_shap"]  # a few seconds together; SHAP is in test 1
FAILED_CARD_TEXT = "Not computed: the background job failed."


class RecordingClient(bench.DashClient):
    """A DashClient that also keeps every background-job poll answer (to see the progress reports)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.polls: list[dict[str, Any]] = []

    def _post(self, url: str, body: Mapping[str, Any]) -> tuple[float, float, float, int, bytes]:
        answer = super()._post(url, body)
        if "cacheKey=" in url and answer[4]:
            self.polls.append(json.loads(answer[4]))
        return answer


@pytest.fixture(scope="module")
def worker(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = worker_service(redis_server.url, tmp_path_factory.mktemp("worker"))
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def web(redis_server: RedisServer, worker: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = web_service(redis_server.url, tmp_path_factory.mktemp("web"))
    service.start()
    try:
        service.wait_serving(timeout=240)
        worker.wait_log("ready.", timeout=240)
    except Exception:
        service.stop()
        raise
    yield service
    service.stop()


def open_page(web: Service, sample: int = 0) -> RecordingClient:
    """A new browser session: load the page and pick a gallery sample."""
    client = RecordingClient(web.url, timeout=120)
    client.load_page()
    samples = bench._sample_ids(client.page)
    assert samples, "the demo model's sample gallery is missing"
    bench._pick_sample(client, samples[sample % len(samples)])
    return client


def select_box(client: bench.DashClient, seed: int) -> bench.Interaction:
    height, width = bench._image_shape(client.page)
    return bench._select_box(client, bench.random_boxes(1, height, width, random.Random(seed))[0])


def cards(client: bench.DashClient, grid: str) -> dict[str, str]:
    """{method: "heatmap", or the text of its placeholder / failure card} for the cards in a grid."""
    found: dict[str, str] = {}
    for card in client.page.get(grid, "children") or []:
        props = card["props"]
        method = props["data-method"]
        if any(isinstance(c["props"].get("id"), Mapping) and c["props"]["id"].get("type") == bench.HEATMAP_TYPE
               for c in bench.walk_components(card)):  # fmt: skip
            found[method] = "heatmap"
            continue
        for comp in bench.walk_components(card):
            if comp["props"].get("className") == "hm-placeholder":
                found[method] = str(comp["props"]["children"][-1]["props"]["children"])
    return found


def message(client: bench.DashClient) -> str:
    return str(client.page.get("message", "children") or "") if client.page.get("message", "is_open") else ""


def test_a_shap_job_completes_on_the_worker_with_progress(web: Service, worker: Service) -> None:
    client = open_page(web, 0)
    fast = select_box(client, 0)
    assert fast.request_carrying(bench._is_fast_grid) is not None
    result = bench.shap_session(client)
    assert result["completed"], (result, message(client), web.log_tail(), worker.log_tail())
    progress = [p["progress"] for p in client.polls if p.get("progress")]
    texts = [str(p.get("slow-progress-text.children", "")) for p in progress]
    assert any("SHAP" in t for t in texts), texts  # per-method progress reached the browser
    percents = [p["slow-progress.value"] for p in progress if "slow-progress.value" in p]
    assert percents and all(0 <= v <= 100 for v in percents) and max(percents) > 0
    assert "succeeded" in worker.log_tail(200)  # ran on the Celery worker
    client.close()


def _started_jobs(redis_url: str) -> set[bytes]:
    import redis

    return set(redis.Redis.from_url(redis_url).keys(KEY_PREFIX + "*:started"))


def test_a_killed_worker_gives_a_clear_error_and_a_later_job_succeeds(
    web: Service, worker: Service, redis_server: RedisServer
) -> None:
    client = open_page(web, 1)
    select_box(client, 1)
    before = _started_jobs(redis_server.url)
    chosen = [*list(client.page.get(bench.METHODS, "value") or []), *SLOW_METHODS]
    outcome: dict[str, Any] = {}

    def tick() -> None:
        try:
            outcome["interaction"] = client.interact("slow", [(bench.METHODS, "value", chosen)], timeout=120)
        except Exception as err:  # reported below
            outcome["error"] = err

    thread = threading.Thread(target=tick)
    thread.start()
    deadline = time.monotonic() + 120
    while not (_started_jobs(redis_server.url) - before):
        assert time.monotonic() < deadline, f"the job never started:\n{worker.log_tail()}"
        time.sleep(0.05)
    worker.kill()  # mid-job: the job has started and runs for seconds
    thread.join(timeout=150)
    assert not thread.is_alive(), "the browser was left polling a lost job"
    assert "error" not in outcome, outcome.get("error")
    assert message(client) == LOST_MESSAGE
    slow = cards(client, bench.SLOW_GRID)
    assert slow == dict.fromkeys(SLOW_METHODS, FAILED_CARD_TEXT), slow

    worker.start()
    worker.wait_log("ready.", timeout=240)
    later = select_box(client, 2)  # a new question: its slow methods go to the restarted worker
    assert later.request_carrying(bench._is_slow_grid) is not None
    slow = cards(client, bench.SLOW_GRID)
    assert {m: slow.get(m) for m in SLOW_METHODS} == dict.fromkeys(SLOW_METHODS, "heatmap"), (slow, message(client))
    client.close()


def test_with_redis_stopped_fast_methods_work_and_slow_ones_say_why(
    web: Service, worker: Service, redis_server: RedisServer
) -> None:
    client = open_page(web, 2)
    select_box(client, 3)
    fast_methods = list(client.page.get(bench.METHODS, "value") or [])
    redis_server.stop()
    try:
        inter = select_box(client, 4)  # fast methods in the request; SHAP & co. would be a job
        assert inter.request_carrying(bench._is_fast_grid) is not None
        fast = cards(client, bench.FAST_GRID)
        assert {m: fast.get(m) for m in fast_methods} == dict.fromkeys(fast_methods, "heatmap"), fast
        slow_methods = [m for m in SLOW_METHODS if m not in fast_methods]
        chosen = [*fast_methods, *slow_methods]
        client.interact("slow", [(bench.METHODS, "value", chosen)], timeout=120)
        assert message(client) == REDIS_MESSAGE
        slow = cards(client, bench.SLOW_GRID)
        assert slow == dict.fromkeys(slow_methods, FAILED_CARD_TEXT), slow
        layer = bench.slider_session(client, 3, random.Random(0))  # stored maps, served from the local tier
        assert layer["chain_ms"]["n"] == 3
    finally:
        redis_server.start()  # on the same port; empty (no persistence)
    again = select_box(client, 5)  # Redis is back: the web tier and the worker reconnect, jobs run again
    assert again.request_carrying(bench._is_slow_grid) is not None
    slow = cards(client, bench.SLOW_GRID)
    assert slow == dict.fromkeys(slow_methods, "heatmap"), (slow, message(client), worker.log_tail())
    client.close()
