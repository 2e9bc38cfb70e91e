"""The every-class overview: one card per predicted class of the shown image, for the chosen method at the layer
slider's layer, computed in one request (`dashboard.usecases.overview`).

It writes only its own outputs (the overview grid and its note). Its graphs are heatmap graphs
(`ids.overview_graph`), so zoom and pan are linked with every other figure by `callbacks.view`, and the heatmap
opacity slider reaches them; a new layer, method or image redraws the grid from the stored maps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dash import Dash, Input, Output, State

from dashboard.callbacks.explain import head_layers, pick_layer
from dashboard.config import AppConfig
from dashboard.state.resources import MethodInfo, get_session_adapter, get_store, methods
from dashboard.state.store import StateStore
from dashboard.usecases import analysis, overview
from dashboard.view import ids
from dashboard.view.components import card_parts, hint
from dashboard.view.figures import class_colours, legend_colour
from dashboard.view.panels import OVERVIEW_HINT, overview_card
from dashboard.view.photos import photo_url


def handle_overview(
    image_ref: Mapping[str, Any] | None,
    method: Any,
    layer_index: int | None,
    session: str,
    opacity: float | None,
    view: Mapping[str, Any] | None,
    *,
    adapter: Any,
    store: StateStore,
    infos: Sequence[MethodInfo],
) -> tuple[Any, str]:
    """(grid children, note) of the overview for the shown image and the chosen method."""
    if not method:
        return hint(OVERVIEW_HINT), ""
    if not image_ref:
        return hint("Load an image first: pick a sample or upload one."), ""
    info = next((i for i in infos if i.name == method), None)
    if info is None or info.slow:
        return hint(OVERVIEW_HINT), f"“{method}” is not offered for the overview (fast methods only)."
    try:
        entries = overview.compute_overview(adapter, store, session, image_ref, info.name)
    except ValueError as err:
        return hint(str(err)), str(err)
    layer = pick_layer(adapter.conv_layers, layer_index) if info.is_cam else None
    image_uri, head = photo_url(session, image_ref["key"]), head_layers(adapter)
    colours = class_colours(adapter.class_names)
    cards, seconds = [], 0.0
    for question, summary in entries:
        heatmap, used = analysis.layer_map(store, session, question, summary, layer)
        parts = card_parts(info, summary, heatmap, used, adapter.layer_shapes, image_uri,
                           opacity=0.8 if opacity is None else float(opacity), view=view,
                           outline=analysis.region_outline(store, session, question["region"]),
                           uirevision=str(image_ref["key"]), head_layers=head)  # fmt: skip
        target = int(question["target"])
        name = adapter.class_names[target]
        cards.append(overview_card(target, name, legend_colour(colours[target]), parts))
        seconds += float(summary["seconds"])
    shared = " (one forward pass shared by every class)" if info.is_cam else ""
    note = f"{info.label} for {len(cards)} predicted classes, each its whole region: {seconds * 1000:.0f} ms{shared}."
    return cards, note


def register(app: Dash, config: AppConfig) -> None:
    """Register the overview callback."""

    @app.callback(
        Output(ids.OVERVIEW_GRID, "children"),
        Output(ids.OVERVIEW_NOTE, "children"),
        Input(ids.IMAGE, "data"),
        Input(ids.OVERVIEW_METHOD, "value"),
        Input(ids.LAYER, "value"),
        State(ids.SESSION, "data"),
        State(ids.HEATMAP_OPACITY, "value"),
        State(ids.VIEW, "data"),
        prevent_initial_call=True,
    )
    def on_overview(image_ref, method, layer_index, session, opacity, view):
        return handle_overview(image_ref, method, layer_index, session, opacity, view,
                               adapter=get_session_adapter(config, session), store=get_store(config),
                               infos=methods())  # fmt: skip
