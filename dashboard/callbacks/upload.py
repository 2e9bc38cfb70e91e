"""Image source callbacks: upload, sample gallery, and resetting the pickers and the region for a newly loaded image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from dash import ALL, Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from dashboard import layout
from dashboard.callbacks.common import CLEAR, KEEP, Message, message_event, message_output, show
from dashboard.callbacks.events import emit, event_output
from dashboard.config import AppConfig, MiB
from dashboard.inputs import images
from dashboard.inputs.samples import list_samples
from dashboard.state.resources import get_session_adapter, get_store
from dashboard.state.store import StateStore
from dashboard.usecases import analysis
from dashboard.view import ids


def handle_upload(
    contents: str | None, filename: str | None, session: str, adapter: Any, store: StateStore, config: AppConfig
) -> tuple[Any, Message]:
    """(IMAGE store value, message) for an upload; a bad file leaves the current image in place."""
    if not contents:
        raise PreventUpdate
    name = filename or "upload"
    try:
        loaded = images.load_upload(contents, adapter.input_size, max_bytes=config.max_upload_bytes,
                                    max_pixels=config.max_upload_pixels, max_side=config.max_side)  # fmt: skip
    except images.ImageError as err:
        return no_update, show(f"Could not use “{name}”: {err}")
    image_ref = analysis.ingest_image(store, session, adapter, loaded.array, name=name, note=loaded.note,
                                      original_size=loaded.original_size)  # fmt: skip
    notes = [f"Loaded “{name}”: " + "; ".join(loaded.conversions) + "."] if loaded.conversions else []
    return image_ref, loaded_message(adapter, loaded.array, notes)


def handle_sample(name: str, session: str, adapter: Any, store: StateStore, config: AppConfig) -> tuple[Any, Message]:
    """(IMAGE store value, message) for a click on a gallery thumbnail."""
    path = list_samples(config.samples_dir).get(name)
    if path is None:
        return no_update, show(f"Unknown sample “{name}”.")
    try:
        loaded = images.load_file(path, adapter.input_size, max_side=config.max_side)
    except images.ImageError as err:
        return no_update, show(f"Could not load the sample “{name}”: {err}")
    ref = analysis.ingest_image(store, session, adapter, loaded.array, name=name, note=loaded.note,
                                original_size=loaded.original_size)  # fmt: skip
    return ref, loaded_message(adapter, loaded.array)


def loaded_message(adapter: Any, array: np.ndarray, notes: Sequence[str] = ()) -> Message:
    """The message after an image was loaded: `notes` (e.g. its conversions) and, while the model is still being
    prepared for the image's size, a note saying so; nothing to say clears the message."""
    notes = [*notes, analysis.preparing_note(adapter, array.shape[:2])]
    text = " ".join(note for note in notes if note)
    return show(text, "info") if text else CLEAR


