"""The layer slider: swap every CAM card to another layer's stored maps, without a model call and mostly without a
server round trip.

Three callbacks share the work:

- `segx.applyCachedLayer` (clientside, `assets/dashboard.js`): on a slider move it looks the new layer up in the
  `LAYER_MAPS` store, the browser's cache of prefetched layers. On a hit it draws the new overlays at once (a
  `Plotly.react` on each graph that changes only the overlay layout image) and returns the cards' patches (the overlay
  source, the colour bar's ticks, the subtitle, the note, the layer info), so the figure props hold what is drawn and
  Dash's own redraw finds nothing left to do. It writes `LAYER_STATE`: the slider
  position, whether it showed it (`shown`), and which layers the cache holds for the current question (`have`).
- `on_layer` (server, `handle_layer`): the miss path. It runs after the clientside callback and returns patches only
  when that did not show the layer (a jump past the prefetched ones, a client without the clientside callback).
- `on_prefetch` (server, `handle_prefetch`): keeps the cache at the layers within `PREFETCH_RADIUS` of the slider:
  a new question gets a fresh cache, a move only the layers it lacks (a `Patch`), and layers far behind are dropped.
  After a miss it waits for the miss path's answer (the layer info it writes), so that a miss's request does not
  share the server with the encoding of a window of layers.

The cache never travels back to the server (only the clientside callback reads it); `LAYER_STATE` is small. What it
costs per question: the window's 2 * PREFETCH_RADIUS + 1 layers (up to two more, the one step of slack kept on either
side) x the question's CAM cards, one overlay PNG data URI each. A palette PNG of a 512x512 map is ~35-200 kB (four CAM
cards of the DeepLabV3+ benchmark at one layer: 204, 39, 178 and 35 kB, ~0.46 MB a layer), so with the radius 2 the
browser holds ~2.3 MB (at most ~3.2 MB). A step costs the server one new layer's PNGs (~7 ms each at 512x512) and
their transfer, off the path to the shown map; a jump past the window takes the miss path (one request).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from dash import ALL, ClientsideFunction, Dash, Input, Output, Patch, State, ctx, no_update
from dash.exceptions import PreventUpdate

from dashboard.callbacks.explain import head_layers, methods_of, pick_layer
from dashboard.config import AppConfig
from dashboard.state.resources import MethodInfo, get_session_adapter, get_store, methods
from dashboard.state.store import StateStore, content_key
from dashboard.usecases import analysis
from dashboard.view import ids
from dashboard.view.components import card_note, layer_label, tick_spans
from dashboard.view.figures import OVERLAY_IMAGE
from dashboard.view.render import heatmap_uri, scale_ticks

PREFETCH_RADIUS = 2  # layers on either side of the slider kept in the browser's cache


def results_key(results: Mapping[str, Any]) -> str:
    """The cache key of one question's cards (question and methods)."""
    return content_key(json.dumps(results, sort_keys=True, default=str))


def layer_maps(
    store: StateStore,
    session: str,
    results: Mapping[str, Any] | None,
    methods_wanted: Collection[str],
    layer: str,
    *,
    layer_shapes: Mapping[str, Sequence[Any]],
    infos: Sequence[MethodInfo],
    head: Collection[str] = (),
) -> dict[str, dict[str, Any]]:
    """{method: {source, scale, subtitle, note}} of the CAM cards among `methods_wanted` at `layer`: the overlay PNG,
    the colour bar's tick labels, the card's subtitle and its note, from the stored maps (no model call)."""
    question = (results or {}).get("question")
    if not question:
        return {}
    by_name = {info.name: info for info in infos}
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(methods_wanted):
        info = by_name.get(name)
        summary = analysis.stored_result(store, session, question, name) if info and info.is_cam else None
        if summary is None:
            continue
        heatmap, used = analysis.layer_map(store, session, question, summary, layer)
        overlay, (lo, hi) = heatmap_uri(heatmap, info.signed)
        out[name] = {
            "source": overlay,
            "scale": tick_spans(scale_ticks(lo, hi)),
            "subtitle": "layer " + layer_label(used or layer, layer_shapes),
            "note": card_note(summary, heatmap, logits_layer=(used or layer) in head),
        }
    return out


