"""The page layout, built from a `PageContext` (model facts + method metadata) so it can be tested without a model.

Left: image source (upload + sample gallery, the optional ground-truth upload), the mask figure with the region
controls, and the model's errors. Right: the method checklist, the layer slider, the background-job panel, the
responsive grid of heatmap cards and the every-class overview. Stores hold keys only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.state.resources import MethodInfo
from dashboard.trust.layout import trust_section, trust_stores
from dashboard.view import ids
from dashboard.view.components import TIMES, gallery, hint, layer_label, method_badges
from dashboard.view.figures import placeholder_figure
from dashboard.view.panels import errors_card, overview_section, truth_upload

MASK_GRAPH_CONFIG = {
    "displaylogo": False,
    "scrollZoom": True,
    "modeBarButtonsToAdd": ["select2d", "lasso2d"],
    "modeBarButtonsToRemove": [
        "autoScale2d",
        "toggleSpikelines",
        "hoverClosestCartesian",
        "hoverCompareCartesian",
        "sendDataToCloud",
    ],
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "toImageButtonOptions": {"format": "png", "scale": 3},
}
SELECT_HINT = "Select a region on the mask (box, lasso or click) or pick a whole class to explain it."


@dataclass(frozen=True)
class PageContext:
    """Everything the layout shows about the model and the methods."""

    model_name: str
    class_names: Sequence[str]
    conv_layers: Sequence[str]
    layer_shapes: Mapping[str, Sequence[Any]]
    input_size: tuple[int, int] | None
    methods: Sequence[MethodInfo]
    samples: Sequence[tuple[str, str]] = ()
    default_methods: Sequence[str] = ()
    max_upload_bytes: int = 10 * 1024 * 1024
    session: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    allow_model_upload: bool = False
    max_model_bytes: int = 50 * 1024 * 1024
    default_layer: str | None = None  # the layer slider's starting position (default: the last layer)


def skeleton_context() -> PageContext:
    """A model-free context: the layout built from it has every component id (for Dash's callback validation)."""
    return PageContext(model_name="", class_names=[], conv_layers=[], layer_shapes={}, input_size=None, methods=[],
                       allow_model_upload=True)


def default_methods(methods: Sequence[MethodInfo], gradients: bool = True) -> list[str]:
    """Methods ticked on page load: every fast method (they cost milliseconds). On a black-box model (`gradients`
    False) no fast method can run, so the methods that need only forward passes (SHAP Partition) are ticked instead:
    the first selection then shows an explanation, not only cards saying why the gradient methods cannot run."""
    if gradients:
        return [m.name for m in methods if not m.slow]
    return [m.name for m in methods if not m.requires_gradients]


def layer_marks(conv_layers: Sequence[str]) -> dict[int, str]:
    """Short slider marks (1-based layer numbers; every other one when there are many layers)."""
    step = 1 if len(conv_layers) <= 16 else 2 if len(conv_layers) <= 32 else max(1, len(conv_layers) // 16)
    marks = {i: str(i + 1) for i in range(0, len(conv_layers), step)}
    if conv_layers:
        marks[len(conv_layers) - 1] = str(len(conv_layers))
    return marks


def model_facts(model_name: str, input_size: tuple[int, int] | None, classes: int, conv_layers: int) -> str:
    """One line about the model served, for the title bar."""
    size = "any size" if input_size is None else f"{input_size[0]}{TIMES}{input_size[1]}"
    return f"{model_name} · input {size} · {classes} classes · {conv_layers} conv layers"


def navbar(ctx: PageContext) -> dbc.Navbar:
    """Title bar with the model facts."""
    facts = model_facts(ctx.model_name, ctx.input_size, len(ctx.class_names), len(ctx.conv_layers))
    return dbc.Navbar(
        dbc.Container(
            [
                html.Div([html.Span("◧", className="brand-mark"), html.Span("SegXplain", className="brand-name"),
                          html.Span("attribution explorer for segmentation networks", className="brand-sub")],
                         className="brand"),
                html.Span(facts, id=ids.MODEL_FACTS, className="model-facts"),
            ],
            fluid=True,
        ),
        color="dark",
        dark=True,
        className="app-navbar",
    )  # fmt: skip


def image_card(ctx: PageContext) -> dbc.Card:
    """Upload area and the sample gallery."""
    limit = f"{ctx.max_upload_bytes / 1024 / 1024:.0f} MiB"
    # The browser refuses a file over max_size before any callback runs; assets/dashboard.js reads the cap from
    # data-max-bytes and reports the refused file in UPLOAD_REFUSED, so it gets a message.
    return dbc.Card(
        [
            dbc.CardHeader("Image"),
            dbc.CardBody(
                [
                    dcc.Store(id=ids.UPLOAD_REFUSED),
                    html.Div(dcc.Upload(
                        id=ids.UPLOAD,
                        children=html.Div([html.Span("Drop an image here or ", className="text-muted"),
                                           html.A("browse", className="upload-link"),
                                           html.Div(f"PNG · JPEG · WebP · TIFF · BMP · GIF, up to {limit}",
                                                    className="upload-formats")]),
                        # No `accept` filter: the browser would drop other files silently; the server names the problem.
                        max_size=ctx.max_upload_bytes,
                        multiple=False,
                        className="upload-area",
                    ), className="upload-cap", **{"data-max-bytes": str(ctx.max_upload_bytes)}),
                    html.Div("Samples", className="section-label mt-3"),
                    gallery(ctx.samples),
                    html.Div(id=ids.IMAGE_INFO, className="image-info"),
                    truth_upload(ctx.max_upload_bytes),
                ]
            ),
        ],
        className="mb-3",
    )  # fmt: skip


def model_card(ctx: PageContext) -> dbc.Card:
    """Upload a `.keras` model for this session (shown only with --allow-model-upload)."""
    limit = f"{ctx.max_model_bytes / 1024 / 1024:.0f} MiB"
    return dbc.Card(
        [
            dbc.CardHeader("Model"),
            dbc.CardBody(
                [
                    dbc.Input(id=ids.MODEL_CLASS_NAMES, placeholder="class names, comma-separated (optional)",
                              size="sm", className="mb-2"),
                    dcc.Loading(dcc.Upload(
                        id=ids.MODEL_UPLOAD,
                        children=html.Div([html.Span("Drop a .keras model here or ", className="text-muted"),
                                           html.A("browse", className="upload-link"),
                                           html.Div(f"Keras 3 .keras only, up to {limit}; built-in layers only; it "
                                                    "serves this page only", className="upload-formats")]),
                        max_size=2 * ctx.max_model_bytes, multiple=False, className="upload-area",
                    ), type="dot"),
                    html.Div([html.Div(html.Span("Checking the model…", id=ids.MODEL_PROGRESS_TEXT),
                                       className="job-text"),
                              dbc.Progress(id=ids.MODEL_PROGRESS, value=0, label="", striped=True, animated=True,
                                           className="job-progress")],
                             id=ids.MODEL_PANEL, className="job-panel", style={"display": "none"}),
                    html.Div(id=ids.MODEL_STATUS, className="image-info"),
                ]
            ),
        ],
        className="mb-3",
    )  # fmt: skip


def mask_card(ctx: PageContext) -> dbc.Card:
    """The mask figure with opacity, class picker, target class and the region summary."""
    class_options = [{"label": name, "value": k} for k, name in enumerate(ctx.class_names)]
    return dbc.Card(
        [
            dbc.CardHeader(html.Div([html.Span("Prediction & region"),
                                     html.Span("box · lasso · click", className="header-hint")],
                                    className="d-flex justify-content-between")),
            dbc.CardBody(
                [
                    dcc.Graph(id=ids.MASK_GRAPH, figure=placeholder_figure("Pick a sample or upload an image"),
                              config=MASK_GRAPH_CONFIG, className="mask-graph", responsive=True,
                              style={"height": "440px"}),
                    dbc.Row(
                        [
                            dbc.Col(html.Label("Mask opacity", htmlFor=ids.MASK_OPACITY, className="ctl-label"),
                                    width="auto"),
                            dbc.Col(dcc.Slider(id=ids.MASK_OPACITY, min=0, max=1, step=0.05, value=0.45, marks=None,
                                               allow_direct_input=False, tooltip={"placement": "bottom"},
                                               updatemode="drag")),
                        ],
                        className="align-items-center g-2 mt-1",
                    ),
                    dbc.Row(
                        [
                            dbc.Col([html.Label("Whole class", className="ctl-label"),
                                     dcc.Dropdown(id=ids.CLASS_PICKER, options=[], placeholder="Select a class…",
                                                  clearable=True)], md=4),
                            dbc.Col([html.Label("Target class", className="ctl-label"),
                                     dcc.Dropdown(id=ids.TARGET, options=class_options, placeholder="(from region)",
                                                  clearable=False)], md=4),
                            dbc.Col([html.Div([html.Label("Rather than", className="ctl-label",
                                                          htmlFor=ids.CONTRAST),
                                               dbc.Button("runner-up", id=ids.RUNNER_UP, color="link", size="sm",
                                                          className="p-0 ms-2",
                                                          title="The other class most probable in the region")],
                                              className="d-flex align-items-baseline"),
                                     dcc.Dropdown(id=ids.CONTRAST, options=class_options, value=None,
                                                  placeholder="(no contrast)", clearable=True)], md=4),
                        ],
                        className="g-2 mt-1",
                    ),
                    region_choices(),
                    html.Div(SELECT_HINT, id=ids.REGION_INFO, className="region-info"),
                    html.Div("", id=ids.QUESTION_TEXT, className="region-info question-text"),
                ]
            ),
        ],
        className="mb-3",
    )  # fmt: skip


def region_choices() -> dbc.Row:
    """The choices under the selection: exact shape or whole objects; the whole region, a border ring or its inside."""
    return dbc.Row(
        [
            dbc.Col([html.Label("Select", className="ctl-label", htmlFor=ids.SELECT_MODE),
                     dbc.RadioItems(id=ids.SELECT_MODE, inline=True, value="exact",
                                    options=[{"label": "as drawn", "value": "exact"},
                                             {"label": "whole objects", "value": "objects"}])], md=5),
            dbc.Col([html.Label("Region", className="ctl-label", htmlFor=ids.REGION_BORDER),
                     dcc.Dropdown(id=ids.REGION_BORDER, value="whole", clearable=False, searchable=False,
                                  options=[{"label": "whole region", "value": "whole"},
                                           {"label": "inner border", "value": "inner"},
                                           {"label": "outer border", "value": "outer"},
                                           {"label": "inside (no border)", "value": "inside"}])], md=4),
            dbc.Col([html.Label("Width (px)", className="ctl-label", htmlFor=ids.BORDER_WIDTH),
                     dbc.Input(id=ids.BORDER_WIDTH, type="number", min=1, max=64, step=1, value=3,
                               debounce=True, size="sm")], md=3),
        ],
        className="g-2 mt-1 align-items-end",
    )  # fmt: skip


def method_option(info: MethodInfo) -> dict[str, Any]:
    """A checklist option: the method's label with its badges."""
    return {"label": html.Span([html.Span(info.label, className="me-1"), *method_badges(info)]), "value": info.name}


def default_layer_index(conv_layers: Sequence[str], default_layer: str | None) -> int:
    """The slider index of `default_layer` (the last layer when it is None or unknown)."""
    return conv_layers.index(default_layer) if default_layer in conv_layers else max(len(conv_layers) - 1, 0)


def methods_card(ctx: PageContext) -> dbc.Card:
    """Method checklist, layer slider and heatmap opacity."""
    n_layers = len(ctx.conv_layers)
    last = max(n_layers - 1, 0)
    start = default_layer_index(ctx.conv_layers, ctx.default_layer)
    layer_text = layer_label(ctx.conv_layers[start], ctx.layer_shapes) if ctx.conv_layers else "no conv layers"
    layer_names = [layer_label(name, ctx.layer_shapes) for name in ctx.conv_layers]
    return dbc.Card(
        [
            dbc.CardHeader("Methods"),
            dbc.CardBody(
                [
                    dbc.Checklist(id=ids.METHODS, options=[method_option(m) for m in ctx.methods],
                                  value=list(ctx.default_methods), inline=True, switch=True,
                                  className="method-checklist"),
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    html.Div([html.Span("CAM layer", className="ctl-label"),
                                              html.Span(layer_text, id=ids.LAYER_INFO, className="layer-info")],
                                             className="d-flex gap-2 align-items-baseline"),
                                    dcc.Slider(id=ids.LAYER, min=0, max=last, step=1, value=start,
                                               marks=layer_marks(ctx.conv_layers), allow_direct_input=False,
                                               disabled=n_layers < 2, updatemode="mouseup",
                                               tooltip={"placement": "top", "transform": "segxLayerLabel"}),
                                    html.Div(id=ids.LAYER_NAMES, className="d-none",
                                             **{"data-layers": json.dumps(layer_names)}),
                                ],
                                lg=8,
                            ),
                            dbc.Col(
                                [
                                    html.Span("Heatmap opacity", className="ctl-label"),
                                    dcc.Slider(id=ids.HEATMAP_OPACITY, min=0, max=1, step=0.05, value=0.8,
                                               marks=None, allow_direct_input=False, updatemode="drag",
                                               tooltip={"placement": "bottom"}),
                                ],
                                lg=4,
                            ),
                        ],
                        className="g-3 mt-1",
                    ),
                ]
            ),
        ],
        className="mb-3",
    )  # fmt: skip


