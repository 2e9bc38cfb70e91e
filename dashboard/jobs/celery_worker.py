"""The Celery worker entry point of a scaled-out deployment (`dashboard.jobs.scaleout`).

    REDIS_URL=redis://HOST:6379/0 celery -A dashboard.jobs.celery_worker worker -P threads -c 2 --loglevel=INFO

Dash names each background callback's Celery task after a hash of the callback's source and id, so the worker must
register exactly the callbacks the web tier registers: it builds the app the way `gunicorn app:server` does
(`app._default_app`, from the same environment: REDIS_URL, SEGX_MODEL, SEGX_CLASS_NAMES, SEGX_STATE_DIR), without the
warm-up, and exposes the Celery app the manager was made with. Nothing runs TensorFlow at start-up: the model loads
lazily in the worker, on the first job (`dashboard.state.resources.get_adapter`). Use a pool that does not fork after
TensorFlow ran: `-P threads` (the default set in `scaleout.celery_app`) or `-P solo`; never the prefork pool.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from celery.signals import worker_ready

from dashboard.config import redis_url_from_env
from dashboard.jobs.scaleout import celery_app

# `celery -A` puts the working directory on sys.path only while it imports this module; jobs import `explainers`,
# `models`, ... later, so the repository root stays on the path for good.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
sys.path.append(REPO_ROOT)

import app as web  # noqa: E402  (the repository's app.py, importable once the repository root is on the path)

REDIS_URL = redis_url_from_env()
if not REDIS_URL:
    raise RuntimeError("Set REDIS_URL (e.g. redis://127.0.0.1:6379/0): the worker takes its jobs from that Redis.")

dash_app = web._default_app(warmup=False)
celery = celery_app(REDIS_URL)


@worker_ready.connect
def _warm_shap(**_: object) -> None:
    """Compile shap's numba code once the worker is up (imports and numpy only, no TensorFlow op; ~15-25 s on two
    cores), in a thread, so the first SHAP job does not pay for it (`dashboard.jobs.preload`)."""
    threading.Thread(target=__import__, args=("dashboard.jobs.preload",), name="segx-shap-warmup", daemon=True).start()
