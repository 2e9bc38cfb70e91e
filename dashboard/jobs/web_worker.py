"""Finish Dash's per-process setup in a web worker before it takes traffic (called from gunicorn's `post_worker_init`).

Dash sets itself up on the first request a process serves (`before_request` -> `Dash._setup_server`: it validates
the layout, which here builds a page and so loads the model, then generates the script tags), and it fills its
registry of servable component-suite files while it renders the index page. Under threaded workers, requests that
arrive during that first setup skip it (the "done" flag is set before the work) and a script request then answers
500 `DependencyException: "dash" is not a registered library`: every restart or scale-up broke the first page of the
browsers that arrived first (the upstream race plotly/dash#3971). `finish_dash_setup` renders the index once, and
fetches every script it lists, through Flask's test client, in the worker, before the worker accepts a connection.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
_SCRIPT_RE = re.compile(r"<script[^>]*\ssrc=\"([^\"]+)\"")


def _index_path(wsgi: Any) -> str:
    """The index route of the Dash app serving `wsgi` (its `routes_pathname_prefix`), '/' if unknown."""
    try:
        from dash import get_app

        dash_app = get_app()
    except Exception:  # no Dash app created in this process
        return "/"
    if getattr(dash_app, "server", None) is not wsgi:
        return "/"
    return str(dash_app.config.routes_pathname_prefix or "/")


def finish_dash_setup(wsgi: Any, notify: Callable[[], None] | None = None, period_s: float = 5.0) -> int:
    """Render the index of the Flask app `wsgi` and fetch the scripts it lists; returns how many were served.

    `notify` (gunicorn's `worker.notify`) is called every `period_s` seconds meanwhile, so the arbiter does not take
    a worker that is loading a large model for a hung one. Failures are logged, never raised: the worker then serves
    as it would have without this step.
    """
    if not hasattr(wsgi, "test_client"):
        log.warning("not a Flask app (%s): Dash's setup is left to the first request", type(wsgi).__name__)
        return 0
    stop = threading.Event()

    def keep_alive() -> None:
        while notify is not None and not stop.wait(period_s):
            notify()

    beat = threading.Thread(target=keep_alive, name="segx-setup-notify", daemon=True)
    beat.start()
    begin = time.perf_counter()
    try:
        client = wsgi.test_client()
        path = _index_path(wsgi)
        index = client.get(path)
        if index.status_code != 200:
            log.warning("Dash set-up: the index %s answered %s", path, index.status_code)
            return 0
        scripts = [src for src in _SCRIPT_RE.findall(index.get_data(as_text=True)) if src.startswith(path)]
        served = 0
        for src in scripts:
            response = client.get(src)
            response.close()
            if response.status_code == 200:
                served += 1
            else:
                log.warning("Dash set-up: %s answered %s", src, response.status_code)
        log.debug("Dash set up: index and %d/%d scripts in %.1f s", served, len(scripts), time.perf_counter() - begin)
        return served
    except Exception:
        log.exception("Dash set-up before taking traffic failed; the first requests will do it")
        return 0
    finally:
        stop.set()
