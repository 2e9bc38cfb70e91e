"""The model's errors: the ground-truth upload, the errors card (per-class IoU, the error-region picker) and the
"rather than" class of "Explain this error".

The upload stores the ground truth of the shown image (`usecases.errors.ingest_truth`) in the TRUTH store; the
errors card follows TRUTH and IMAGE (a ground truth of another image is not used). Picking an error region and
"Explain this error" set the region through the region callback (`callbacks.selection`, its "error" and
"explain-error" events), so the region, the target, the outline and the region line keep their one writer; the
contrast of "Explain this error" (`handle_error_contrast`) is set by the contrast picker's one callback
(`callbacks.question`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dash import Dash, Input, Output, State, no_update
from dash.exceptions import PreventUpdate

from dashboard.callbacks.common import CLEAR, Message, message_event, message_output, show
from dashboard.config import AppConfig
from dashboard.state.resources import get_session_adapter, get_store
from dashboard.state.store import StateStore
from dashboard.usecases import errors
from dashboard.view import ids
from dashboard.view.components import hint
from dashboard.view.panels import ERRORS_HINT, TRUTH_HINT, errors_table


def handle_truth_upload(
    contents: str | None,
    filename: str | None,
    image_ref: Mapping[str, Any] | None,
    session: str,
    store: StateStore,
    class_names: Sequence[str],
    max_bytes: int,
) -> tuple[Any, Message]:
    """(TRUTH store value, message) for an uploaded ground truth; a bad file keeps the current one and says why."""
    if not contents:
        raise PreventUpdate
    name = filename or "ground truth"
    try:
        truth_ref = errors.ingest_truth(store, session, image_ref, contents, name, class_names, max_bytes)
    except ValueError as err:
        return no_update, show(f"Could not use the ground truth “{name}”: {err}", "warning")
    return truth_ref, CLEAR


def handle_errors(
    image_ref: Mapping[str, Any] | None,
    truth_ref: Mapping[str, Any] | None,
    session: str,
    store: StateStore,
    class_names: Sequence[str],
) -> tuple[Any, list[dict[str, Any]], None, str]:
    """(errors table, error-region options, cleared choice, truth info line) for the shown image."""
    if not image_ref or not truth_ref or truth_ref.get("image") != image_ref.get("key"):
        return hint(ERRORS_HINT), [], None, TRUTH_HINT
    try:
        predicted, truth = errors.truth_maps(store, session, image_ref, truth_ref)
    except ValueError as err:
        return hint(str(err)), [], None, str(err)
    options = errors.error_choices(predicted, truth, class_names)
    void = f" · {truth_ref['void']} void px" if truth_ref.get("void") else ""
    info = f"Ground truth: {truth_ref['name']} · {truth_ref['note']}{void}"
    if not options:
        info += " · no errors: the prediction matches it everywhere"
    return errors_table(errors.error_rows(predicted, truth, class_names)), options, None, info


def handle_error_contrast(
    clicks: Any,
    image_ref: Mapping[str, Any] | None,
    truth_ref: Mapping[str, Any] | None,
    choice: Any,
    session: str,
    store: StateStore,
    class_names: Sequence[str],
) -> Any:
    """The contrast of "Explain this error" (the class the error pixels truly are / are predicted as); `no_update`
    when there is no error to explain (the region callback says why)."""
    if not clicks:
        raise PreventUpdate
    try:
        predicted, truth = errors.truth_maps(store, session, image_ref, truth_ref)
        return errors.explain_error_question(predicted, truth, choice, class_names).contrast
    except ValueError:
        return no_update


def register(app: Dash, config: AppConfig) -> None:
    """Register the ground-truth upload and the errors card."""

    @app.callback(
        Output(ids.TRUTH, "data"),
        Output(ids.TRUTH_UPLOAD, "contents"),
        message_output("truth"),
        Input(ids.TRUTH_UPLOAD, "contents"),
        State(ids.TRUTH_UPLOAD, "filename"),
        State(ids.IMAGE, "data"),
        State(ids.SESSION, "data"),
        prevent_initial_call=True,
    )
    def on_truth_upload(contents, filename, image_ref, session):
        names = get_session_adapter(config, session).class_names
        truth_ref, message = handle_truth_upload(contents, filename, image_ref, session, get_store(config), names,
                                                 int(config.max_upload_bytes))  # fmt: skip
        return truth_ref, None, message_event(message)

    @app.callback(
        Output(ids.ERRORS_TABLE, "children"),
        Output(ids.ERROR_REGION, "options"),
        Output(ids.ERROR_REGION, "value"),
        Output(ids.TRUTH_INFO, "children"),
        Input(ids.TRUTH, "data"),
        Input(ids.IMAGE, "data"),
        State(ids.SESSION, "data"),
        prevent_initial_call=True,
    )
    def on_errors(truth_ref, image_ref, session):
        names = get_session_adapter(config, session).class_names
        return handle_errors(image_ref, truth_ref, session, get_store(config), names)
