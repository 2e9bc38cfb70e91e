"""Embedded background jobs in threads of the web process: the default without Redis (`--job-processes` opts out).

A job in a child process (`dashboard.jobs.background.SegxDiskcacheManager`, `--job-processes`) loads the model and
TensorFlow a second time: with the demo model the server, the forkserver and one job together reach ~1.8 GB PSS. A
job in a thread uses the web process's adapter (`resources.get_adapter` is one per process): no second model, no
second TensorFlow, and no process start or model load before the first batch.

`ThreadJobManager` is Dash's `DiskcacheManager` with `call_job_fn` replaced, so every part of Dash's protocol stays
as it is: the job's result, progress and `set_props` go through the same diskcache entries a job process writes, and
the renderer polls them the same way. Dash runs the job function inside a copy of the job thread's context and sets
its callback context there (`dash.background_callback.managers.diskcache_manager._make_job_fn`), so
`callback_context`, `set_props` and `set_progress` work in a thread as they do in a process (contextvars, not
process globals).

- **A bounded pool.** At most `workers` jobs run at once (default: the core count, at most 4; `--job-threads`), in
  daemon threads named `segx-job-<n>`, started on the first job. A burst of jobs waits in a first-in, first-out queue
  instead of thrashing the cores; a queued job counts as running for Dash, so its page keeps polling and shows its
  progress default. Every running job may use up to the memory budget (`explainers.memory`) for its batches.
- **Job ids.** Each job gets a random id. Its state (queued, running, done), with the owning process's pid, is also
  kept in the job cache, so a poll or a cancel that reaches another web worker of the same host (`gunicorn -w 2`
  shares one job cache) sees it; a job whose owning process is gone no longer counts as running.
- **Cancel.** A thread cannot be killed from outside: Python has no way to stop another thread. So cancel is
  cooperative only (`dashboard.jobs.cancellation`): `terminate_job` writes the job's cancel marker into the job
  cache; the job stops at its next progress report, which the engine makes between batches (SHAP evaluation
  batches, IG and SmoothGrad chunks, each faithfulness map, each sanity depth and the methods within it), and ends
  without a result; a job still queued is dropped when its turn comes. A job stuck inside one long call runs to
  its end; the process manager (`--job-processes`) kills such a job `cancel_grace_s` after its cancel instead.
- **Sharing TensorFlow.** Jobs and requests share one TensorFlow. DeepSHAP patches TensorFlow's gradient registry
  while it runs; `explainers.backends.tf_isolation` undoes that after every run, failed or not, under an exclusive
  `GRADIENT_LOCK` that every other method holds shared: a fast request arriving during a DeepSHAP run waits for that
  run (and, the lock being phase-fair, for no DeepSHAP run that asked after it).
- **Memory.** The jobs' working sets are the web process's: `dashboard.jobs.heap` caps glibc's malloc arenas at
  start-up and hands a finished job's freed memory back to the system.
- **Failures.** A job that raises stores its error as Dash does (`background_callback_error`, shown by the
  callback's `on_error`), and the worker thread takes the next job. A crash of the whole process (a segfault in a
  native library, the kernel's out-of-memory kill) takes the web process with it: `--job-processes` isolates jobs in
  child processes for deployments that need that.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import queue
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dash import DiskcacheManager

from dashboard.config import AppConfig
from dashboard.jobs.background import JOB_EXPIRE_S, job_cache, with_cancel_marker
from dashboard.jobs.heap import cap_arenas, release_freed

log = logging.getLogger(__name__)

STATE_PREFIX = "segx-thread-job-"
CANCEL_PREFIX = "segx-thread-cancel-"
MAX_DEFAULT_WORKERS = 4
QUEUED, RUNNING, DONE = "queued", "running", "done"

# The id of the job the current thread runs (set by the pool around Dash's job function).
_JOB_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("segx_thread_job", default=None)


def default_workers() -> int:
    """The pool size when none is configured: the cores this process may run on (its CPU affinity, which a
    container's cpuset limits), at most `MAX_DEFAULT_WORKERS`."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


def current_job() -> str | None:
    """The id of the thread job running in this context, or None outside one."""
    return _JOB_ID.get()


@dataclass
class _Job:
    id: str
    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]


