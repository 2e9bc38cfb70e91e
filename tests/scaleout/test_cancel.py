"""Cancel really stops a running job: real redis-server, ``gunicorn app:server`` and a Celery ``-P threads`` worker
(scaled out), and ``gunicorn app:server`` alone (embedded: jobs in threads of the web process, or with
SEGX_JOB_PROCESSES=1 in processes from the forkserver).

A slow job (SHAP, Integrated Gradients, SmoothGrad: ~15 s) is started over HTTP the way dash-renderer does, and
cancelled with the request the renderer sends when the cancel button is clicked (the cancel callback with
``cancelJob=<signed job handle>``). The process running the job must then stop using CPU within about one batch: the
job must log that it stopped at a progress report, and its CPU time (psutil) over the 3 s that follow must be a
small fraction of its rate while it ran.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest

from benchmarks import app_server as bench
from benchmarks.deployment import RedisServer, Service, service_env, web_service, worker_service
from dashboard.view import ids

SLOW = ["shap", "integrated_gradients", "smoothgrad"]
STOPPED_LOG = "cancelled: stopped after"
STOP_TIMEOUT_S = 90.0  # a batch takes ~1 s on an idle 2-core machine, several seconds on a loaded one


class JobClient(bench.DashClient):
    """A DashClient that keeps the handles of the background jobs it starts, and can cancel them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs: list[dict[str, str]] = []

    def _post(self, url: str, body: Mapping[str, Any]) -> tuple[float, float, float, int, bytes]:
        answer = super()._post(url, body)
        if "cacheKey=" not in url and answer[4]:
            data = json.loads(answer[4])
            if isinstance(data, dict) and "job" in data and "cacheKey" in data:
                self.jobs.append({"job": data["job"], "cacheKey": data["cacheKey"]})
        return answer

    def cancel(self, job: str) -> None:
        """Click the cancel button: post Dash's cancel callback with the job's handle, as the renderer does."""
        page = self.page
        assert page is not None
        page.set_props(ids.CANCEL, {"n_clicks": 1})
        [callback] = [cb for cb in page.callbacks if cb.outputs == ((ids.CANCEL, "id"),)]
        url = bench.update_url(self.base_url, self.config.get("end_id"), extra=[("cancelJob", job)])
        self._post(url, page.payload(callback, [f"{ids.CANCEL}.n_clicks"]))


def cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return float("nan")
    return times.user + times.system


def start_slow_job(url: str) -> tuple[JobClient, threading.Thread]:
    """Open a page, select a region and tick the slow methods; the job runs while the returned thread polls it."""
    client = JobClient(url, timeout=120)
    client.load_page()
    bench._pick_sample(client, bench._sample_ids(client.page)[0])
    height, width = bench._image_shape(client.page)
    import random

    bench._select_box(client, bench.random_boxes(1, height, width, random.Random(0))[0])
    chosen = [*list(client.page.get(bench.METHODS, "value") or []), *SLOW]
    thread = threading.Thread(target=client.interact, args=("slow", [(bench.METHODS, "value", chosen)]),
                              kwargs={"timeout": 240}, daemon=True)  # fmt: skip
    thread.start()
    deadline = time.monotonic() + 120
    while not client.jobs:
        assert time.monotonic() < deadline, "the slow job was never started"
        time.sleep(0.05)
    return client, thread


def measure_cancel(client: JobClient, process: psutil.Process, log: Service, pattern: str,
                   running_s: float = 2.0) -> dict[str, float]:  # fmt: skip
    """Cancel the job and measure `process`: its CPU seconds per second while the job ran, the seconds from the
    cancel until `pattern` (the job's "stopped" line) is in `log`, the CPU seconds it used meanwhile, and its CPU
    seconds per second over the 3 s after that."""
    before = cpu_seconds(process)
    time.sleep(running_s)
    at_cancel = cpu_seconds(process)
    running = (at_cancel - before) / running_s
    cancelled = time.monotonic()
    client.cancel(client.jobs[0]["job"])
    while pattern not in log.log_tail(400) and time.monotonic() - cancelled < STOP_TIMEOUT_S:
        time.sleep(0.1)
    stopped = time.monotonic()
    at_stop = cpu_seconds(process)
    time.sleep(3.0)
    after = (cpu_seconds(process) - at_stop) / 3.0
    gone = at_stop != at_stop  # nan: the process is gone (killed, or it exited)
    return {"running": running, "stop_s": stopped - cancelled, "cpu_until_stop": 0.0 if gone else at_stop - at_cancel,
            "after_stop": 0.0 if after != after else after, "stopped_itself": pattern in log.log_tail(400)}


