"""Background jobs' progress: the engine's progress protocol (`explainers.progress`) onto Dash's progress outputs.

A Dash background callback reports with `set_progress((percent, label, text))` (the bar's value, its label and the
line under it). Every job in the app (slow methods, trust metrics, a model upload) reports through one
`ProgressReporter` over its steps: `start(step, label)` for each step, `report(fraction, message)` within it (what the
engine's methods call), `note(text)` between steps and `finish()`. Each report is also the job's cancellation point.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dashboard.jobs.cancellation import checkpoint

SetProgress = Callable[[tuple[Any, ...]], None]
PROGRESS_PERIOD_S = 0.25


class ProgressReporter:
    """Maps per-method progress to the overall bar, throttled to one report per `period` seconds."""

    def __init__(self, set_progress: SetProgress, total: int, period: float = PROGRESS_PERIOD_S) -> None:
        self.set_progress, self.total, self.period = set_progress, max(total, 1), period
        self.index, self.label, self._last = 0, "", 0.0

    def start(self, index: int, label: str) -> None:
        """A new method begins."""
        self.index, self.label = index, label
        self.report(0.0, "starting", force=True)

    def note(self, text: str, percent: int = 0) -> None:
        """A message outside the steps (loading the model, ...), at `percent`."""
        self.set_progress((percent, f"{percent}%" if percent else "", text))

    def finish(self) -> None:
        """The whole job is done."""
        self.set_progress((100, "100%", "Done"))

    def report(self, fraction: float, message: str = "", force: bool = False) -> None:
        """Report `fraction` of the current method. Also the job's cancellation point: raises
        `dashboard.jobs.cancellation.JobCancelled` once the job was cancelled (the engine reports between batches)."""
        checkpoint()
        now = time.monotonic()
        if not force and now - self._last < self.period:
            return
        self._last = now
        overall = (self.index + min(max(float(fraction), 0.0), 1.0)) / self.total
        percent = round(100 * overall)
        text = f"{self.label} ({self.index + 1}/{self.total})" + (f": {message}" if message else "")
        self.set_progress((percent, f"{percent}%", text))