class ThreadJobManager(DiskcacheManager):
    """Dash's `DiskcacheManager` that runs each job in a thread of a bounded pool in this process (module docstring).

    Args:
        cache: the diskcache.Cache of job results, progress and job states.
        workers: the most jobs run at once; more wait in a queue (default `default_workers()`).
        expire: seconds a finished job's state and a cancel marker are kept.
    """

    def __init__(self, cache: Any, *, workers: int | None = None, expire: int | None = 3600) -> None:
        self.workers = int(workers) if workers else default_workers()
        if self.workers < 1:
            raise ValueError(f"A job pool needs at least one thread, not {workers}.")
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._jobs: dict[str, str] = {}  # job id -> QUEUED / RUNNING, for this process's jobs
        self._lock = threading.Lock()
        super().__init__(cache, expire=expire)

    # -- the job side ----------------------------------------------------------------------------------------------
    def make_job_fn(self, fn: Callable[..., Any], progress: Any, key: str | None = None) -> Any:
        return super().make_job_fn(with_cancel_marker(fn, self.handle, CANCEL_PREFIX, current_job), progress, key)

    def _worker(self) -> None:
        while True:
            job = self._queue.get()
            try:
                contextvars.Context().run(self._run, job)
            except BaseException:  # never let one job end the worker thread
                log.exception("background job %s: the job runner failed", job.id)

    def _run(self, job: _Job) -> None:
        if self._cancelled(job.id):
            log.info("background job %s was cancelled while queued; skipped", job.id)
            self._finish(job, store_error=None)
            return
        self._set_state(job, RUNNING)
        _JOB_ID.set(job.id)
        error: str | None = None
        try:
            job.fn(job.key, self._make_progress_key(job.key), *job.args)
        except BaseException as err:  # Dash's job function stores an Exception itself; this is what escaped it
            log.exception("background job %s failed outside its callback", job.id)
            error = f"The background job failed: {type(err).__name__}: {err}"
            if not isinstance(err, Exception):
                error += "\n" + traceback.format_exc()
        self._finish(job, store_error=error)

    def _finish(self, job: _Job, store_error: str | None) -> None:
        if store_error is not None and self.handle.get(job.key) is None:
            with contextlib.suppress(Exception):
                self.handle.set(job.key, {"background_callback_error": {"msg": store_error, "tb": ""}})
        self._set_state(job, DONE)
        with self._lock:
            self._jobs.pop(job.id, None)
        release_freed()  # the job's freed working set goes back to the system (`dashboard.jobs.heap`)

    def _cancelled(self, job: str) -> bool:
        return self.handle.get(CANCEL_PREFIX + job) is not None

    def _set_state(self, job: _Job, state: str) -> None:
        with self._lock:
            if state != DONE:
                self._jobs[job.id] = state
        record = {"state": state, "pid": os.getpid(), "key": job.key}
        self.handle.set(STATE_PREFIX + job.id, record, expire=self.expire)

    # -- the web side ----------------------------------------------------------------------------------------------
    def call_job_fn(self, key: str, job_fn: Any, args: Any, context: Any) -> str:
        """Queue the job for the pool; returns its id at once."""
        job = _Job(id=uuid.uuid4().hex, key=key, fn=job_fn, args=(args, context))
        self._set_state(job, QUEUED)
        self._ensure_threads()
        self._queue.put(job)
        return job.id

    def _ensure_threads(self) -> None:
        with self._lock:
            while len(self._threads) < self.workers:
                thread = threading.Thread(target=self._worker, name=f"segx-job-{len(self._threads)}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def job_running(self, job: Any) -> bool:
        """Whether `job` is queued or running (in this process or another one sharing the job cache), or finished
        with a result nobody has collected yet (so a poll that read no result just before it was stored polls once
        more instead of ending the job with no update)."""
        if job is None:
            return False
        job = str(job)
        with self._lock:
            if job in self._jobs:
                return True
        record = self.handle.get(STATE_PREFIX + job)
        if not isinstance(record, dict):
            return False
        if record.get("state") == DONE:
            return self.handle.get(record.get("key")) is not None
        return record.get("pid") != os.getpid() and _process_alive(record.get("pid"))

    def terminate_job(self, job: Any) -> None:
        """Cancel `job`: its cancel marker stops it at its next progress report (or before it starts, if queued).
        A thread cannot be killed, so a job stuck in one long call finishes that call first. For a finished job
        (Dash calls this once it collected the result) only its state is dropped."""
        if job is None:
            return
        job = str(job)
        state_key = STATE_PREFIX + job
        record = self.handle.get(state_key)
        if isinstance(record, dict) and record.get("state") == DONE:
            self.handle.delete(state_key)
            return
        if record is None and not self.job_running(job):
            return
        self.handle.set(CANCEL_PREFIX + job, 1, expire=self.expire)

    def terminate_unhealthy_job(self, job: Any) -> bool:
        return False  # a thread of this process is never orphaned the way a job process can be


def thread_manager(config: AppConfig) -> ThreadJobManager:
    """The embedded default: job results, progress and job states in a diskcache directory, jobs in a pool of
    `config.job_threads` threads (None: `default_workers()`)."""
    cap_arenas()  # before the job threads start: jobs in threads reuse each other's freed memory (dashboard.jobs.heap)
    return ThreadJobManager(job_cache(config), workers=config.job_threads, expire=JOB_EXPIRE_S)


def _process_alive(pid: Any) -> bool:
    try:
        import psutil

        process = psutil.Process(int(pid))
        return process.status() != psutil.STATUS_ZOMBIE
    except (ImportError, ValueError, TypeError):
        return False
    except Exception:  # psutil.NoSuchProcess, AccessDenied
        return False
