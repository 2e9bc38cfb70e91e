"""An early start for a new question's fast methods, joined by the question callback (single flight, one process).

A box drag reaches the server twice: first the region callback (it turns the drawn box into the region and picks the
target), then, after the browser has applied the region, the question callback that computes the fast methods. The
gap is ~40-60 ms of browser work at 512x512 during which the server is idle. The region callback therefore starts the
fast methods' computation as soon as it knows the question (`EarlyStarts.start`, in the background), and the
question callback joins that run (`EarlyStarts.join`) instead of computing again: it then finds the results in the
store. A run that fails is simply joined as finished: the question callback computes again and reports the error
itself. A newer early start of the same session cancels an older one still queued (a user dragging fast).

Only for the embedded deployment: with several web processes (Redis), the question callback may reach another
process, which would compute the same question a second time on the same cores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import CancelledError, Future
from typing import Any

from dashboard.state.store import content_key


def run_key(session: str, question: Mapping[str, Any], methods: Sequence[str]) -> str:
    """The identity of one computation: a session's question and the methods computed for it."""
    return content_key(session, sorted(question.items()), list(methods))


class EarlyStarts:
    """Background runs keyed by `run_key`, one at a time (a second concurrent pass would only share the cores with
    the first). Each run has its own short-lived daemon thread that waits for its turn, so no long-lived worker can be
    lost (a test harness that stops the threads it did not start, say) with runs still queued behind it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turn = threading.Lock()  # held by the run in progress
        self._runs: dict[Hashable, Future] = {}
        self._latest: dict[str, Hashable] = {}  # session -> key of its newest early start

    def start(self, key: Hashable, session: str, work: Callable[[], Any]) -> None:
        """Run `work` in the background under `key` (nothing if a run of `key` is already queued or running); an
        older run of `session` still queued is cancelled."""
        with self._lock:
            if key in self._runs:
                return
            older = self._runs.get(self._latest.get(session))
            future: Future = Future()
            self._runs[key], self._latest[session] = future, key
        future.add_done_callback(lambda _: self._forget(key, session))
        if older is not None:
            older.cancel()  # only a queued run (a running one finishes); outside the lock: it calls _forget
        threading.Thread(target=self._run, args=(future, work), name="segx-early", daemon=True).start()

    def _run(self, future: Future, work: Callable[[], Any]) -> None:
        try:
            with self._turn:
                if future.set_running_or_notify_cancel():  # False: cancelled while it waited for its turn
                    future.set_result(work())
        except BaseException as err:  # the joiner's to report; a thread stopped from outside (SystemExit), even
            if not future.done():  # while it waited, leaves no run pending forever (the thread ends here anyway)
                future.set_exception(err)

    def _forget(self, key: Hashable, session: str) -> None:
        with self._lock:
            self._runs.pop(key, None)
            if self._latest.get(session) == key:
                del self._latest[session]

    def join(self, key: Hashable) -> bool:
        """Wait for the run of `key` if one is queued or running; True if one finished without an error (its results
        are then stored), False if there was none, it was cancelled or it failed."""
        with self._lock:
            future = self._runs.get(key)
        if future is None:
            return False
        try:
            future.result()
        except (CancelledError, Exception):  # the caller computes again and reports a failure itself
            return False
        return True


EARLY = EarlyStarts()
