"""Scale-out on Celery + Redis: the Celery app, and a `CeleryManager` that tells the user when a job is lost.

With `REDIS_URL` configured, background callbacks go through Dash's `CeleryManager`: Redis is the broker and the
result backend, and Celery workers (`celery -A dashboard.jobs.celery_worker worker`) run the jobs. Plain `CeleryManager`
polls forever when a job will never finish (its worker was killed mid-job, no worker is running, Redis is down): the
browser would show a spinner for ever. `SegxCeleryManager` closes these holes:

- Every job writes a heartbeat key to Redis every `heartbeat_s` seconds, with a time to live of `lost_after_s`. A job
  that started (Celery's STARTED state is tracked) and whose heartbeat expired lost its worker.
- A job that no worker picked up within `queue_timeout_s` is given up (and marked so that a worker that comes back
  later skips it instead of running it for nobody).
- A job that cannot be submitted, or polled, because Redis is unreachable.

Cancel (the cancel button, or a newer question replacing a running job) sets the job's cancel key in Redis; the job,
run inside `jobs.cancellation.cancellable`, stops at its next progress report (within about one batch) and ends
without a result; the job is also revoked, so a worker skips it if it was still queued. (Celery's own terminate
cannot stop a task in the threads pool: it fails with "does not implement kill_job".)

In each case the poll answers with a background-callback error carrying a readable message, which the job
callback's `on_error` handler (`dashboard.callbacks.jobs`) shows instead of the spinner. Messages are the `*_MESSAGE`
constants below.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dash import CeleryManager
from dash.exceptions import PreventUpdate

from dashboard.config import AppConfig
from dashboard.jobs.cancellation import run_cancellable

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

KEY_PREFIX = "segx:job:"
UNSUBMITTED = "unsubmitted-"
LOST_MESSAGE = (
    "The background worker running this job stopped before finishing it (it crashed or was shut down). "
    "Run the method again to send it to a running worker."
)
QUEUE_MESSAGE = (
    "No background worker picked up the job within {seconds:.0f} s. Are the Celery workers running? "
    "(See “Running on several machines” in the README.)"
)
REDIS_MESSAGE = (
    "Background jobs are unavailable: the job queue (Redis) cannot be reached. The fast methods keep working; "
    "try the slow ones again later."
)


def _redis_errors() -> tuple[type[BaseException], ...]:
    import kombu.exceptions
    import redis

    return (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError, OSError)


@functools.lru_cache(maxsize=4)
def celery_app(redis_url: str) -> Celery:
    """The Celery app of a deployment: Redis as broker and result backend; one per process and URL.

    Workers default to the *threads* pool (no fork after TensorFlow ran; the model loads lazily in the worker) and
    take one job at a time per thread. Redis calls fail fast instead of Celery's default 20 retries, so a Redis outage
    turns into a message within seconds.
    """
    from celery import Celery

    fail_fast = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
    app = Celery("segxplain", broker=redis_url, backend=redis_url)
    app.conf.update(
        task_track_started=True,  # STARTED in the result backend: a job that started and stopped beating is lost
        task_acks_late=False,  # a job whose worker died is reported, not re-run behind the user's back
        worker_pool="threads",
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        broker_transport_options={"socket_connect_timeout": 2, "socket_timeout": 5, "visibility_timeout": 3600},
        task_publish_retry_policy=fail_fast,
        redis_socket_connect_timeout=2,
        redis_socket_timeout=5,
        result_backend_transport_options={"retry_policy": fail_fast},
        result_expires=3600,
    )  # fmt: skip
    return app


def error_result(message: str) -> dict[str, Any]:
    """What a background callback stores when it raised: Dash turns it into a `BackgroundCallbackError`."""
    return {"background_callback_error": {"msg": message, "tb": ""}}


class SegxCeleryManager(CeleryManager):
    """Dash's `CeleryManager` with job heartbeats, a queue timeout and Redis-outage handling (module docstring)."""

    def __init__(
        self,
        celery: Celery,
        *,
        expire: int | None = 3600,
        heartbeat_s: float = 2.0,
        lost_after_s: float = 10.0,
        queue_timeout_s: float = 120.0,
    ) -> None:
        self.heartbeat_s, self.lost_after_s, self.queue_timeout_s = heartbeat_s, lost_after_s, queue_timeout_s
        super().__init__(celery, expire=expire)

    # -- Redis keys of one job -----------------------------------------------------------------------------------
    @staticmethod
    def _keys(job: str) -> tuple[str, str, str, str]:
        base = KEY_PREFIX + job
        return base + ":queued", base + ":started", base + ":beat", base + ":abandoned"

    @staticmethod
    def _cancel_key(job: str) -> str:
        return KEY_PREFIX + job + ":cancel"

    @property
    def redis(self) -> Any:
        """The result backend's redis-py client."""
        return self.handle.backend.client

    # -- worker side ---------------------------------------------------------------------------------------------
    def make_job_fn(self, fn: Callable[..., Any], progress: Any, key: str | None = None) -> Any:
        return super().make_job_fn(self._with_heartbeat(fn), progress, key)

    def _with_heartbeat(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn`, run in a Celery task, skipped if the web tier gave it up, beating while it runs."""

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            from celery import current_task

            job = current_task.request.id if current_task else None
            if not job:
                return fn(*args, **kwargs)
            _, started, beat, abandoned = self._keys(job)
            client = self.redis
            if client.get(abandoned):
                log.info("job %s was given up by the web tier before it started; skipped", job)
                raise PreventUpdate
            ttl = max(1, round(self.lost_after_s))
            client.set(beat, "1", ex=ttl)
            client.set(started, "1", ex=24 * 3600)
            stop = threading.Event()

            def beating() -> None:
                while not stop.wait(self.heartbeat_s):
                    try:
                        client.set(beat, "1", ex=ttl)
                    except Exception as err:  # Redis away: the web tier will tell the user; keep computing
                        log.warning("job %s: heartbeat failed: %s", job, err)

            thread = threading.Thread(target=beating, name=f"segx-heartbeat-{job[:8]}", daemon=True)
            thread.start()
            cancel_key = self._cancel_key(job)
            try:
                return run_cancellable(fn, lambda: bool(client.exists(cancel_key)), job, *args, **kwargs)
            finally:
                stop.set()  # the beat key expires on its own: deleting it could race the result being written

        return run

    # -- web side ------------------------------------------------------------------------------------------------
    def call_job_fn(self, key: str, job_fn: Any, args: Any, context: Any) -> str:
        try:
            job = super().call_job_fn(key, job_fn, args, context)
        except Exception as err:  # kombu / redis errors, or Celery's RuntimeError when its result consumer cannot
            # resubscribe: either way the job is not queued; the poll reports it (`get_result`)
            log.warning("could not submit a background job: %s", err)
            return UNSUBMITTED + uuid.uuid4().hex
        try:
            self.redis.set(self._keys(job)[0], repr(time.time()), ex=24 * 3600)
        except _redis_errors():
            pass
        return job

    def job_lost(self, job: str) -> str | None:
        """Why `job` will never deliver a result (a message), or None while it may still."""
        if job.startswith(UNSUBMITTED):
            return REDIS_MESSAGE
        queued_key, started_key, beat_key, abandoned_key = self._keys(job)
        queued, started, beat, abandoned = self.redis.mget([queued_key, started_key, beat_key, abandoned_key])
        if abandoned:
            return LOST_MESSAGE
        if started:
            return None if beat else LOST_MESSAGE
        if queued and time.time() - float(queued) > self.queue_timeout_s:
            self.redis.set(abandoned_key, "1", ex=24 * 3600)  # a worker that comes back later skips it
            return QUEUE_MESSAGE.format(seconds=self.queue_timeout_s)
        return None

    def get_result(self, key: str, job: Any) -> Any:
        if job is not None and str(job).startswith(UNSUBMITTED):
            return error_result(REDIS_MESSAGE)
        try:
            result = super().get_result(key, job)
            if result is self.UNDEFINED and job is not None:
                lost = self.job_lost(str(job))
                if lost:
                    log.warning("background job %s lost: %s", job, lost)
                    return error_result(lost)
            return result
        except _redis_errors() as err:
            log.warning("polling background job %s failed: %s", job, err)
            return error_result(REDIS_MESSAGE)

    def job_running(self, job: Any) -> bool:
        if job is None or str(job).startswith(UNSUBMITTED):
            return False
        try:
            return bool(super().job_running(job)) and not self.job_lost(str(job))
        except _redis_errors():
            return False

    def terminate_job(self, job: Any) -> None:
        """Cancel `job`: set its cancel key (the job stops at its next progress report), then revoke it (a job still
        queued is then never run)."""
        if job is None or str(job).startswith(UNSUBMITTED):
            return
        try:
            self.redis.set(self._cancel_key(str(job)), "1", ex=24 * 3600)
            self.handle.control.revoke(job)  # not `terminate=True`: the threads pool cannot kill a thread
        except _redis_errors() as err:
            log.warning("could not revoke background job %s: %s", job, err)

    def get_progress(self, key: str) -> Any:
        try:
            return super().get_progress(key)
        except _redis_errors():
            return None

    def get_updated_props(self, key: str) -> dict[str, Any]:
        try:
            return super().get_updated_props(key)
        except _redis_errors():
            return {}

    def clear_cache_entry(self, key: str) -> None:
        try:
            super().clear_cache_entry(key)
        except _redis_errors():
            pass


def celery_manager(config: AppConfig) -> SegxCeleryManager:
    """The scale-out manager for `config.redis_url` (jobs run on Celery workers)."""
    if not config.redis_url:
        raise ValueError("celery_manager needs a Redis URL (REDIS_URL or --redis-url)")
    return SegxCeleryManager(
        celery_app(config.redis_url), heartbeat_s=config.job_heartbeat_s, lost_after_s=config.job_lost_after_s,
        queue_timeout_s=config.job_queue_timeout_s,
    )  # fmt: skip