def overlay_patch(source: str) -> Patch:
    """A heatmap figure patch showing another overlay (layout image `OVERLAY_IMAGE`): only the layout images redraw."""
    patch = Patch()
    patch["layout"]["images"][OVERLAY_IMAGE]["source"] = source
    return patch


def shown_by_client(state: Mapping[str, Any] | None, results: Mapping[str, Any] | None, layer_index: Any) -> bool:
    """Whether the clientside callback already showed the slider's layer for these cards."""
    return bool(state and results and state.get("results") == results and state.get("shown") is not None
                and state.get("shown") == layer_index)  # fmt: skip


def handle_layer(
    layer_index: int | None,
    results: Mapping[str, Any] | None,
    session: str,
    outputs: Sequence[Sequence[str]],
    *,
    conv_layers: Sequence[str],
    layer_shapes: Mapping[str, Sequence[Any]],
    store: StateStore,
    infos: Sequence[MethodInfo],
    head: Collection[str] = (),
    state: Mapping[str, Any] | None = None,
) -> tuple[list[Any], list[Any], list[Any], list[Any], Any]:
    """(figure patches, subtitles, notes, colour-bar ticks, layer info) swapping every CAM card to the slider's layer
    from stored maps (no model call). `outputs`: the methods of the four card outputs (graphs, subtitles, notes,
    scales). Nothing changes when the clientside callback already showed the layer (`state`)."""
    graph_methods, subtitle_methods, note_methods, scale_methods = outputs
    if shown_by_client(state, results, layer_index):
        raise PreventUpdate
    layer = pick_layer(conv_layers, layer_index)
    info_text = layer_label(layer, layer_shapes) if layer else "no conv layers"
    maps = layer_maps(store, session, results, graph_methods, layer, layer_shapes=layer_shapes, infos=infos,
                      head=head) if layer else {}  # fmt: skip

    def each(names: Sequence[str], part: str) -> list[Any]:
        return [maps[m][part] if m in maps else no_update for m in names]

    figures = [overlay_patch(maps[m]["source"]) if m in maps else no_update for m in graph_methods]
    return (
        figures,
        each(subtitle_methods, "subtitle"),
        each(note_methods, "note"),
        each(scale_methods, "scale"),
        info_text,
    )


def prefetch_window(index: int, n_layers: int, radius: int = PREFETCH_RADIUS) -> list[int]:
    """The layer indices kept in the browser's cache around slider position `index` (clamped to the layers)."""
    if n_layers <= 0:
        return []
    index = min(max(int(index), 0), n_layers - 1)
    return list(range(max(0, index - radius), min(n_layers, index + radius + 1)))


def handle_prefetch(
    state: Mapping[str, Any] | None,
    results: Mapping[str, Any] | None,
    session: str,
    *,
    conv_layers: Sequence[str],
    layer_shapes: Mapping[str, Sequence[Any]],
    store: StateStore,
    infos: Sequence[MethodInfo],
    head: Collection[str] = (),
    radius: int = PREFETCH_RADIUS,
) -> Any:
    """The new `LAYER_MAPS` cache (a new question: every layer of the window) or a `Patch` of it (a move: the layers
    it lacks added, those outside the window dropped), for the slider position and cache contents in `state`."""
    if not state or not results or not results.get("question") or state.get("results") != results:
        raise PreventUpdate  # no cards, or a state of other cards
    index = state.get("index")
    if index is None or not conv_layers:
        raise PreventUpdate
    key = results_key(results)
    window = prefetch_window(int(index), len(conv_layers), radius)

    def entry(i: int) -> dict[str, Any]:
        layer = conv_layers[i]
        maps = layer_maps(store, session, results, results.get("methods") or [], layer, layer_shapes=layer_shapes,
                          infos=infos, head=head)  # fmt: skip
        return {"key": key, "info": layer_label(layer, layer_shapes), "maps": maps}

    if state.get("key") != key:
        return {"key": key, "results": results, "layers": {str(i): entry(i) for i in window}}
    have = {int(i) for i in state.get("have") or []}
    missing = [i for i in window if i not in have]
    stale = sorted(have - set(prefetch_window(int(index), len(conv_layers), radius + 1)))
    if not missing and not stale:
        raise PreventUpdate
    patch = Patch()
    for i in missing:
        patch["layers"][str(i)] = entry(i)
    for i in stale:
        del patch["layers"][str(i)]
    return patch


