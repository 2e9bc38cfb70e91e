"""Layout and components of the Trust section, shown below the heatmap cards: which explanation to believe.

Controls (which metrics, how many deletion/insertion steps, Run, Export), the background-job panel of the metric job
(progress bar + cancel, like the slow-method panel), and the result areas: deletion/insertion curves with the AUC
table, inside share, method agreement and the sanity check with its flags. Builders are pure (plain values in,
components out), so the callbacks stay thin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dash_bootstrap_components as dbc
import numpy as np
from dash import dcc, html
from PIL import Image

from dashboard.trust.figures import FLAG
from dashboard.usecases.export import composite, overlay_rgba
from dashboard.view import ids
from dashboard.view.figures import placeholder_figure
from dashboard.view.render import png_data_uri

GRAPH_CONFIG = {"displaylogo": False, "showSendToCloud": False, "showEditInChartStudio": False,
                "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
                "toImageButtonOptions": {"format": "png", "scale": 3}}  # fmt: skip
OPTIONS = [
    {"label": "Deletion / insertion curves", "value": "faithfulness"},
    {"label": "Sanity check (model randomization)", "value": "sanity"},
]
STEP_CHOICES = (10, 20, 50)
RUN_HINT = "Press “Run trust metrics” to measure the maps shown above for this region and class."
CURVES_HINT = "Deletion / insertion curves appear here."
SANITY_HINT = "Sanity-check curves appear here."
SHARE_HINT = "Inside share appears here."
AGREEMENT_HINT = "Method agreement appears here (needs two or more maps)."
THUMBNAIL = 72  # px, side of the sanity-check map thumbnails


def graph(graph_id: str, message: str, height: int) -> dcc.Graph:
    """A responsive graph starting with a placeholder message."""
    return dcc.Graph(id=graph_id, figure=placeholder_figure(message), config=GRAPH_CONFIG, responsive=True,
                     className="trust-graph", style={"height": f"{height}px"})  # fmt: skip


def trust_job_panel() -> html.Div:
    """Progress bar and cancel button of the metric job (hidden while no job runs); styled as the slow-method one."""
    return html.Div(
        [
            html.Div(html.Span("Computing trust metrics…", id=ids.TRUST_PROGRESS_TEXT), className="job-text"),
            dbc.Progress(id=ids.TRUST_PROGRESS, value=0, label="", striped=True, animated=True,
                         className="job-progress"),
            dbc.Button("Cancel", id=ids.TRUST_CANCEL, n_clicks=0, size="sm", color="outline-danger", disabled=True),
        ],
        id=ids.TRUST_PANEL,
        className="job-panel",
        style={"display": "none"},
    )  # fmt: skip


def trust_controls() -> dbc.Row:
    """Metric choice, steps, Run and Export buttons (with the download target)."""
    return dbc.Row(
        [
            dbc.Col(dbc.Checklist(id=ids.TRUST_OPTIONS, options=OPTIONS, value=[o["value"] for o in OPTIONS],
                                  inline=True, switch=True), md=True),
            dbc.Col(html.Div([html.Label("Steps", htmlFor=ids.TRUST_STEPS, className="ctl-label mb-0"),
                              dcc.Dropdown(id=ids.TRUST_STEPS, options=[{"label": str(k), "value": k}
                                                                         for k in STEP_CHOICES],
                                           value=20, clearable=False, searchable=False, className="trust-steps")],
                             className="d-flex align-items-center gap-2",
                             title="deletion / insertion steps: the curves have steps + 1 points"), width="auto"),
            dbc.Col(dbc.Button("Run trust metrics", id=ids.TRUST_RUN, n_clicks=0, size="sm", color="primary"),
                    width="auto"),
            dbc.Col([dbc.Button("Export zip", id=ids.TRUST_EXPORT, n_clicks=0, size="sm", color="secondary",
                                outline=True,
                                title="image, region, settings, heatmap PNGs, raw maps (npz) and metric CSVs"),
                     # the download's URL (a streamed route, dashboard.trust.download), and the link it is fetched by
                     dcc.Store(id=ids.TRUST_DOWNLOAD),
                     html.A("download again", id=ids.TRUST_DOWNLOAD_LINK, href="", download="",
                            className="trust-download-link small ms-2 d-none")], width="auto"),
        ],
        className="g-2 align-items-center",
    )  # fmt: skip


def trust_section() -> dbc.Card:
    """The whole Trust card (its ids do not depend on the model)."""
    return dbc.Card(
        [
            dbc.CardHeader(html.Div([html.Span("Trust"),
                                     html.Span("which explanation to believe: faithfulness, sanity, agreement",
                                               className="header-hint")],
                                    className="d-flex justify-content-between")),
            dbc.CardBody(
                [
                    trust_controls(),
                    html.Div(RUN_HINT, id=ids.TRUST_STATUS, className="trust-status"),
                    trust_job_panel(),
                    dbc.Row([dbc.Col(graph(ids.TRUST_CURVES, CURVES_HINT, 330), xl=7),
                             dbc.Col(html.Div(id=ids.TRUST_TABLE, className="trust-table"), xl=5)], className="g-3"),
                    dbc.Row([dbc.Col(graph(ids.TRUST_SHARE, SHARE_HINT, 280), xl=6),
                             dbc.Col(graph(ids.TRUST_AGREEMENT, AGREEMENT_HINT, 280), xl=6)], className="g-3"),
                    dbc.Row([dbc.Col([graph(ids.TRUST_SANITY, SANITY_HINT, 360),
                                      html.Div(id=ids.TRUST_FLAGS, className="trust-flags")])], className="g-3"),
                ]
            ),
        ],
        className="mt-3 trust-card",
        id="trust-card",
    )  # fmt: skip


def trust_stores() -> list[dcc.Store]:
    """The metric job's request and result (keys only)."""
    return [dcc.Store(id=ids.TRUST_REQUEST), dcc.Store(id=ids.TRUST_RESULT)]


