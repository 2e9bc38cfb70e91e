"""Model upload (only with `--allow-model-upload`): a `.keras` or `.onnx` file checked, loaded in a sandbox, then
serving the page.

The checks and the sandboxed load are `explainers.model_sandbox.install_model` (no Dash there). On success the page
moves to a fresh session id whose state-store record names the installed model (`resources.session_config` maps it
to the trusted file), so every cached image, prediction and map of the old model is left behind, and every other
session keeps its own model. The page's model-dependent parts (title-bar facts, target classes, layer slider) are
updated in place; the mask figure and heatmaps are cleared. With Redis configured, the checked file is also put in
Redis (`dashboard.state.model_store`), so Celery workers on other machines load the same model.

The check runs as a background job (the sandbox imports TensorFlow: ~10 s), so the upload request returns at once
and the Model card shows the job's stages on a progress bar.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from dash import Dash, Input, Output, State, no_update
from dash.exceptions import PreventUpdate

from dashboard import layout
from dashboard.callbacks.common import show
from dashboard.callbacks.events import emit, event_output
from dashboard.config import AppConfig
from dashboard.inputs.images import ImageError, decode_data_uri
from dashboard.jobs.progress import ProgressReporter, SetProgress
from dashboard.state.model_store import publish_model
from dashboard.state.resources import get_session_adapter, get_store
from dashboard.state.store import StateStore, new_session_id
from dashboard.view import ids
from dashboard.view.components import layer_label

log = logging.getLogger(__name__)
REFUSED_EXTENSIONS = {".h5": "a legacy HDF5 (.h5) model", ".hdf5": "a legacy HDF5 model",
                      ".pb": "a TensorFlow SavedModel", ".zip": "a zip archive (a SavedModel?)",
                      ".pt": "a PyTorch model", ".pth": "a PyTorch model"}  # fmt: skip

# Output order of `handle_model_upload` (and of the registered callback).
UPLOAD_STAGES = 3  # check in the sandbox, load for this page, update the page
OUTPUTS = (
    (ids.SESSION, "data"), (ids.MODEL_STATUS, "children"), (ids.MODEL_FACTS, "children"), (ids.IMAGE, "data"),
    (ids.REGION, "data"), (ids.CLASS_PICKER, "options"), (ids.CLASS_PICKER, "value"), (ids.TARGET, "options"),
    (ids.TARGET, "value"), (ids.LAYER, "max"), (ids.LAYER, "value"), (ids.LAYER, "marks"), (ids.LAYER, "disabled"),
    (ids.LAYER_INFO, "children"), (ids.LAYER_NAMES, "data-layers"), (ids.IMAGE_INFO, "children"),
    (ids.MESSAGE, "children"), (ids.MESSAGE, "color"), (ids.MESSAGE, "is_open"),
)  # fmt: skip
# The heatmap grids and the results are not among them: the region the upload clears (its "model" event) makes the
# question callback, their one writer, clear them.
DUPLICATED = {(ids.CLASS_PICKER, "options"), (ids.CLASS_PICKER, "value"),
              (ids.LAYER_INFO, "children"), (ids.IMAGE_INFO, "children")}  # fmt: skip
# Outputs with one writer (`dashboard.callbacks.events`): the upload sends them as its "model" events.
EVENTED = tuple(
    output for output in dict.fromkeys(i for i, _ in OUTPUTS) if "model" in ids.EVENT_SOURCES.get(output, ())
)
DIRECT = tuple(key for key in OUTPUTS if key[0] not in EVENTED)


def as_events(out: dict[tuple[str, str], Any]) -> tuple[Any, ...]:
    """`handle_model_upload`'s {(id, property): value} as callback outputs: the `DIRECT` ones, then one "model" event
    per `EVENTED` output."""
    events = tuple(emit({prop: value for (i, prop), value in out.items() if i == output}) for output in EVENTED)
    return (*[out[key] for key in DIRECT], *events)


def parse_names(text: str | None) -> list[str] | None:
    """'a, b' -> ['a', 'b']; empty -> None; ValueError for empty names."""
    if not text or not text.strip():
        return None
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise ValueError("Class names must be non-empty and comma-separated.")
    return names


def refused(name: str, reason: str) -> dict[tuple[str, str], Any]:
    """Outputs for a refused model: only the status and the message change."""
    text = f"Model “{name}” refused: {reason}"
    out: dict[tuple[str, str], Any] = {key: no_update for key in OUTPUTS}
    out[(ids.MODEL_STATUS, "children")] = text
    out[(ids.MESSAGE, "children")], out[(ids.MESSAGE, "color")], out[(ids.MESSAGE, "is_open")] = show(text)
    return out


def handle_model_upload(
    contents: str | None,
    filename: str | None,
    names_text: str | None,
    session: str,
    config: AppConfig,
    store: StateStore,
    set_progress: SetProgress | None = None,
) -> dict[tuple[str, str], Any]:
    """{(id, property): value} for an uploaded model: refused with the reason, or a new session serving it.

    Each of the three stages is reported through a `ProgressReporter` on `set_progress` (run as a background job, the
    page shows it; None: not reported)."""
    from explainers.model_safety import ArchiveLimits
    from explainers.model_sandbox import ModelUploadRefused, SandboxLimits, install_model
    from explainers.onnx_safety import OnnxLimits

    if not contents:
        raise PreventUpdate
    reporter = ProgressReporter(set_progress or (lambda value: None), UPLOAD_STAGES)
    name = PurePath(filename or "model").name
    if not config.allow_model_upload:
        return refused(name, "model upload is disabled (start the app with --allow-model-upload).")
    suffix = PurePath(name).suffix.lower()
    if suffix not in (".keras", ".onnx"):
        kind = REFUSED_EXTENSIONS.get(suffix, f"a '{suffix or 'no extension'}' file")
        return refused(name, f"it is {kind}; only Keras 3 .keras and ONNX .onnx files are accepted.")
    try:
        class_names = parse_names(names_text)
        data = decode_data_uri(contents, config.max_model_bytes)
        limits = SandboxLimits(archive=ArchiveLimits(max_bytes=config.max_model_bytes),
                               onnx=OnnxLimits(max_bytes=config.max_model_bytes))  # fmt: skip
        reporter.start(0, f"Checking “{name}” and loading it in a sandboxed process")
        installed = install_model(data, config.models_path, class_names, limits, kind=suffix[1:])
        reporter.start(1, f"“{name}” passed the checks; loading it for this page")
        publish_model(config, installed.model_id, installed.path)  # scaled out: the workers fetch it from Redis
    except (ImageError, ValueError, ModelUploadRefused) as err:
        return refused(name, str(err))
    except Exception as err:  # the web process keeps serving whatever the upload did
        log.exception("model upload failed")
        return refused(name, f"unexpected error ({type(err).__name__}).")

    new_session = new_session_id()
    store.put(new_session, "model", "current", {"id": installed.model_id, "class_names": list(installed.class_names),
                                                 "name": name})  # fmt: skip
    try:
        adapter = get_session_adapter(config, new_session)
    except Exception as err:
        log.exception("installed model could not be loaded")
        return refused(name, f"it passed the checks but could not be loaded here ({err}).")
    reporter.start(2, f"“{name}” loaded; updating the page")
    conv = list(adapter.conv_layers)
    last = max(len(conv) - 1, 0)
    facts = layout.model_facts(name, adapter.input_size, len(adapter.class_names), len(conv))
    classes = ", ".join(adapter.class_names)
    status = (f"Serving “{name}” on this page: {len(adapter.class_names)} classes ({classes}), {len(conv)} conv "
              "layers. Other sessions keep their model.")  # fmt: skip
    out = {
        (ids.SESSION, "data"): new_session, (ids.MODEL_STATUS, "children"): status,
        (ids.MODEL_FACTS, "children"): facts, (ids.IMAGE, "data"): None, (ids.REGION, "data"): None,
        (ids.CLASS_PICKER, "options"): [], (ids.CLASS_PICKER, "value"): None,
        (ids.TARGET, "options"): [{"label": n, "value": k} for k, n in enumerate(adapter.class_names)],
        (ids.TARGET, "value"): None, (ids.LAYER, "max"): last, (ids.LAYER, "value"): last,
        (ids.LAYER, "marks"): layout.layer_marks(conv), (ids.LAYER, "disabled"): len(conv) < 2,
        (ids.LAYER_INFO, "children"): layer_label(conv[last], adapter.layer_shapes) if conv else "no conv layers",
        (ids.LAYER_NAMES, "data-layers"): json.dumps([layer_label(n, adapter.layer_shapes) for n in conv]),
        (ids.IMAGE_INFO, "children"): "",
    }  # fmt: skip
    message = show(f"Model “{name}” loaded: {len(adapter.class_names)} classes, {len(conv)} conv layers. Pick a "
                   "sample or upload an image.", "success")  # fmt: skip
    out[(ids.MESSAGE, "children")], out[(ids.MESSAGE, "color")], out[(ids.MESSAGE, "is_open")] = message
    return out


def register(app: Dash, config: AppConfig) -> None:
    """Register the model upload callback (only when model upload is allowed)."""
    if not config.allow_model_upload:
        return

    @app.callback(
        *[Output(i, p, allow_duplicate=(i, p) in DUPLICATED) for i, p in DIRECT],
        *[event_output(output, "model") for output in EVENTED],
        Output(ids.MODEL_UPLOAD, "contents"),
        Input(ids.MODEL_UPLOAD, "contents"),
        State(ids.MODEL_UPLOAD, "filename"),
        State(ids.MODEL_CLASS_NAMES, "value"),
        State(ids.SESSION, "data"),
        background=True,
        progress=[Output(ids.MODEL_PROGRESS, "value"), Output(ids.MODEL_PROGRESS, "label"),
                  Output(ids.MODEL_PROGRESS_TEXT, "children")],
        progress_default=[0, "", "Checking the model…"],
        running=[(Output(ids.MODEL_PANEL, "style"), {"display": "flex"}, {"display": "none"})],
        interval=config.job_interval_ms,
        prevent_initial_call=True,
    )  # fmt: skip
    def on_model_upload(set_progress: Callable[[tuple[Any, ...]], None], contents: str | None, filename: str | None,
                        names: str | None, session: str) -> tuple:  # fmt: skip
        out = handle_model_upload(contents, filename, names, session, config, get_store(config), set_progress)
        return (*as_events(out), None)
