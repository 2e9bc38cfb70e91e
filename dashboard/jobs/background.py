"""Background-callback managers, and a process start method that is safe after TensorFlow ran.

Dash's `DiskcacheManager` starts every job as a `multiprocess.Process`. With the default *fork* start method, a child
forked from a web process in which TensorFlow has already run an op (with intra-op threads > 1) hangs: the child never
finishes. So the embedded default switches `multiprocess` to *forkserver*: a clean server process, started once at app
start-up, imports TensorFlow, shap, Dash and the job code (imports only, no TF op runs there), compiles shap's numba
code (`dashboard.jobs.preload`) and forks a child per job. A job then costs ~0.2-0.4 s of process overhead plus loading
the model in the child (`resources.get_adapter`).

Cancel is cooperative here too (`dashboard.jobs.cancellation`): `SegxDiskcacheManager.terminate_job` writes the job's
cancel marker into the job cache; the job stops at its next progress report and exits without a result. A job that
has not stopped `cancel_grace_s` seconds later (stuck in one long call) is killed, as Dash's own manager does at once.

The manager is built by a factory `(AppConfig) -> manager`. `default_manager` picks the embedded default above, or,
with `AppConfig.redis_url`, the Celery + Redis manager of `dashboard.jobs.scaleout` (jobs on Celery workers);
callers may pass any other factory to `create_app`, and the callbacks never know which one runs their jobs.
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


def diskcache_manager(config: AppConfig) -> Any:
    """The embedded default: job results in a diskcache directory, jobs started from the forkserver."""
    import diskcache

    use_forkserver()
    os.makedirs(config.jobs_path, exist_ok=True)
    return SegxDiskcacheManager(diskcache.Cache(config.jobs_path), expire=3600)


def default_manager(config: AppConfig) -> Any:
    """Celery + Redis when `config.redis_url` is set (`scaleout.celery_manager`), else `diskcache_manager`."""
    if config.redis_url:
        from dashboard.jobs.scaleout import celery_manager

        return celery_manager(config)
    return diskcache_manager(config)
