"""The one writer of the mask figure: a new image draws it whole; the region outline, the opacity slider and a zoom or
pan elsewhere patch it.

Its inputs: the image store (a new image, or none after a model upload: the placeholder), the opacity slider, and the
event stores of the region callback (`{"shapes": outline}`) and of the linked zoom (`{"view": ranges}`), both plain
data (`ids.EVENT_SOURCES[ids.MASK_GRAPH]`). `decide_mask` (pure) turns what fired into a `MaskChange`; `mask_output`
draws it: the whole figure, or one `Patch` of the parts that changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dash import Dash, Input, Output, Patch, State, ctx, no_update

from dashboard.callbacks.events import decide
from dashboard.callbacks.view import view_patch
from dashboard.config import AppConfig
from dashboard.state.resources import get_session_adapter, get_store
from dashboard.state.store import StateStore
from dashboard.usecases import analysis
from dashboard.view import figures, ids
from dashboard.view.photos import photo_url

EMPTY_TEXT = "Pick a sample or upload an image"
DEFAULT_OPACITY = 0.45
EVENT_PARTS = ("shapes", "view")  # what the mask's event sources set


@dataclass(frozen=True)
class MaskChange:
    """What to do to the mask figure: draw it whole for `image` (`redraw`; None: the placeholder), or patch the
    label-map `opacity`, the outline `shapes` and the `view` (those not None)."""

    redraw: bool = False
    image: Mapping[str, Any] | None = None
    opacity: float | None = None
    shapes: list[dict[str, Any]] | None = None
    view: Mapping[str, Any] | None = field(default=None)


def decide_mask(
    triggered: Sequence[str],
    events: Mapping[str, Mapping[str, Any] | None],
    image_ref: Mapping[str, Any] | None,
    opacity: float | None,
) -> MaskChange | None:
    """The change for what fired (`triggered`: "image", "opacity" and / or the mask's event sources).

    A new image redraws the figure at the slider's opacity, whatever else fired with it; otherwise the opacity and
    the newest outline / view event are patched together; nothing to change (or no image to patch): None.
    """
    if "image" in triggered:
        return MaskChange(redraw=True, image=image_ref or None, opacity=opacity)
    if not image_ref:
        return None
    shapes, view = decide(EVENT_PARTS, [s for s in triggered if s in events], events)
    change = MaskChange(
        opacity=float(opacity) if "opacity" in triggered and opacity is not None else None,
        shapes=None if shapes is no_update else list(shapes or []),
        view=None if view is no_update or not view else view,
    )
    return None if change == MaskChange() else change


def mask_figure_for(
    image_ref: Mapping[str, Any], session: str, store: StateStore, class_names: Sequence[str], opacity: float | None
) -> Any:
    """The mask figure of a stored image (ValueError when its data has expired)."""
    _, labels, _ = analysis.image_data(store, session, image_ref["key"])
    return figures.mask_figure(
        photo_url(session, image_ref["key"]), labels, class_names,
        opacity=opacity if opacity is not None else DEFAULT_OPACITY, uirevision=image_ref["key"],
    )  # fmt: skip


def mask_output(change: MaskChange | None, session: str, store: StateStore, class_names: Sequence[str]) -> Any:
    """The figure (or `Patch`) drawing `change`; `no_update` for none (or an expired image: its message is shown by
    the image callback)."""
    if change is None:
        return no_update
    if change.redraw:
        if not change.image:
            return figures.placeholder_figure(EMPTY_TEXT)
        try:
            return mask_figure_for(change.image, session, store, class_names, change.opacity)
        except ValueError:
            return no_update
    patch = view_patch(change.view) if change.view else Patch()
    if change.opacity is not None:
        patch["data"][figures.LABELS_TRACE]["opacity"] = change.opacity
    if change.shapes is not None:
        patch["layout"]["shapes"] = change.shapes
    return patch


def register(app: Dash, config: AppConfig) -> None:
    """Register the mask figure's writer."""
    sources = ids.EVENT_SOURCES[ids.MASK_GRAPH]
    by_prop_id = {f"{ids.IMAGE}.data": "image", f"{ids.MASK_OPACITY}.value": "opacity",
                  **{f"{ids.event(ids.MASK_GRAPH, s)}.data": s for s in sources}}  # fmt: skip

    @app.callback(
        Output(ids.MASK_GRAPH, "figure"),
        Input(ids.IMAGE, "data"),
        Input(ids.MASK_OPACITY, "value"),
        *[Input(ids.event(ids.MASK_GRAPH, source), "data") for source in sources],
        State(ids.SESSION, "data"),
        prevent_initial_call=True,
    )
    def write_mask(image_ref: Any, opacity: Any, *rest: Any) -> Any:
        *values, session = rest
        triggered = [by_prop_id[item["prop_id"]] for item in ctx.triggered if item["prop_id"] in by_prop_id]
        change = decide_mask(triggered, dict(zip(sources, values, strict=True)), image_ref, opacity)
        if change is None:
            return no_update
        return mask_output(change, session, get_store(config), get_session_adapter(config, session).class_names)
