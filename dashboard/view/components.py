"""Reusable Dash components: heatmap cards, placeholders, the sample gallery, alerts.

Builders here are pure: they take arrays, metadata and figure objects and return components, so the callbacks that
use them stay thin and the cards look the same whether fast methods or background jobs produced them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dash_bootstrap_components as dbc
import numpy as np
from dash import dcc, html

from dashboard.state.resources import MethodInfo
from dashboard.view import ids
from dashboard.view.figures import View, heatmap_figure
from dashboard.view.render import (
    SIGNED_COLORSCALE,
    UNSIGNED_COLORSCALE,
    gradient_css,
    heatmap_uri,
    is_blank,
    scale_ticks,
)

TIMES = "\u00d7"
HEATMAP_HEIGHT = 244  # px; responsive graphs need an explicit height (their default inline style is 100%)
FAMILY_LABELS = {"cam": "CAM", "gradient": "gradient", "shap": "SHAP"}
HEATMAP_GRAPH_CONFIG = {
    "displaylogo": False,
    "scrollZoom": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines", "hoverClosestCartesian",
                               "hoverCompareCartesian", "sendDataToCloud"],
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "toImageButtonOptions": {"format": "png", "scale": 3},
}  # fmt: skip


@dataclass(frozen=True)
class CardParts:
    """The changing parts of one heatmap card."""

    figure: Any
    subtitle: str
    note: list[Any]
    ticks: list[str]  # the colour bar's tick labels (raw values from lo to hi)
    signed: bool


def format_seconds(seconds: float) -> str:
    """'< 1 ms' (e.g. CAM variants sharing one backward pass), '12 ms' below one second, else '3.4 s'."""
    if seconds < 0.0005:
        return "< 1 ms"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def layer_label(layer: str, layer_shapes: Mapping[str, Sequence[Any]]) -> str:
    """'name · 32x32x64' with typographic multiplication signs (unknown sizes shown as '?')."""
    shape = layer_shapes.get(layer)
    if not shape:
        return layer
    return f"{layer} · " + TIMES.join("?" if v is None else str(v) for v in shape)


def card_parts(
    info: MethodInfo,
    summary: Mapping[str, Any],
    heatmap: np.ndarray,
    layer: str | None,
    layer_shapes: Mapping[str, Sequence[Any]],
    image_uri: str,
    *,
    opacity: float,
    view: View | None,
    outline: Sequence[str],
    uirevision: str,
    head_layers: Collection[str] = (),
) -> CardParts:
    """Figure, subtitle and footer note of a heatmap card for one stored result at one layer (`head_layers`: the
    model's classifier-head layers, where a CAM card says why its map looks as it does)."""
    overlay, (lo, hi) = heatmap_uri(heatmap, info.signed)
    shape = tuple(np.asarray(heatmap).shape[:2])
    figure = heatmap_figure(image_uri, overlay, shape, opacity=opacity, outline=outline, view=view,
                            uirevision=uirevision)  # fmt: skip
    if info.is_cam and layer:
        subtitle = "layer " + layer_label(layer, layer_shapes)
    else:
        subtitle = "signed attribution" if info.signed else "attribution magnitude"
    at_head = bool(info.is_cam and layer and layer in head_layers)
    return CardParts(figure=figure, subtitle=subtitle, note=card_note(summary, heatmap, logits_layer=at_head),
                     ticks=scale_ticks(lo, hi), signed=info.signed)  # fmt: skip


def tick_spans(ticks: Sequence[str]) -> list[Any]:
    """The tick labels of a colour bar, each at its fixed position (evenly spaced; the ends flush with the bar)."""
    last = max(len(ticks) - 1, 1)
    return [html.Span(text, style={"left": f"{100 * k / last:g}%"}) for k, text in enumerate(ticks)]


def colour_bar(ticks: Sequence[str], signed: bool, scale_id: Any = None) -> html.Div:
    """An HTML colour bar under a heatmap: the overlay's colour scale and its raw-value ticks. (Not a Plotly colour
    bar: a new range there redraws the whole figure.) `scale_id`: the id of the ticks, which the layer slider sets."""
    gradient = gradient_css(SIGNED_COLORSCALE if signed else UNSIGNED_COLORSCALE)
    ticks_props = {"id": scale_id} if scale_id is not None else {}
    return html.Div([html.Div(className="hm-scale-ramp", style={"background": gradient}),
                     html.Div(tick_spans(ticks), className="hm-scale-ticks", **ticks_props)],
                    className="hm-scale", title="colour scale of the raw map values")  # fmt: skip


LOGITS_LAYER_NOTE = (
    "This is the logits layer: the score's gradient here is the selected region itself, so Grad-CAM shows the "
    "class-logit map (blank where the class's logits are negative) and HiResCAM / LayerCAM show the region. Move the "
    "layer slider down to see what the network used."
)


def card_note(summary: Mapping[str, Any], heatmap: np.ndarray, logits_layer: bool = False) -> list[Any]:
    """Footer text: compute time, score, additivity, a warning for blank maps, and (`logits_layer`) why a CAM at the
    logits layer looks as it does."""
    parts: list[Any] = [html.Span(format_seconds(summary["seconds"]), className="hm-time", title="compute time"),
                        html.Span(f"S = {summary['score']:.3g}", title="region score: mean target logit")]  # fmt: skip
    baseline = summary.get("baseline_score")
    if baseline is not None:
        total = summary.get("heatmap_sum")
        total = float(np.sum(heatmap)) if total is None else float(total)
        parts.append(html.Span(f"Σ = {total:.3g} vs S \u2212 S\u2080 = {summary['score'] - baseline:.3g}",
                               title="additivity: the map sums to the score minus the baseline score"))  # fmt: skip
    if is_blank(heatmap):
        parts.append(html.Span("map is zero everywhere", className="text-warning"))
    if logits_layer:
        parts.append(html.Span(LOGITS_LAYER_NOTE, className="logits-layer-note text-muted"))
    return parts


def method_badges(info: MethodInfo) -> list[Any]:
    """Small badges naming the family and flagging background (slow) methods."""
    badges: list[Any] = [dbc.Badge(FAMILY_LABELS.get(info.family, info.family), color="secondary", className="me-1")]
    if info.slow:
        badges.append(dbc.Badge("job", color="info", className="me-1", title="runs as a background job"))
    return badges


def heatmap_card(info: MethodInfo, parts: CardParts, order: int) -> html.Div:
    """One card of the heatmap grid: title, subtitle (layer), the heatmap figure and a footer note."""
    return html.Div(
        dbc.Card(
            [
                dbc.CardHeader(
                    [
                        html.Div([html.Span(info.label, className="hm-title"), *method_badges(info)],
                                 className="hm-head"),
                        html.Div(parts.subtitle, id=ids.heatmap_subtitle(info.name), className="hm-subtitle"),
                    ]
                ),
                dcc.Graph(id=ids.heatmap_graph(info.name), figure=parts.figure, config=HEATMAP_GRAPH_CONFIG,
                          className="hm-graph", responsive=True,
                          style={"height": f"{HEATMAP_HEIGHT}px"}),
                colour_bar(parts.ticks, parts.signed, ids.heatmap_scale(info.name)),
                html.Div(parts.note, id=ids.heatmap_note(info.name), className="hm-note"),
            ],
            className="hm-card-inner h-100",
        ),
        className="hm-card",
        style={"order": order},
        **{"data-method": info.name},
    )  # fmt: skip


def placeholder_card(info: MethodInfo, text: str, order: int, *, busy: bool = True) -> html.Div:
    """A card standing in for a method whose map is not there (yet)."""
    body = [dbc.Spinner(size="sm", color="secondary", spinner_class_name="me-2")] if busy else []
    return html.Div(
        dbc.Card(
            [
                dbc.CardHeader(html.Div([html.Span(info.label, className="hm-title"), *method_badges(info)],
                                        className="hm-head")),
                html.Div([*body, html.Span(text)], className="hm-placeholder"),
            ],
            className="hm-card-inner h-100",
        ),
        className="hm-card hm-card-pending" if busy else "hm-card hm-card-failed",
        style={"order": order},
        **{"data-method": info.name},
    )  # fmt: skip


def failed_card(info: MethodInfo, text: str, order: int) -> html.Div:
    """A card reporting that a method failed for this question."""
    return placeholder_card(info, text, order, busy=False)


def gallery(samples: Sequence[tuple[str, str]]) -> html.Div:
    """Thumbnails of the bundled samples; samples are (name, thumbnail data URI)."""
    if not samples:
        return html.Div("No sample images bundled for this model.", className="text-muted small")
    return html.Div(
        [
            html.Button(html.Img(src=uri, alt=name), id=ids.sample(name), n_clicks=0, title=name,
                        className="sample-thumb", type="button")
            for name, uri in samples
        ],
        className="sample-gallery",
    )  # fmt: skip


def hint(text: str) -> html.Div:
    """A muted full-width hint shown in the grid when there is nothing to show."""
    return html.Div(text, className="grid-hint")