def _number(value: float | None, fmt: str = ".3g") -> str:
    return "\u2013" if value is None else format(value, fmt)


def _gap(value: float | None) -> Any:
    if value is None:
        return "\u2013"
    return html.Span(f"{value:+.2f}", className="text-success" if value > 0 else "text-danger",
                     title="normalised AUC margin over random order (> 0: better than random)")  # fmt: skip


def auc_table(rows: Sequence[Mapping[str, Any]]) -> Any:
    """The AUC table: deletion (lower is better) and insertion (higher is better) AUCs and their margins over random
    order; the best method per column in bold (the inside share has its own figure)."""
    if not rows:
        return html.Div("No curves.", className="text-muted small")
    header = html.Thead(html.Tr([html.Th("Method"), html.Th("Deletion ↓", title="deletion AUC: lower is better"),
                                 html.Th("vs random"), html.Th("Insertion ↑", title="insertion AUC: higher is better"),
                                 html.Th("vs random")]))  # fmt: skip
    body = []
    for row in rows:
        deletion = _number(row.get("deletion_auc"))
        insertion = _number(row.get("insertion_auc"))
        body.append(html.Tr([
            html.Td(row["label"]),
            html.Td(html.B(deletion) if row.get("best_deletion") else deletion),
            html.Td(_gap(row.get("deletion_gap"))),
            html.Td(html.B(insertion) if row.get("best_insertion") else insertion),
            html.Td(_gap(row.get("insertion_gap"))),
        ], **{"data-method": row["method"]}))  # fmt: skip
    random = rows[0]
    note = html.Div(f"Random order: deletion {_number(random.get('random_deletion_auc'))}, insertion "
                    f"{_number(random.get('random_insertion_auc'))}. AUC: area under the region score S over the "
                    f"fraction of pixels; “vs random”: margin of the normalised AUC over random order, > 0 is better.",
                    className="trust-note")  # fmt: skip
    return html.Div([dbc.Table([header, html.Tbody(body)], size="sm", hover=True, responsive=True,
                                className="trust-auc mb-1"), note])


def flag_note(sanity: Mapping[str, Any], labels: Mapping[str, str]) -> Any:
    """Flagged methods (maps that barely change when the weights are randomized), or a note that none is."""
    flagged = [labels.get(m, m) for m, is_flagged in (sanity.get("flagged") or {}).items() if is_flagged]
    threshold = sanity.get("threshold")
    rule = (f" (Spearman with the trained model's map still \u2265 {threshold:.2f} with every layer randomized)"
            if threshold is not None else "")  # fmt: skip
    if not flagged:
        return html.Div("No method flagged: every map changes when the weights are randomized.",
                        className="trust-note text-success")  # fmt: skip
    return dbc.Alert(
        [html.B(f"{FLAG} Barely changes under model randomization{rule}: "), ", ".join(flagged),
         html.Div("Such maps do not depend on what the network learned; do not trust them to explain it.",
                  className="small")],
        color="warning", className="trust-flag-alert py-2 mb-0",
    )  # fmt: skip


def status_text(methods: Sequence[str], missing: Sequence[str], labels: Mapping[str, str], layer: str | None) -> str:
    """What the metrics are computed on."""
    names = ", ".join(labels.get(m, m) for m in methods)
    text = f"Measuring {len(methods)} map(s): {names}" + (f"; CAMs at layer {layer}" if layer else "") + "."
    if missing:
        text += " Not computed yet (skipped): " + ", ".join(labels.get(m, m) for m in missing) + "."
    return text


def thumbnail_uri(image: np.ndarray, heatmap: np.ndarray, signed: bool, size: int = THUMBNAIL) -> str:
    """A small PNG of a map over the image, rendered as the cards render it (own display range), `size` px wide."""
    picture = Image.fromarray(composite(image, overlay_rgba(heatmap, signed), opacity=0.85))
    height = max(1, round(size * picture.height / picture.width))
    return png_data_uri(np.asarray(picture.resize((size, height), Image.Resampling.BILINEAR)))


def sanity_grid(
    image: np.ndarray,
    depths: Sequence[str],
    stacks: Mapping[str, np.ndarray],
    labels: Mapping[str, str],
    signed: Mapping[str, bool],
    flagged: Mapping[str, bool] | None = None,
) -> Any:
    """Adebayo et al.'s figure: one row per method, the trained model's map then the map after each cascading
    randomization step (each on its own colour range, so a map that keeps its pattern is easy to spot)."""
    if not stacks:
        return html.Div()
    header = html.Tr([html.Th("")] + [html.Th(name, title=name) for name in ["trained", *depths]])
    rows = []
    for method, stack in stacks.items():
        label = (f"{FLAG} " if (flagged or {}).get(method) else "") + labels.get(method, method)
        cells = [html.Td(html.Img(src=thumbnail_uri(image, stack[k], bool(signed.get(method, True))),
                                  alt=f"{label}, {'trained' if k == 0 else depths[k - 1]}"))
                 for k in range(len(stack))]  # fmt: skip
        rows.append(html.Tr([html.Th(label, className="trust-grid-method"), *cells], **{"data-method": method}))
    return html.Div(
        [html.Div("Maps as layers are randomized (logits first):", className="trust-note mt-2"),
         html.Div(html.Table([html.Thead(header), html.Tbody(rows)], className="trust-grid"),
                  className="trust-grid-scroll")],
    )  # fmt: skip
