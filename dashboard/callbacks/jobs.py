"""The background job for slow methods (SHAP, Deep SHAP, Integrated Gradients, SmoothGrad, ...).

It runs where the background-callback manager runs jobs (a thread of the web process by default, a child process, or
a Celery worker: `dashboard.jobs.background`), gets only keys and the picklable `AppConfig`, loads the model lazily
where it is not loaded yet, computes each missing method with progress reports,
stores every result server-side as soon as it is done (so a cancel keeps what finished) and returns keys only. A
cancelled job stops at its next progress report (`dashboard.jobs.cancellation`): between batches of the method running.

A job that fails as a whole (it raised, or the manager reports it lost: see `dashboard.jobs.scaleout`) goes through the
callback's `on_error` handler, which puts a `{"job_error": message}` marker in `SLOW_RESULT`; `on_job_outcome` then
turns the waiting cards into failure cards and shows the message, so the user never watches an endless spinner.

`on_job_outcome` is the one callback for what follows a job: its result (cards), its failure, or the user's cancel
(`job_outcome` names which); so the slow grid and the result store have one writer each besides the question's
callback and the job itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dash import Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from dashboard.callbacks.common import message_event, message_output, show
from dashboard.callbacks.explain import handle_slow_result
from dashboard.config import AppConfig
from dashboard.jobs.progress import ProgressReporter, SetProgress
from dashboard.state.resources import (
    adapter_loaded,
    get_adapter,
    get_session_adapter,
    get_store,
    method_info,
    methods,
    session_config,
)
from dashboard.state.store import StateStore
from dashboard.usecases import analysis
from dashboard.view import ids
from dashboard.view.components import failed_card, placeholder_card

if TYPE_CHECKING:
    from explainers import SegmentationAdapter

log = logging.getLogger(__name__)
_DASH_ERROR_PREFIX = "An error occurred inside a background callback:"


def start_job(
    set_progress: SetProgress, request: Mapping[str, Any] | None, config: AppConfig, steps: int
) -> tuple[ProgressReporter, SegmentationAdapter, StateStore]:
    """What every background job starts with: its progress reporter over `steps` steps, then the session's model
    (loaded on first use in a job process or worker; a thread job finds it loaded) and the state store. No request:
    nothing to do."""
    if not request:
        raise PreventUpdate
    reporter = ProgressReporter(set_progress, steps)
    served = session_config(config, request["session"])  # the session's uploaded model, if any
    if not adapter_loaded(served):
        reporter.note("Loading the model…")
    adapter = get_adapter(served)
    return reporter, adapter, get_store(config)


def cancel_marker(request: Mapping[str, Any] | None) -> dict[str, Any]:
    """The result a cancelled job's request is answered with (`explain.job_may_run` reads its token)."""
    return {"token": (request or {}).get("token"), "cancelled": True}


def run_slow_job(set_progress: SetProgress, request: Mapping[str, Any] | None, config: AppConfig) -> dict[str, Any]:
    """Compute the requested slow methods; returns {"question", "methods", "failed"} (keys and messages only)."""
    names = list((request or {}).get("methods") or [])
    reporter, adapter, store = start_job(set_progress, request, config, len(names))
    failed: dict[str, str] = {}
    for index, name in enumerate(names):
        info = method_info(name)
        reporter.start(index, info.label)
        try:
            analysis.compute(adapter, store, request["session"], request["question"], [name], progress=reporter.report)
        except Exception as err:
            log.exception("background method %s failed", name)
            failed[name] = f"{info.label} failed: {err}"
    reporter.finish()
    return {"question": request["question"], "methods": names, "failed": failed, "token": request.get("token")}


def cancelled_cards(request: Mapping[str, Any] | None) -> list[Any]:
    """Placeholders telling that the slow methods of `request` were cancelled."""
    if not request:
        raise PreventUpdate
    order = {info.name: k for k, info in enumerate(methods())}
    return [placeholder_card(method_info(name), "Cancelled. Change the selection or re-tick the method to run it.",
                             order.get(name, 0), busy=False) for name in request["methods"]]  # fmt: skip


def job_error_marker(err: BaseException) -> dict[str, str]:
    """The `SLOW_RESULT` value for a job that failed as a whole: its message without Dash's prefix and traceback."""
    text = str(err).strip()
    if text.startswith(_DASH_ERROR_PREFIX):
        text = text[len(_DASH_ERROR_PREFIX) :].strip()
    text = text.split("\nTraceback (most recent call last)", 1)[0].strip()
    return {"job_error": text or "The background job failed."}


