"""The one progress protocol: `progress(fraction, message)`, fraction in [0, 1] of the work being reported on.

Every long-running piece of the engine (a method's batches, `explain` over several methods, the trust metrics) and of
the dashboard's use cases reports through it. The dashboard's background jobs turn it into Dash's progress outputs
with one adapter, `dashboard.jobs.progress.ProgressReporter`, which is also where a job notices it was cancelled.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """A progress callback that ignores its reports."""
