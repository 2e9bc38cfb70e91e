"""Background-callback managers: which one runs the jobs, and the process-job manager (`--job-processes`).

The manager is built by a factory `(AppConfig) -> manager`. `default_manager` picks:

- with `AppConfig.redis_url`, the Celery + Redis manager of `dashboard.jobs.scaleout` (jobs on Celery workers);
- else, by default, `dashboard.jobs.thread_jobs.ThreadJobManager`: each job runs in a thread of the web process, on
  the model the web process already holds (no second TensorFlow, no process start or model load per job);
- with `AppConfig.job_processes` (`--job-processes`), `SegxDiskcacheManager` below: each job in a child process.

Callers may pass any other factory to `create_app`, and the callbacks never know which one runs their jobs.

Process jobs: Dash's `DiskcacheManager` starts every job as a `multiprocess.Process`. With the default *fork* start
method, a child forked from a web process in which TensorFlow has already run an op (with intra-op threads > 1) hangs:
the child never finishes. So the process manager switches `multiprocess` to *forkserver*: a clean server process,
started once at app start-up, imports TensorFlow, shap, Dash and the job code (imports only, no TF op runs there),
compiles shap's numba code (`dashboard.jobs.preload`) and forks a child per job. A job then costs ~0.2-0.4 s of
process overhead plus loading the model in the child (`resources.get_adapter`), and the child holds its own copy of
the model and TensorFlow while it runs.

Cancel is cooperative with every manager (`dashboard.jobs.cancellation`): `terminate_job` writes the job's cancel
marker into the job cache; the job stops at its next progress report and exits without a result. A process job that
has not stopped `cancel_grace_s` seconds later (stuck in one long call) is killed, as Dash's own manager does at once;
a thread cannot be killed, so a thread job stuck in one call finishes that call first.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from dash import DiskcacheManager

from dashboard.config import AppConfig
from dashboard.jobs.cancellation import run_cancellable

log = logging.getLogger(__name__)

# Modules the forkserver imports once, so that each job child starts with them loaded.
FORKSERVER_PRELOAD = (
    "numpy", "tensorflow", "keras", "shap", "dash", "explainers", "dashboard.callbacks.jobs", "dashboard.jobs.preload",
    "explainers.faithfulness", "explainers.sanity", "explainers.agreement", "dashboard.callbacks.trust",
)  # fmt: skip

ManagerFactory = Callable[[AppConfig], Any]


def use_forkserver(preload: Sequence[str] = FORKSERVER_PRELOAD, start: bool = True) -> None:
    """Make `multiprocess` start processes from a forkserver preloaded with `preload`; optionally start it now.

    Idempotent. Starting the server early (it imports TensorFlow, ~5 s, in its own process) keeps that cost off the
    first job's path.
    """
    import multiprocess
    from multiprocess import forkserver

    if multiprocess.get_start_method(allow_none=True) != "forkserver":
        multiprocess.set_start_method("forkserver", force=True)
    multiprocess.set_forkserver_preload(list(preload))
    if start:
        forkserver.ensure_running()


CANCEL_PREFIX = "segx-cancel-"


def with_cancel_marker(
    fn: Callable[..., Any], cache: Any, prefix: str, job_of: Callable[[], str | None], *, clear_stale: bool = False
) -> Callable[..., Any]:
    """`fn` as a background job that stops (`run_cancellable`) once `cache` holds the key `prefix + job_of()`, the
    cancel marker a manager's `terminate_job` writes. `clear_stale`: first delete a marker left by an earlier job of
    the same id (a reused process id). Outside a job (`job_of()` None: a test calling the function directly), plain
    `fn`.

    It lives here, not in `dashboard.jobs.cancellation`: a process job's function is pickled by value for the
    forkserver child, module globals included, and that module's ContextVar cannot be pickled."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        job = job_of()
        if job is None:
            return fn(*args, **kwargs)
        marker = prefix + job
        if clear_stale:
            cache.delete(marker)
        return run_cancellable(fn, lambda: cache.get(marker) is not None, job, *args, **kwargs)

    return run


def process_job_id() -> str:
    """A job process's id: its process id (what `SegxDiskcacheManager.call_job_fn` returns as the job)."""
    return str(os.getpid())


class SegxDiskcacheManager(DiskcacheManager):
    """Dash's `DiskcacheManager` with cooperative cancel (module docstring); the job id is the job's process id."""

    def __init__(self, cache: Any, *, expire: int | None = 3600, cancel_grace_s: float = 30.0) -> None:
        self.cancel_grace_s = cancel_grace_s
        super().__init__(cache, expire=expire)

    def make_job_fn(self, fn: Callable[..., Any], progress: Any, key: str | None = None) -> Any:
        job = with_cancel_marker(fn, self.handle, CANCEL_PREFIX, process_job_id, clear_stale=True)
        return super().make_job_fn(job, progress, key)

    def terminate_job(self, job: Any) -> None:
        """Ask job process `job` to stop (its cancel marker); kill it if it still runs `cancel_grace_s` later."""
        import psutil

        if job is None:
            return
        try:
            process = psutil.Process(int(job))
        except (psutil.NoSuchProcess, ValueError):
            return
        self.handle.set(CANCEL_PREFIX + str(int(job)), 1, expire=max(60, 4 * self.cancel_grace_s))

        def kill_if_running() -> None:
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    kill()

        def kill() -> None:  # still running (is_running also tells a reused pid apart)
            log.warning("background job %s did not stop within %.0f s of its cancel; killed", job,
                        self.cancel_grace_s)  # fmt: skip
            for proc in [*process.children(recursive=True), process]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()

        timer = threading.Timer(self.cancel_grace_s, kill_if_running)
        timer.daemon = True
        timer.start()


JOB_EXPIRE_S = 3600  # a job's result, progress and cancel marker are kept this long


def job_cache(config: AppConfig) -> Any:
    """The diskcache of an embedded manager's job results, progress and markers (`config.jobs_path`)."""
    import diskcache

    os.makedirs(config.jobs_path, exist_ok=True)
    return diskcache.Cache(config.jobs_path)


def diskcache_manager(config: AppConfig) -> Any:
    """Process jobs (`--job-processes`): job results in a diskcache directory, jobs started from the forkserver."""
    use_forkserver()
    return SegxDiskcacheManager(job_cache(config), expire=JOB_EXPIRE_S)


def runs_jobs_in_threads(config: AppConfig) -> bool:
    """Whether `default_manager` runs this app's background jobs in threads of the web process."""
    return not config.redis_url and not config.job_processes


def default_manager(config: AppConfig) -> Any:
    """Celery + Redis with `config.redis_url` (`scaleout.celery_manager`); process jobs with `config.job_processes`
    (`diskcache_manager`); else thread jobs in the web process (`thread_jobs.thread_manager`)."""
    if config.redis_url:
        from dashboard.jobs.scaleout import celery_manager

        return celery_manager(config)
    if config.job_processes:
        return diskcache_manager(config)
    from dashboard.jobs.thread_jobs import thread_manager

    return thread_manager(config)
