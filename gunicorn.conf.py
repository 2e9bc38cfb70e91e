"""gunicorn settings for the web tier (`gunicorn -w 2 app:server`; gunicorn reads this file from the working directory).

- Threaded workers (`gthread`): most requests wait on Redis or on background-job polls, not on the CPU.
- Keep-alive 75 s (gunicorn's default is 2 s): idle client connections stay usable between a person's clicks, and
  outlive the usual 60 s idle timeout of a load balancer in front; with 2 s, a pooled connection closed by the
  server while the client reuses it fails with "connection reset" (seen in benchmarks/load.py).
- No control socket: its default path is per user ($HOME/.gunicorn/gunicorn.ctl), shared by every gunicorn the
  user runs on the host; nothing here uses it.
- Background jobs run in threads of each worker (unless SEGX_JOB_PROCESSES=1 or REDIS_URL): a worker restart ends
  the jobs it runs (`graceful_timeout` below), and a job's polls share the worker's `threads` with its requests.
- No `preload_app`: each worker imports the app after the fork, so TensorFlow never runs in a process that forks
  (`app:server` is built lazily; the model loads in each worker, in its warm-up thread).
- Dash signs background-job handles (the page's `end_id`, `cacheKey`, `job`) with the Flask secret key. With several
  workers a page loaded from one worker is polled through another, so they must share it: `DASH_SECRET_KEY`. Without
  it Dash falls back to a secret kept in the job store, which a worker that starts while Redis is down replaces with
  a private random one for its lifetime; so several workers without DASH_SECRET_KEY are refused at start-up.

Every setting can be overridden on the command line (`-b 0.0.0.0:8050 -w 4 --threads 8`) or with GUNICORN_CMD_ARGS.
A single worker (`gunicorn app:server`) starts without DASH_SECRET_KEY, as before.

- Each worker finishes Dash's setup (renders the index once and fetches its scripts, through Flask's test client)
  before it accepts a connection (`post_worker_init`, `dashboard.jobs.web_worker`): otherwise requests arriving during a
  fresh worker's first request answered 500 for the page's scripts (plotly/dash#3971) and broke the first page load
  after every restart or scale-up. The model loads then, too, so a worker's first user does not wait for it.
"""

import os
import time

# bind and workers keep gunicorn's defaults (127.0.0.1:8000; 1 worker or $WEB_CONCURRENCY): pass -b and -w.
worker_class = "gthread"
threads = 4
keepalive = 75
timeout = 120  # the first request of a worker may wait for the model to load
graceful_timeout = 20
preload_app = False
control_socket_disable = True


def on_starting(server) -> None:
    """Refuse several workers without a shared DASH_SECRET_KEY, and a bad SEGX_JOB_THREADS / SEGX_JOB_PROCESSES (here,
    once: a worker that cannot build the app would be restarted over and over)."""
    from dashboard.config import job_settings

    try:
        job_settings()
    except ValueError as err:
        raise SystemExit(f"gunicorn: {err}") from None
    if server.cfg.workers > 1 and not os.environ.get("DASH_SECRET_KEY"):
        raise SystemExit(
            "gunicorn: several workers need a shared secret key: set DASH_SECRET_KEY (e.g. "
            "DASH_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')), the same for every replica."
        )


def post_worker_init(worker) -> None:
    """Finish Dash's setup in this worker before it takes traffic (see the module docstring)."""
    from dashboard.jobs.web_worker import finish_dash_setup

    begin = time.perf_counter()
    served = finish_dash_setup(worker.wsgi, notify=worker.notify)
    worker.log.info("worker %s: Dash set up before taking traffic (index + %d scripts, %.1f s)", worker.pid, served,
                    time.perf_counter() - begin)  # fmt: skip
