"""Question callbacks: the "rather than" (contrast) class, its runner-up shortcut, and the question in words.

The contrast picker offers every class of the session's model, by name (a model upload starts a new session, which
updates it). It follows the session rather than the target picker's options, which every region rewrites: the
question callback waits for each of its inputs' writers, so a contrast that followed the target's options would cost
every selection one more round trip before its heatmaps are computed. "runner-up" sets it to the class other than the
target with the highest mean predicted probability over the region (`explainers.question.runner_up_class`); "Explain
this error" sets it to the class the error pixels truly are (`callbacks.errors.handle_error_contrast`). All three are
one callback, the contrast value's one writer, dispatched by `contrast_event` (a button press wins over the options
follow). The question line under the selection says what the heatmaps explain, e.g. "Explaining: why is this inner
border (3 px) of box “cap” rather than “gills”?".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dash import Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from dashboard.callbacks.common import CLEAR, as_int, message_output, show, with_message_event
from dashboard.callbacks.errors import handle_error_contrast
from dashboard.callbacks.explain import CONTRAST_HINT
from dashboard.callbacks.selection import region_label_text
from dashboard.config import AppConfig
from dashboard.state.resources import get_session_adapter, get_store
from dashboard.state.store import StateStore
from dashboard.usecases import analysis
from dashboard.view import ids
from explainers.question import Question, runner_up_class


def contrast_options(class_names: Sequence[str], current: Any) -> tuple[list, Any]:
    """(options, value) of the contrast picker: every class of the model, by name; a value the options do not hold
    is cleared."""
    options = [{"label": str(name), "value": k} for k, name in enumerate(class_names)]
    value = as_int(current)
    keep = value is None or 0 <= value < len(options)
    return options, (no_update if keep else None)


def handle_runner_up(
    store: StateStore,
    session: str,
    adapter: Any,
    image_ref: Mapping[str, Any] | None,
    region_ref: Mapping[str, Any] | None,
    target: Any,
) -> tuple[Any, ...]:
    """(contrast value) + message: the runner-up class of the region, from the model's probabilities."""
    target = as_int(target)
    if not image_ref or not region_ref or target is None or region_ref.get("image") != image_ref.get("key"):
        return (no_update, *show("Select a region and a target class first.", "warning"))
    try:
        image, region = analysis.question_inputs(
            store, session, {"image": image_ref["key"], "region": region_ref["key"]}
        )
        runner_up = runner_up_class(adapter.predict(image), region, target)
    except ValueError as err:
        return (no_update, *show(str(err), "warning"))
    return (runner_up, *CLEAR)


def question_text(
    store: StateStore,
    session: str,
    region_ref: Mapping[str, Any] | None,
    target: Any,
    contrast: Any,
    class_names: Sequence[str],
) -> str:
    """The question the heatmaps answer, in words ("" while there is none)."""
    target, contrast = as_int(target), as_int(contrast)
    if not region_ref or target is None:
        return ""
    if contrast is not None and contrast == target:
        return CONTRAST_HINT
    region = store.get(session, "region", region_ref["key"])
    if region is None:
        return ""
    label = region_label_text(str(region_ref.get("label") or region_ref.get("kind") or "region"), class_names)
    return "Explaining: " + Question(region, target, contrast, label=label[:1].lower() + label[1:]).describe(
        class_names
    )


def contrast_event(triggered: Sequence[str]) -> str:
    """Which contrast event fired, from the triggered "id.prop" ids: "explain-error", "runner-up" or "options" (a new
    session: the model's classes); a button press wins when several fired together."""
    if f"{ids.EXPLAIN_ERROR}.n_clicks" in triggered:
        return "explain-error"
    if f"{ids.RUNNER_UP}.n_clicks" in triggered:
        return "runner-up"
    return "options"


def register(app: Dash, config: AppConfig) -> None:
    """Register the question callbacks."""

    @app.callback(
        Output(ids.CONTRAST, "options"),
        Output(ids.CONTRAST, "value"),
        message_output("runner-up"),
        Input(ids.SESSION, "data"),
        Input(ids.RUNNER_UP, "n_clicks"),
        Input(ids.EXPLAIN_ERROR, "n_clicks"),
        State(ids.CONTRAST, "value"),
        State(ids.IMAGE, "data"),
        State(ids.REGION, "data"),
        State(ids.TARGET, "value"),
        State(ids.TRUTH, "data"),
        State(ids.ERROR_REGION, "value"),
        prevent_initial_call=True,
    )
    def on_contrast(session, clicks, error_clicks, current, image_ref, region_ref, target, truth_ref,
                    error) -> tuple[Any, ...]:  # fmt: skip
        event = contrast_event([item["prop_id"] for item in ctx.triggered])
        if event == "explain-error":
            names = get_session_adapter(config, session).class_names
            contrast = handle_error_contrast(error_clicks, image_ref, truth_ref, error, session, get_store(config),
                                             names)  # fmt: skip
            return (no_update, contrast, no_update)
        if event == "runner-up":
            if not clicks:
                raise PreventUpdate
            adapter = get_session_adapter(config, session)
            out = handle_runner_up(get_store(config), session, adapter, image_ref, region_ref, target)
            return (no_update, *with_message_event(out))
        return (*contrast_options(get_session_adapter(config, session).class_names, current), no_update)

    @app.callback(
        Output(ids.QUESTION_TEXT, "children"),
        Input(ids.REGION, "data"),
        Input(ids.TARGET, "value"),
        Input(ids.CONTRAST, "value"),
        State(ids.SESSION, "data"),
        prevent_initial_call=True,
    )
    def on_question_text(region_ref: Any, target: Any, contrast: Any, session: str) -> str:
        names = get_session_adapter(config, session).class_names
        return question_text(get_store(config), session, region_ref, target, contrast, names)