def failed_job_cards(request: Mapping[str, Any] | None, message: str) -> list[Any]:
    """Failure cards for the methods of `request` after its job failed as a whole."""
    if not request:
        raise PreventUpdate
    order = {info.name: k for k, info in enumerate(methods())}
    return [failed_card(method_info(name), message, order.get(name, 0)) for name in request["methods"]]


def handle_job_error(result: Mapping[str, Any] | None, request: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """(slow grid, SLOW_RESULT marker, message) for a `job_error` marker; PreventUpdate for anything else."""
    if not result or "job_error" not in result:
        raise PreventUpdate
    message = str(result["job_error"])
    marker = {"token": (request or {}).get("token"), "failed": message}
    cards = failed_job_cards(request, "Not computed: the background job failed.") if request else []
    return (cards, marker, *show(message, "danger"))


def job_outcome(triggered: Sequence[str], n_clicks: int | None, result: Mapping[str, Any] | None) -> str | None:
    """What the job-outcome callback handles, from the triggered "id.prop" ids: "cancel" (a press of Cancel: it
    wins), "job_error" (the job failed as a whole), "result" (its result, or a marker `handle_slow_result` ignores),
    or None (nothing to do)."""
    if f"{ids.CANCEL}.n_clicks" in triggered and n_clicks:
        return "cancel"
    if f"{ids.SLOW_RESULT}.data" in triggered and result:
        return "job_error" if "job_error" in result else "result"
    return None


def handle_job_outcome(
    triggered: Sequence[str],
    n_clicks: int | None,
    result: Mapping[str, Any] | None,
    request: Mapping[str, Any] | None,
    results: Mapping[str, Any] | None,
    session: str,
    layer_index: int | None,
    opacity: float | None,
    view: Mapping[str, Any] | None,
    *,
    adapter: Any,
    store: StateStore,
    infos: Sequence[Any],
) -> tuple[Any, Any, Any]:
    """(slow grid, slow result store, message) after the job's cancel or result (`job_outcome` decides which);
    PreventUpdate when neither applies."""
    outcome = job_outcome(triggered, n_clicks, result)
    if outcome == "cancel":
        return cancelled_cards(request), cancel_marker(request), show("Background job cancelled.", "secondary")
    if outcome == "job_error":
        cards, marker, *message = handle_job_error(result, request)
        return cards, marker, tuple(message)
    if outcome == "result":
        cards, *message = handle_slow_result(result, results, session, layer_index, opacity, view, adapter=adapter,
                                             store=store, infos=infos)  # fmt: skip
        return cards, no_update, tuple(message)
    raise PreventUpdate


def register(app: Dash, config: AppConfig) -> None:
    """Register the background job and its cancel handler."""

    @app.callback(
        Output(ids.SLOW_RESULT, "data"),
        Input(ids.SLOW_REQUEST, "data"),
        background=True,
        progress=[Output(ids.PROGRESS, "value"), Output(ids.PROGRESS, "label"), Output(ids.PROGRESS_TEXT, "children")],
        progress_default=[0, "", "Starting…"],
        running=[
            (Output(ids.SLOW_PANEL, "style"), {"display": "flex"}, {"display": "none"}),
            (Output(ids.CANCEL, "disabled"), False, True),
        ],
        cancel=[Input(ids.CANCEL, "n_clicks")],
        interval=config.job_interval_ms,
        on_error=job_error_marker,
        prevent_initial_call=True,
    )
    def slow_job(set_progress: SetProgress, request: Mapping[str, Any] | None) -> dict[str, Any]:
        return run_slow_job(set_progress, request, config)

    @app.callback(
        Output(ids.SLOW_GRID, "children", allow_duplicate=True),  # the question callback writes it too
        Output(ids.SLOW_RESULT, "data", allow_duplicate=True),  # the background job writes it too
        message_output("job"),
        Input(ids.CANCEL, "n_clicks"),
        Input(ids.SLOW_RESULT, "data"),
        State(ids.SLOW_REQUEST, "data"),
        State(ids.RESULTS, "data"),
        State(ids.SESSION, "data"),
        State(ids.LAYER, "value"),
        State(ids.HEATMAP_OPACITY, "value"),
        State(ids.VIEW, "data"),
        prevent_initial_call=True,
    )
    def on_job_outcome(n_clicks, result, request, results, session, layer_index, opacity, view) -> tuple[Any, ...]:
        slow, slow_result, message = handle_job_outcome(
            [item["prop_id"] for item in ctx.triggered], n_clicks, result, request, results, session, layer_index,
            opacity, view, adapter=get_session_adapter(config, session), store=get_store(config), infos=methods())
        return (slow, slow_result, message_event(message))
