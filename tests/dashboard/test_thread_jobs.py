"""The thread job manager (`dashboard.jobs.thread_jobs`) through Dash's own job function, and the phase-fair lock."""

from __future__ import annotations

import os
import threading
import time

import diskcache
import pytest
from dash import callback_context

from dashboard.jobs.progress import ProgressReporter
from dashboard.jobs.thread_jobs import ThreadJobManager
from explainers.backends.tf_isolation import SharedExclusiveLock


@pytest.fixture
def manager(tmp_path):
    return ThreadJobManager(diskcache.Cache(str(tmp_path / "jobs")), workers=2)


def _wait_result(manager: ThreadJobManager, key: str, job: str, timeout: float = 20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = manager.get_result(key, job)
        if result is not manager.UNDEFINED:
            return result
        if not manager.job_running(job):
            return manager.UNDEFINED
        time.sleep(0.02)
    raise AssertionError("job did not finish")


def test_a_job_runs_in_a_pool_thread_of_this_process_with_dash_context(manager):
    def fn(set_progress, value):
        set_progress((50, "50%", "half"))
        return {"pid": os.getpid(), "thread": threading.current_thread().name, "double": 2 * value,
                "triggered": callback_context.triggered_id}  # fmt: skip

    job_fn = manager.make_job_fn(fn, progress=True)
    job = manager.call_job_fn("k1", job_fn, [21], {"triggered_inputs": [{"prop_id": "a.b", "value": 1}]})
    result = _wait_result(manager, "k1", job)
    assert result["pid"] == os.getpid() and result["thread"].startswith("segx-job-")
    assert result["double"] == 42 and result["triggered"] == "a"
    assert not manager.job_running(job)


def test_cancel_stops_a_running_job_between_batches(manager):
    reports: list[int] = []

    def fn(set_progress):
        reporter = ProgressReporter(set_progress, 1, period=0.0)
        for batch in range(200):
            time.sleep(0.02)  # one "batch"
            reporter.report(batch / 200)
            reports.append(batch)
        return "finished"

    job = manager.call_job_fn("k2", manager.make_job_fn(fn, progress=True), [], {})
    while len(reports) < 5:
        time.sleep(0.01)
    manager.terminate_job(job)
    result = _wait_result(manager, "k2", job)
    assert result == {"_dash_no_update": "_dash_no_update"}  # ended without its result
    assert 5 <= len(reports) < 200


def test_two_jobs_run_concurrently_and_a_failing_job_reports_its_error(manager):
    barrier = threading.Barrier(2, timeout=10)

    def meet(name):
        barrier.wait()  # both must be running at once, or this raises
        return name

    def fail():
        raise ValueError("broken input")

    fn = manager.make_job_fn(meet, progress=False)
    jobs = [manager.call_job_fn(f"m{k}", fn, [f"job{k}"], {}) for k in range(2)]
    assert [_wait_result(manager, f"m{k}", j) for k, j in enumerate(jobs)] == ["job0", "job1"]
    bad = manager.call_job_fn("bad", manager.make_job_fn(fail, progress=False), [], {})
    error = _wait_result(manager, "bad", bad)
    assert "broken input" in error["background_callback_error"]["msg"]
    again = manager.call_job_fn("again", manager.make_job_fn(lambda: 7, progress=False), [], {})
    assert _wait_result(manager, "again", again) == 7  # the pool keeps working


def test_a_shared_request_waits_for_at_most_one_exclusive_section():
    lock, order = SharedExclusiveLock(), []
    first_in = threading.Event()

    def exclusive(name):
        with lock.exclusive():
            first_in.set()
            time.sleep(0.3)
            order.append(name)

    def shared():
        with lock.shared():
            order.append("shared")

    a = threading.Thread(target=exclusive, args=("A",))
    a.start()
    first_in.wait(5)
    b = threading.Thread(target=exclusive, args=("B",))
    b.start()
    time.sleep(0.05)  # B is waiting behind A
    s = threading.Thread(target=shared)
    s.start()
    for t in (a, b, s):
        t.join(10)
    assert order == ["A", "shared", "B"]
