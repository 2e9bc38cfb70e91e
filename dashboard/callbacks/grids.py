"""The heatmap grids' one writer: a new question (or method choice) and what follows a slow-method job.

Both the fast path (`explain.handle_explain`: the fast cards, the slow placeholders, the job request, the results) and
the job's outcome (`jobs.handle_job_outcome`: its cards, its failure, a cancel) change the slow grid, so they are one
callback over the pure dispatcher `grid_event`: a question input that fired wins (a new question replaces the job);
otherwise the job's outcome is applied. A model upload clears the region (its "model" event), which reaches this
callback as a question without a region and clears both grids and the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import Dash, Input, Output, State, ctx, no_update

from dashboard.callbacks.common import message_event, message_output, with_message_event
from dashboard.callbacks.explain import handle_explain
from dashboard.callbacks.jobs import handle_job_outcome
from dashboard.config import AppConfig
from dashboard.state.resources import get_session_adapter, get_store, methods
from dashboard.view import ids

QUESTION_INPUTS = (f"{ids.REGION}.data", f"{ids.TARGET}.value", f"{ids.METHODS}.value", f"{ids.CONTRAST}.value")
JOB_INPUTS = (f"{ids.CANCEL}.n_clicks", f"{ids.SLOW_RESULT}.data")


def grid_event(triggered: Sequence[str]) -> str | None:
    """"question" when a question input fired (it wins), "job" when only the job's inputs did, else None."""
    if any(prop in QUESTION_INPUTS for prop in triggered):
        return "question"
    if any(prop in JOB_INPUTS for prop in triggered):
        return "job"
    return None


def register(app: Dash, config: AppConfig) -> None:
    """Register the grids' one callback."""

    @app.callback(
        Output(ids.FAST_GRID, "children"),
        Output(ids.SLOW_GRID, "children"),
        Output(ids.SLOW_REQUEST, "data"),
        Output(ids.RESULTS, "data"),
        Output(ids.SLOW_RESULT, "data", allow_duplicate=True),  # the background job writes it too
        message_output("explain"),
        message_output("job"),
        Input(ids.REGION, "data"),
        Input(ids.TARGET, "value"),
        Input(ids.METHODS, "value"),
        Input(ids.CONTRAST, "value"),
        Input(ids.CANCEL, "n_clicks"),
        Input(ids.SLOW_RESULT, "data"),
        State(ids.IMAGE, "data"),
        State(ids.SESSION, "data"),
        State(ids.LAYER, "value"),
        State(ids.HEATMAP_OPACITY, "value"),
        State(ids.VIEW, "data"),
        State(ids.SLOW_REQUEST, "data"),
        State(ids.RESULTS, "data"),
        prevent_initial_call=True,
    )
    def on_grids(region_ref, target, chosen, contrast, n_clicks, result, image_ref, session, layer_index, opacity,
                 view, request, results) -> tuple[Any, ...]:  # fmt: skip
        triggered = [item["prop_id"] for item in ctx.triggered]
        event = grid_event(triggered)
        adapter = get_session_adapter(config, session)
        if event == "question":
            out = with_message_event(handle_explain(
                region_ref, target, chosen, image_ref, session, layer_index, opacity, view, request, adapter=adapter,
                store=get_store(config), infos=methods(), previous_result=result, contrast=contrast))  # fmt: skip
            return (*out[:4], no_update, out[4], no_update)
        if event == "job":
            slow, slow_result, message = handle_job_outcome(
                triggered, n_clicks, result, request, results, session, layer_index, opacity, view, adapter=adapter,
                store=get_store(config), infos=methods())  # fmt: skip
            return (no_update, slow, no_update, no_update, slow_result, no_update, message_event(message))
        return (no_update,) * 7
