"""Linked zoom and pan: a zoom, pan or reset on any figure (mask or heatmap) is applied to all the others.

The view is also kept in the `VIEW` store so that cards created later open at the same view. Figures are updated with
`Patch`es of their axis ranges only, and their `uirevision` keeps the view across later patches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dash import ALL, Dash, Input, Output, Patch, State, ctx, no_update
from dash.exceptions import PreventUpdate

from dashboard.callbacks.events import emit, event_output
from dashboard.config import AppConfig
from dashboard.view import figures, ids

MASK = "__mask__"


def view_patch(view: Mapping[str, Sequence[float]]) -> Patch:
    """A figure patch setting the axis ranges of `view`."""
    patch = Patch()
    if "x" in view:
        patch["layout"]["xaxis"]["range"] = list(view["x"])
        patch["layout"]["xaxis"]["autorange"] = False
    if "y" in view:
        patch["layout"]["yaxis"]["range"] = list(view["y"])
        patch["layout"]["yaxis"]["autorange"] = False
    return patch


def handle_view(
    source: str,
    relayout: Mapping[str, Any] | None,
    image_ref: Mapping[str, Any] | None,
    current: Mapping[str, Any] | None,
    graph_methods: Sequence[str],
) -> tuple[Any, list[Any], Any]:
    """(mask patch, heatmap patches, new view) for a relayout event of `source` (MASK or a method name)."""
    if not image_ref:
        raise PreventUpdate
    shape = (int(image_ref["height"]), int(image_ref["width"]))
    change = figures.view_from_relayout(relayout, shape)
    if change is None:
        raise PreventUpdate
    view = {**figures.full_view(shape), **(current or {}), **change}
    if current and all(view.get(k) == current.get(k) for k in ("x", "y")):
        raise PreventUpdate  # already in sync (e.g. the echo of our own patch)
    mask_patch = no_update if source == MASK else view_patch(view)
    heatmaps = [no_update if method == source else view_patch(view) for method in graph_methods]
    return mask_patch, heatmaps, view


def register(app: Dash, config: AppConfig) -> None:
    """Register the linked zoom/pan callback."""

    @app.callback(
        event_output(ids.MASK_GRAPH, "view"),
        Output(ids.heatmap_graph(ALL), "figure", allow_duplicate=True),  # type: ignore[arg-type]
        Output(ids.VIEW, "data", allow_duplicate=True),
        Input(ids.MASK_GRAPH, "relayoutData"),
        Input(ids.heatmap_graph(ALL), "relayoutData"),  # type: ignore[arg-type]
        State(ids.IMAGE, "data"),
        State(ids.VIEW, "data"),
        prevent_initial_call=True,
    )
    def on_relayout(mask_relayout, heatmap_relayouts, image_ref, current):
        trigger = ctx.triggered_id
        methods = [item["id"]["method"] for item in ctx.outputs_list[1]]
        if trigger == ids.MASK_GRAPH:
            source, relayout = MASK, mask_relayout
        elif isinstance(trigger, Mapping):
            source = str(trigger["method"])
            inputs = [item["id"]["method"] for item in ctx.inputs_list[1]]
            relayout = heatmap_relayouts[inputs.index(source)] if source in inputs else None
        else:
            raise PreventUpdate
        mask_patch, heatmaps, view = handle_view(source, relayout, image_ref, current, methods)
        return (no_update if mask_patch is no_update else emit({"view": view}), heatmaps, view)