def job_panel() -> html.Div:
    """Progress bar and cancel button of the background job (hidden while no job runs)."""
    return html.Div(
        [
            html.Div(html.Span("Computing slow methods…", id=ids.PROGRESS_TEXT), className="job-text"),
            dbc.Progress(id=ids.PROGRESS, value=0, label="", striped=True, animated=True, className="job-progress"),
            dbc.Button("Cancel", id=ids.CANCEL, n_clicks=0, size="sm", color="outline-danger", disabled=True),
        ],
        id=ids.SLOW_PANEL,
        className="job-panel",
        style={"display": "none"},
    )


def stores(ctx: PageContext) -> list[dcc.Store]:
    """Client-side stores: keys into the server-side state, never arrays; the one exception, the prefetched layer
    maps (`LAYER_MAPS`), is read only by a clientside callback and never sent to the server."""
    return [
        dcc.Store(id=ids.SESSION, data=ctx.session),
        dcc.Store(id=ids.IMAGE),
        dcc.Store(id=ids.REGION),
        dcc.Store(id=ids.RESULTS),
        dcc.Store(id=ids.SLOW_REQUEST),
        dcc.Store(id=ids.SLOW_RESULT),
        dcc.Store(id=ids.VIEW),
        dcc.Store(id=ids.TRUTH),
        dcc.Store(id=ids.LAYER_MAPS),
        dcc.Store(id=ids.LAYER_STATE),
        *[dcc.Store(id=ids.event(out, source)) for out, sources in ids.EVENT_SOURCES.items() for source in sources],
    ]


def build_layout(ctx: PageContext) -> html.Div:
    """The whole page."""
    return html.Div(
        [
            navbar(ctx),
            dbc.Container(
                [
                    dbc.Alert(id=ids.MESSAGE, is_open=False, dismissable=True, fade=False, className="app-message"),
                    dbc.Row(
                        [
                            dbc.Col([*([model_card(ctx)] if ctx.allow_model_upload else []), image_card(ctx),
                                     mask_card(ctx), errors_card()], lg=4, className="left-col"),
                            dbc.Col(
                                [
                                    methods_card(ctx),
                                    job_panel(),
                                    html.Div(
                                        [html.Div(hint(SELECT_HINT), id=ids.FAST_GRID, className="grid-part"),
                                         html.Div(id=ids.SLOW_GRID, className="grid-part")],
                                        className="heatmap-grid",
                                    ),
                                    overview_section(ctx.methods),
                                    trust_section(),
                                ],
                                lg=8,
                            ),
                        ],
                        className="g-3",
                    ),
                    *stores(ctx),
                    *trust_stores(),
                ],
                fluid=True,
                className="app-body",
            ),
        ],
        className="app-root",
    )  # fmt: skip
