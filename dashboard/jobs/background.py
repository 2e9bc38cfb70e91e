"""Background-callback managers, and a process start method that is safe after TensorFlow ran.

Dash's `DiskcacheManager` starts every job as a `multiprocess.Process`. With the default *fork* start method, a child
forked from a web process in which TensorFlow has already run an op (with intra-op threads > 1) hangs: the child never
finishes. So the embedded default switches `multiprocess` to *forkserver*: a clean server process, started once at app
start-up, imports TensorFlow, shap, Dash and the job code (imports only, no TF op runs there), compiles shap's numba
code (`dashboard.jobs.preload`) and forks a child per job. A job then costs ~0.2-0.4 s of process overhead plus loading
the model in the child (`resources.get_adapter`).

The manager is built by a factory `(AppConfig) -> manager`. `default_manager` picks the embedded default above, or,
with `AppConfig.redis_url`, the Celery + Redis manager of `dashboard.jobs.scaleout` (jobs on Celery workers);
callers may pass any other factory to `create_app`, and the callbacks never know which one runs their jobs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from dashboard.config import AppConfig

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


def diskcache_manager(config: AppConfig) -> Any:
    """The embedded default: job results in a diskcache directory, jobs started from the forkserver."""
    import diskcache
    from dash import DiskcacheManager

    use_forkserver()
    os.makedirs(config.jobs_path, exist_ok=True)
    return DiskcacheManager(diskcache.Cache(config.jobs_path), expire=3600)


def default_manager(config: AppConfig) -> Any:
    """Celery + Redis when `config.redis_url` is set (`scaleout.celery_manager`), else `diskcache_manager`."""
    if config.redis_url:
        from dashboard.jobs.scaleout import celery_manager

        return celery_manager(config)
    return diskcache_manager(config)
