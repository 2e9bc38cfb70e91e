"""Cooperative cancel for background jobs: a cancelled job stops at its next progress report.

A job cannot be stopped from outside in every deployment: a Celery worker's *threads* pool cannot kill a thread, so
before this a cancelled job ran to its end in its thread, keeping the CPU busy for nobody. Instead, the background-
callback manager (`dashboard.jobs.background`, `dashboard.jobs.scaleout`):

1. runs each job inside `cancellable(is_cancelled)`, where `is_cancelled` reads the job's cancel marker (a Redis key
   named after the Celery task id, or a diskcache entry named after the job: its id in the thread pool, or its process
   id with `--job-processes`);
2. sets that marker when Dash asks it to terminate the job (the cancel button, or a newer question replacing it).

The job's progress reporter (`dashboard.callbacks.jobs.ProgressReporter`) calls `checkpoint()` at every report, and
the engine reports between batches (SHAP evaluation batches, IG and SmoothGrad chunks, each faithfulness method,
each sanity depth), so a cancelled job raises `JobCancelled` within about one batch. The manager then ends the job
without a result (`PreventUpdate`).

`JobCancelled` derives from `BaseException`, like `KeyboardInterrupt`, so the `except Exception` blocks that turn a
failing method into a failure card let it through.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)


class JobCancelled(BaseException):
    """Raised inside a job whose cancel marker is set."""


class _Check:
    """A throttled reader of one job's cancel marker."""

    def __init__(self, is_cancelled: Callable[[], bool], min_interval_s: float) -> None:
        self.is_cancelled, self.min_interval_s = is_cancelled, min_interval_s
        self._next = 0.0
        self.cancelled = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.cancelled and now >= self._next:
            self._next = now + self.min_interval_s
            try:
                self.cancelled = bool(self.is_cancelled())
            except Exception as err:  # the marker store is unreachable: keep computing
                log.debug("cancel marker unreadable: %s", err)
        return self.cancelled


_CURRENT: contextvars.ContextVar[_Check | None] = contextvars.ContextVar("segx_job_cancel", default=None)


@contextlib.contextmanager
def cancellable(is_cancelled: Callable[[], bool], min_interval_s: float = 0.05) -> Iterator[None]:
    """Within the block, `checkpoint()` raises `JobCancelled` once `is_cancelled()` is true (read at most every
    `min_interval_s` seconds)."""
    token = _CURRENT.set(_Check(is_cancelled, min_interval_s))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def checkpoint() -> None:
    """Raise `JobCancelled` if the running job was cancelled; nothing outside a `cancellable` block."""
    check = _CURRENT.get()
    if check is not None and check():
        raise JobCancelled


def run_cancellable(fn: Callable[..., Any], is_cancelled: Callable[[], bool], job: str, *args: Any,
                    **kwargs: Any) -> Any:  # fmt: skip
    """`fn(*args, **kwargs)` inside `cancellable(is_cancelled)`; a cancelled run ends without a result
    (`PreventUpdate`, which Dash stores as "no update") and is logged with `job`'s id."""
    from dash.exceptions import PreventUpdate

    begin = time.monotonic()
    try:
        with cancellable(is_cancelled):
            return fn(*args, **kwargs)
    except JobCancelled:
        log.warning("background job %s cancelled: stopped after %.1f s", job, time.monotonic() - begin)
        raise PreventUpdate from None
