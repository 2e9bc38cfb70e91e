"""The page parts of the segmentation-native questions: the ground-truth upload, the errors card (per-class IoU, the
error regions, "Explain this error") and the every-class overview grid with its cards.

Pure builders (components from plain values), like `view.components`. Overview cards use heatmap-graph ids
(`ids.overview_graph`), so the linked zoom and the heatmap opacity slider reach them as they reach the method cards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.state.resources import MethodInfo
from dashboard.view import ids
from dashboard.view.components import HEATMAP_GRAPH_CONFIG, HEATMAP_HEIGHT, CardParts, colour_bar, hint

TRUTH_HINT = "Optional: a ground-truth PNG for this image (class indices, or painted in the class colours)."
OVERVIEW_HINT = "Choose a method to explain every predicted class of the image at once (its whole region each)."
ERRORS_HINT = "Upload the image's ground truth to see per-class IoU and the model's errors."


def truth_upload(max_bytes: int) -> html.Div:
    """The ground-truth upload under the image upload, with its info line."""
    return html.Div(
        [
            dcc.Upload(
                id=ids.TRUTH_UPLOAD,
                children=html.Div([html.Span("Ground truth: drop a PNG or ", className="text-muted"),
                                   html.A("browse", className="upload-link")]),
                max_size=max_bytes, multiple=False, className="upload-area upload-truth",
            ),
            html.Div(TRUTH_HINT, id=ids.TRUTH_INFO, className="image-info"),
        ],
        # a file over max_size is refused by the browser before any callback runs: assets/dashboard.js reads the cap
        # from here and reports the refusal, which the message area explains (as for the image upload)
        className="mt-2 upload-cap", **{"data-max-bytes": str(max_bytes)},
    )  # fmt: skip


def errors_card() -> dbc.Card:
    """Per-class IoU against the ground truth, the error-region picker and "Explain this error"."""
    return dbc.Card(
        [
            dbc.CardHeader("The model's errors"),
            dbc.CardBody(
                [
                    html.Div(hint(ERRORS_HINT), id=ids.ERRORS_TABLE),
                    dbc.Row(
                        [
                            dbc.Col(dcc.Dropdown(id=ids.ERROR_REGION, options=[], value=None, clearable=True,
                                                 placeholder="Select an error region…"), md=8),
                            dbc.Col(dbc.Button("Explain this error", id=ids.EXPLAIN_ERROR, n_clicks=0, size="sm",
                                               color="primary", className="w-100",
                                               title="Region: the error pixels; target: the class predicted there; "
                                                     "rather than: the class they truly are"), md=4),
                        ],
                        className="g-2 mt-2 align-items-center",
                    ),
                ]
            ),
        ],
        className="mb-3",
    )  # fmt: skip


def _iou_text(iou: float) -> str:
    return "n/a" if iou is None or not math.isfinite(iou) else f"{iou:.3f}"


def errors_table(rows: Sequence[Mapping[str, Any]]) -> Any:
    """The per-class table: IoU and true-positive / false-positive / false-negative pixels."""
    if not rows:
        return hint("No labelled pixels to compare.")
    head = html.Thead(html.Tr([html.Th(h) for h in ("class", "IoU", "TP px", "FP px", "FN px")]))
    body = html.Tbody([
        html.Tr([html.Td(row["name"]), html.Td(_iou_text(row["iou"]), className="iou"), html.Td(row["tp"]),
                 html.Td(row["fp"]), html.Td(row["fn"])], **{"data-class": str(row["class"])})
        for row in rows
    ])  # fmt: skip
    return dbc.Table([head, body], size="sm", bordered=False, hover=True, className="errors-table mb-0")


def overview_section(infos: Sequence[MethodInfo]) -> dbc.Card:
    """The every-class overview: a method picker (fast methods; CAMs share one forward pass) and the grid."""
    options = [{"label": info.label, "value": info.name} for info in infos if not info.slow]
    return dbc.Card(
        [
            dbc.CardHeader(html.Div([html.Span("Every class at once"),
                                     html.Span("one card per predicted class · CAM layer from the slider",
                                               className="header-hint")],
                                    className="d-flex justify-content-between")),
            dbc.CardBody(
                [
                    dcc.Dropdown(id=ids.OVERVIEW_METHOD, options=options, value=None, clearable=True,
                                 placeholder="Method for the overview…", className="overview-method"),
                    html.Div(id=ids.OVERVIEW_NOTE, className="region-info"),
                    html.Div(hint(OVERVIEW_HINT), id=ids.OVERVIEW_GRID, className="heatmap-grid overview-grid"),
                ]
            ),
        ],
        className="mb-3 mt-3",
    )  # fmt: skip


def overview_card(target: int, class_name: str, colour: str, parts: CardParts) -> html.Div:
    """One card of the overview grid: the class (with its mask colour), the heatmap at the layer, a footer note."""
    return html.Div(
        dbc.Card(
            [
                dbc.CardHeader([html.Div([html.Span("■ ", style={"color": colour}), html.Span(class_name,
                                          className="hm-title")], className="hm-head"),
                                html.Div(parts.subtitle, className="hm-subtitle")]),
                dcc.Graph(id=ids.overview_graph(target), figure=parts.figure, config=HEATMAP_GRAPH_CONFIG,
                          className="hm-graph", responsive=True, style={"height": f"{HEATMAP_HEIGHT}px"}),
                colour_bar(parts.ticks, parts.signed),
                html.Div(parts.note, className="hm-note"),
            ],
            className="hm-card-inner h-100",
        ),
        className="ov-card",
        **{"data-class": str(target)},
    )  # fmt: skip