def class_picker_options(labels: np.ndarray, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Options of the whole-class picker: the predicted classes with their share of the image."""
    counts = np.bincount(np.asarray(labels).ravel().astype(np.int64), minlength=len(class_names))
    total = max(int(np.asarray(labels).size), 1)
    return [{"label": f"{name} · {100 * counts[k] / total:.1f}%", "value": k}
            for k, name in enumerate(class_names) if counts[k] > 0]  # fmt: skip


def target_options(
    labels: np.ndarray, class_names: Sequence[str], region_counts: Mapping[int, int] | None = None
) -> list[dict[str, Any]]:
    """Options of the target-class dropdown: every class, with its share of the region or a note if absent."""
    present = set(np.unique(np.asarray(labels)).tolist())
    total = sum(region_counts.values()) if region_counts else 0
    options = []
    for k, name in enumerate(class_names):
        if k not in present:
            label = f"{name} (not predicted)"
        elif total and region_counts and region_counts.get(k):
            label = f"{name} · {100 * region_counts[k] / total:.0f}% of region"
        else:
            label = name
        options.append({"label": label, "value": k})
    return options


def handle_image(
    image_ref: Mapping[str, Any] | None, session: str, store: StateStore, class_names: Sequence[str]
) -> tuple[Any, ...]:
    """Outputs for a newly loaded image: pickers, cleared region and view, info text (the mask figure is drawn by its
    writer, `dashboard.callbacks.mask`)."""
    if not image_ref:
        raise PreventUpdate
    try:
        _, labels, _ = analysis.image_data(store, session, image_ref["key"])
    except ValueError as err:
        return (no_update,) * 8 + show(str(err))
    info = f"{image_ref['name']} · {image_ref['note']}" if image_ref.get("note") else image_ref["name"]
    pickers = (class_picker_options(labels, class_names), None, None, None, target_options(labels, class_names))
    # The message is left alone: the upload / sample callback that loaded the image has set it (e.g. a conversion note).
    return (*pickers, layout.SELECT_HINT, info, None, *KEEP)


def image_events(outputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """`handle_image`'s outputs with the region-related ones as the image source's events (region, target, region
    info, message); the mask figure, class picker, image info and view pass through."""
    picker_options, picker, region, target, target_opts, region_info, image_info, view, *message = outputs
    return (picker_options, picker, emit({"data": region}),
            emit({"value": target, "options": target_opts}), emit({"children": region_info}), image_info, view,
            message_event(tuple(message)))  # fmt: skip


def handle_refused(refused: Mapping[str, Any] | None, max_bytes: int) -> Message:
    """The message for a file the browser refused for its size (reported by assets/dashboard.js)."""
    if not refused or not refused.get("name"):
        raise PreventUpdate
    size = float(refused.get("size") or 0)
    limit = max_bytes / MiB
    return show(f"{refused['name']} was not uploaded: it is {size / MiB:.1f} MiB and the limit is {limit:.0f} MiB."
                " The app resizes every image to the model's input, so a smaller copy (or a crop) loses nothing "
                "it would use.", "danger")  # fmt: skip


def register(app: Dash, config: AppConfig) -> None:
    """Register the image-source callbacks."""

    @app.callback(
        event_output(ids.IMAGE, "upload"),
        Output(ids.UPLOAD, "contents"),
        message_output("upload"),
        Input(ids.UPLOAD, "contents"),
        State(ids.UPLOAD, "filename"),
        State(ids.SESSION, "data"),
        prevent_initial_call=True,
    )
    def on_upload(contents: str | None, filename: str | None, session: str) -> tuple[Any, ...]:
        adapter = get_session_adapter(config, session)
        image_ref, message = handle_upload(contents, filename, session, adapter, get_store(config), config)
        return (emit({"data": image_ref}), None, message_event(message))

    @app.callback(message_output("refused"), Input(ids.UPLOAD_REFUSED, "data"), prevent_initial_call=True)
    def on_refused(refused: Mapping[str, Any] | None) -> Any:
        return message_event(handle_refused(refused, int(config.max_upload_bytes)))

    @app.callback(
        event_output(ids.IMAGE, "sample"),
        message_output("sample"),
        Input(ids.sample(ALL), "n_clicks"),  # type: ignore[arg-type]
        State(ids.SESSION, "data"),
        prevent_initial_call=True,
    )
    def on_sample(clicks: list[int | None], session: str) -> tuple[Any, ...]:
        trigger = ctx.triggered_id
        if not isinstance(trigger, Mapping) or not any(clicks or []):
            raise PreventUpdate
        adapter = get_session_adapter(config, session)
        image_ref, message = handle_sample(str(trigger["index"]), session, adapter, get_store(config), config)
        return (emit({"data": image_ref}), message_event(message))

    @app.callback(
        Output(ids.CLASS_PICKER, "options"),
        Output(ids.CLASS_PICKER, "value", allow_duplicate=True),
        event_output(ids.REGION, "image"),
        event_output(ids.TARGET, "image"),
        event_output(ids.REGION_INFO, "image"),
        Output(ids.IMAGE_INFO, "children"),
        Output(ids.VIEW, "data", allow_duplicate=True),
        message_output("image"),
        Input(ids.IMAGE, "data"),
        State(ids.SESSION, "data"),
        prevent_initial_call=True,
    )
    def on_image(image_ref: Mapping[str, Any] | None, session: str) -> tuple[Any, ...]:
        names = get_session_adapter(config, session).class_names
        return image_events(handle_image(image_ref, session, get_store(config), names))
