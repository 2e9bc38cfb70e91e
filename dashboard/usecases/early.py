"""An early start for a new question's fast methods, joined by the question callback (single flight, one process).

A box drag reaches the server twice: first the region callback (it turns the drawn box into the region and picks the
target), then, after the browser has applied the region, the question callback that computes the fast methods. The
gap is ~40-60 ms of browser work at 512x512 during which the server is idle. The region callback therefore starts the
fast methods' computation as soon as it knows the question (`EarlyStarts.start`, one worker thread), and the
question callback joins that run (`EarlyStarts.join`) instead of computing again: it then finds the results in the
store. A run that fails is simply joined as finished: the question callback computes again and reports the error
itself. A newer early start of the same session cancels an older one still queued (a user dragging fast).

Only for the embedded deployment: with several web processes (Redis), the question callback may reach another
process, which would compute the same question a second time on the same cores.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import CancelledError, Future
from typing import Any

from dashboard.state.store import content_key


def run_key(session: str, question: Mapping[str, Any], methods: Sequence[str]) -> str:
    """The identity of one computation: a session's question and the methods computed for it."""
    return content_key(session, sorted(question.items()), list(methods))


class EarlyStarts:
    """Background runs keyed by `run_key`, one at a time in one worker thread (a second concurrent pass would only
    share the cores with the first; one long-lived thread also keeps one malloc arena, where a thread per run grew the
    server's RSS by ~160 MB at 512x512). A worker stopped from outside (dash's test runner raises SystemExit in the
    threads it did not start) fails the run it held and is replaced at once if runs are queued, else by the next
    `start`; a run it took and lost is still queued, so its `join` cancels it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
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
            self._queue.put((future, work))
            self._ensure_worker()
        future.add_done_callback(lambda _: self._forget(key, session))
        if older is not None:
            older.cancel()  # only a queued run (a running one finishes); outside the lock: it calls _forget

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._serve, name="segx-early", daemon=True)
            self._worker.start()

    def _serve(self) -> None:
        while True:
            item = None
            try:
                item = self._queue.get()
                future, work = item
                if future.set_running_or_notify_cancel():  # False: cancelled while it was queued
                    future.set_result(work())
            except BaseException as err:  # a failure is the joiner's to report
                if item is not None and not item[0].done():
                    item[0].set_exception(err)
                if not isinstance(err, Exception):  # stopped from outside: hand over to another worker
                    with self._lock:
                        self._worker = None
                        if not self._queue.empty():
                            self._ensure_worker()
                    return

    def _forget(self, key: Hashable, session: str) -> None:
        with self._lock:
            self._runs.pop(key, None)
            if self._latest.get(session) == key:
                del self._latest[session]

    def join(self, key: Hashable) -> bool:
        """Wait for the run of `key` if it is running; True if it finished without an error (its results are then
        stored). False if there was none, it failed, or it had not started yet: a queued run (the worker busy with an
        older question) is cancelled, and the caller computes at once rather than wait its turn."""
        with self._lock:
            future = self._runs.get(key)
        if future is None or future.cancel():
            return False
        try:
            future.result()
        except (CancelledError, Exception):  # the caller computes again and reports a failure itself
            return False
        return True


EARLY = EarlyStarts()
