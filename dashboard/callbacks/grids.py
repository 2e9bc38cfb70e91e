"""The question callback: a new question (or method choice) -> the fast grid, the slow placeholders, the job request
and the results (`explain.handle_explain`). It is the fast grid's and the results' one writer: a model upload clears
the region (its "model" event), which reaches this callback as a question without a region and clears both grids and
the results. The slow grid has a second writer, the job's outcome (`jobs.on_job_outcome`): one callback for both
would read the job's result and write the job's request, a dependency cycle (question -> request -> job -> result ->
question) that Dash cannot run.
"""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State

from dashboard.callbacks.common import message_output, with_message_event
from dashboard.callbacks.explain import handle_explain
from dashboard.config import AppConfig
from dashboard.state.resources import get_session_adapter, get_store, methods
from dashboard.view import ids


def register(app: Dash, config: AppConfig) -> None:
    """Register the question callback."""

    @app.callback(
        Output(ids.FAST_GRID, "children"),
        Output(ids.SLOW_GRID, "children", allow_duplicate=True),  # the job's outcome writes it too (see above)
        Output(ids.SLOW_REQUEST, "data"),
        Output(ids.RESULTS, "data"),
        message_output("explain"),
        Input(ids.REGION, "data"),
        Input(ids.TARGET, "value"),
        Input(ids.METHODS, "value"),
        Input(ids.CONTRAST, "value"),
        State(ids.IMAGE, "data"),
        State(ids.SESSION, "data"),
        State(ids.LAYER, "value"),
        State(ids.HEATMAP_OPACITY, "value"),
        State(ids.VIEW, "data"),
        State(ids.SLOW_REQUEST, "data"),
        State(ids.SLOW_RESULT, "data"),
        prevent_initial_call=True,
    )
    def on_question(region_ref, target, chosen, contrast, image_ref, session, layer_index, opacity, view, request,
                    result) -> tuple[Any, ...]:  # fmt: skip
        return with_message_event(handle_explain(
            region_ref, target, chosen, image_ref, session, layer_index, opacity, view, request,
            adapter=get_session_adapter(config, session), store=get_store(config), infos=methods(),
            previous_result=result, contrast=contrast))  # fmt: skip