# -- scaled out: the job runs in a thread of a Celery worker --------------------------------------------------------


@pytest.fixture(scope="module")
def deployment(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, Service]]:
    directory = tmp_path_factory.mktemp("cancel")
    worker = worker_service(redis_server.url, directory)
    web = web_service(redis_server.url, directory)
    worker.start()
    web.start()
    try:
        web.wait_serving(timeout=240)
        worker.wait_log("ready.", timeout=240)
        worker.wait_quiet(timeout=120)  # the shap warm-up thread has finished
        yield web, worker
    finally:
        web.stop()
        worker.stop()


def test_cancel_stops_a_job_running_in_a_celery_threads_worker(deployment, redis_server):
    web, worker = deployment
    client, thread = start_slow_job(web.url)
    started = time.monotonic()
    import redis

    keys = redis.Redis.from_url(redis_server.url)
    job_id = client.jobs[0]["job"].rpartition("~")[0]
    while not keys.exists(f"segx:job:{job_id}:started"):
        assert time.monotonic() - started < 120, worker.log_tail()
        time.sleep(0.05)
    time.sleep(1.0)  # into SHAP's evaluation batches
    figures = measure_cancel(client, worker.ps, worker, f"background job {job_id} {STOPPED_LOG}")
    print("celery worker", figures)
    assert figures["running"] > 0.1, figures  # the job was computing
    assert figures["stopped_itself"], (figures, worker.log_tail())  # it stopped at a progress report
    assert figures["after_stop"] < 0.2 * figures["running"], (figures, worker.log_tail())
    thread.join(timeout=60)
    client.close()


# -- embedded: the job is a thread of the web process (default), or a process forked from the forkserver ------------


@pytest.fixture(scope="module", params=["threads", "processes"])
def embedded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    directory = Path(tmp_path_factory.mktemp(f"embedded-{request.param}"))
    web = web_service("", directory, workers=1)
    web.env = {k: v for k, v in service_env("", directory / "web-state").items() if k != "REDIS_URL"}
    if request.param == "processes":
        web.env["SEGX_JOB_PROCESSES"] = "1"
    web.start()
    try:
        web.wait_serving(timeout=240)
        web.wait_quiet(timeout=120)  # the warm-up (or the forkserver) has loaded TensorFlow and compiled shap's code
        yield web, request.param
    finally:
        web.stop()


def test_cancel_stops_an_embedded_job_by_itself(embedded):
    embedded, runner = embedded
    client, thread = start_slow_job(embedded.url)
    job = client.jobs[0]["job"].rpartition("~")[0]
    if runner == "processes":
        process = psutil.Process(int(job))  # the job's own process
    else:
        [process] = embedded.ps.children()  # the gunicorn worker, whose thread runs the job
    time.sleep(4.0)  # the job loads the model (a job process), then computes
    figures = measure_cancel(client, process, embedded, f"background job {job} {STOPPED_LOG}")
    print(f"embedded {runner} job", figures)
    assert figures["running"] > 0.1, figures
    assert figures["stopped_itself"], (figures, embedded.log_tail())  # it stopped itself: it was not killed
    assert figures["after_stop"] < 0.2 * figures["running"], figures
    time.sleep(1.0)
    if runner == "processes":
        assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    else:
        assert process.is_running()  # the web process serves on
    thread.join(timeout=60)
    client.close()