def miss_pending(state: Mapping[str, Any] | None, triggered: Collection[str]) -> bool:
    """Whether the browser missed the slider's layer and the miss path has not answered yet: the prefetch then waits
    (Dash sends both requests at once, and a window of PNGs would slow the miss's answer several times)."""
    return bool(state) and state.get("shown") is None and f"{ids.LAYER_INFO}.children" not in set(triggered)


CARD_OUTPUTS = (
    (ids.heatmap_graph, "figure"),
    (ids.heatmap_subtitle, "children"),
    (ids.heatmap_note, "children"),
    (ids.heatmap_scale, "children"),
)


def _card_outputs() -> list[Output]:
    return [Output(make(ALL), prop, allow_duplicate=True) for make, prop in CARD_OUTPUTS]  # type: ignore[arg-type]


def register(app: Dash, config: AppConfig) -> None:
    """Register the layer slider's clientside swap, its server miss path and the prefetch."""
    app.clientside_callback(
        ClientsideFunction(namespace="segx", function_name="applyCachedLayer"),
        *_card_outputs(),
        Output(ids.LAYER_INFO, "children", allow_duplicate=True),
        Output(ids.LAYER_STATE, "data"),
        Input(ids.LAYER, "value"),
        Input(ids.RESULTS, "data"),
        State(ids.LAYER_MAPS, "data"),
        State(ids.LAYER_STATE, "data"),
        prevent_initial_call=True,
    )

    @app.callback(
        *_card_outputs(),
        Output(ids.LAYER_INFO, "children", allow_duplicate=True),
        Input(ids.LAYER, "value"),
        Input(ids.LAYER_STATE, "data"),
        State(ids.RESULTS, "data"),
        State(ids.SESSION, "data"),
        prevent_initial_call=True,
    )
    def on_layer(layer_index, state, results, session):
        if f"{ids.LAYER}.value" not in {t["prop_id"] for t in ctx.triggered}:
            raise PreventUpdate  # new cards (they are drawn at the slider's layer), not a move
        adapter = get_session_adapter(config, session)
        outputs = [methods_of(o) for o in ctx.outputs_list[:4]]
        return handle_layer(layer_index, results, session, outputs, conv_layers=adapter.conv_layers,
                            layer_shapes=adapter.layer_shapes, store=get_store(config), infos=methods(),
                            head=head_layers(adapter), state=state)  # fmt: skip

    @app.callback(
        Output(ids.LAYER_MAPS, "data"),
        Input(ids.LAYER_STATE, "data"),
        Input(ids.LAYER_INFO, "children"),  # the miss path has answered (see `miss_pending`)
        State(ids.RESULTS, "data"),
        State(ids.SESSION, "data"),
        prevent_initial_call=True,
    )
    def on_prefetch(state, _info, results, session):
        if miss_pending(state, [t["prop_id"] for t in ctx.triggered]):
            raise PreventUpdate  # the miss path's answer (its layer info) triggers this again
        adapter = get_session_adapter(config, session)
        return handle_prefetch(state, results, session, conv_layers=adapter.conv_layers,
                               layer_shapes=adapter.layer_shapes, store=get_store(config), infos=methods(),
                               head=head_layers(adapter))  # fmt: skip
