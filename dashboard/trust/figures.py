"""Pure Plotly figure builders of the Trust section: which explanation to believe.

- `curves_figure`: deletion and insertion curves (Petsiuk et al. 2018, "RISE", BMVC) per method, with the
  random-order baseline, on the region score S.
- `share_figure`: share of each method's positive attribution that lies inside the region, against the share a
  uniform map would give (the region's area fraction).
- `sanity_figure`: cascading model randomization (Adebayo et al. 2018, "Sanity Checks for Saliency Maps", NeurIPS):
  Spearman rank correlation and SSIM of each method's map with the original map, as layers are randomized from the
  logits toward the input; methods whose maps barely change are flagged (⚠, thick line).
- `agreement_figure`: the Spearman correlation matrix between the methods' maps.
- `auc_rows`: the numbers of the AUC table.

Inputs are the plain dicts `dashboard.trust.metrics` makes from the engine's results (lists and floats), so these
builders are cheap and tested without a model. Like `dashboard.view.figures`, figures are plain dicts in Plotly's JSON
schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from plotly.colors import qualitative

from dashboard.view.render import colorscale_stops

Figure = dict[str, Any]
COLOURS = qualitative.D3
RANDOM_COLOUR = "#6b7280"
FLAG = "\u26a0"
FONT = dict(size=11, color="#374151")


def method_colours(names: Sequence[str]) -> dict[str, str]:
    """A colour per method name, stable for a given (registry) order."""
    return {name: COLOURS[k % len(COLOURS)] for k, name in enumerate(names)}


def _label(labels: Mapping[str, str] | None, name: str) -> str:
    return (labels or {}).get(name, name)


def _colour(colours: Mapping[str, str] | None, name: str, index: int) -> str:
    return (colours or {}).get(name, COLOURS[index % len(COLOURS)])


def _finite(value: Any) -> float | None:
    """`value` as a float, or None for missing / NaN / inf (JSON has no NaN)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    return dict(title=dict(text=title, font=dict(size=11)), zeroline=False, gridcolor="#eef0f3", linecolor="#d1d5db",
                tickfont=dict(size=10), automargin=True, **extra)  # fmt: skip


def _base_layout(**extra: Any) -> dict[str, Any]:
    return dict(
        margin=dict(l=8, r=8, t=28, b=8), paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="#ffffff", font=FONT,
        legend=dict(orientation="h", x=0, xanchor="left", y=-0.18, yanchor="top", font=dict(size=10)),
        hoverlabel=dict(font=dict(size=11)), **extra,
    )  # fmt: skip


def _panel_title(text: str, x: float) -> dict[str, Any]:
    return dict(text=f"<b>{text}</b>", x=x, y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom",
                showarrow=False, font=dict(size=11))  # fmt: skip


def _same_curve(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return len(a["scores"]) == len(b["scores"]) and np.allclose(a["scores"], b["scores"], equal_nan=True)


def curves_figure(
    faithfulness: Mapping[str, Mapping[str, Any]],
    labels: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
) -> Figure:
    """Deletion (left) and insertion (right) curves of every method, plus the random-order curves (dashed grey).

    `faithfulness`: {method: {"deletion": {"fractions", "scores", "auc"}, "insertion": ..., "random_deletion": ...,
    "random_insertion": ...}}. Random-order curves shared by every method (the engine draws one order) are drawn once.
    """
    data: list[dict[str, Any]] = []
    for panel, (kind, axis) in enumerate((("deletion", ""), ("insertion", "2"))):
        randoms: list[Mapping[str, Any]] = []
        for index, (method, result) in enumerate(faithfulness.items()):
            curve = result.get(kind)
            if not curve:
                continue
            name = _label(labels, method)
            data.append(dict(
                type="scatter", mode="lines+markers", x=list(curve["fractions"]), y=list(curve["scores"]), name=name,
                legendgroup=method, showlegend=panel == 0, xaxis=f"x{axis}", yaxis=f"y{axis}",
                line=dict(color=_colour(colours, method, index), width=2), marker=dict(size=4),
                hovertemplate=f"{name}<br>{kind} %{{x:.0%}}: S = %{{y:.3g}}<extra></extra>",
            ))  # fmt: skip
            random = result.get(f"random_{kind}")
            if random and not any(_same_curve(random, seen) for seen in randoms):
                randoms.append(random)
        for k, random in enumerate(randoms):
            name = "random order" if len(randoms) == 1 else f"random order {k + 1}"
            data.append(dict(
                type="scatter", mode="lines", x=list(random["fractions"]), y=list(random["scores"]), name=name,
                legendgroup="random", showlegend=panel == 0, xaxis=f"x{axis}", yaxis=f"y{axis}",
                line=dict(color=RANDOM_COLOUR, width=2, dash="dash"),
                hovertemplate=f"{name}<br>{kind} %{{x:.0%}}: S = %{{y:.3g}}<extra></extra>",
            ))  # fmt: skip
    layout = _base_layout(
        xaxis=_axis("fraction of pixels removed", domain=[0, 0.46], tickformat=".0%"),
        yaxis=_axis("region score S (mean logit)"),
        xaxis2=_axis("fraction of pixels inserted", domain=[0.54, 1], tickformat=".0%"),
        yaxis2=_axis("", anchor="x2"),
        annotations=[_panel_title("Deletion (lower area is better)", 0.23),
                     _panel_title("Insertion (higher area is better)", 0.77)],
    )  # fmt: skip
    return {"data": data, "layout": layout}


def auc_rows(
    faithfulness: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Table rows, one per method: raw and normalised AUCs, gaps over random order, inside share, best flags.

    Normalised AUCs map S(image) to 1 and S(baseline) to 0; gap > 0 means better than random order. "best_deletion"
    / "best_insertion" mark the method(s) with the lowest deletion / highest insertion AUC.
    """
    rows = []
    for method, result in faithfulness.items():
        row: dict[str, Any] = {"method": method, "label": _label(labels, method),
                               "inside_share": _finite(result.get("inside_share"))}  # fmt: skip
        for kind in ("deletion", "insertion", "random_deletion", "random_insertion"):
            curve = result.get(kind) or {}
            row[f"{kind}_auc"] = _finite(curve.get("auc"))
            row[f"{kind}_nauc"] = _finite(curve.get("normalized_auc"))
        row["deletion_gap"] = _gap(row["random_deletion_nauc"], row["deletion_nauc"])
        row["insertion_gap"] = _gap(row["insertion_nauc"], row["random_insertion_nauc"])
        rows.append(row)
    for kind, pick in (("deletion", min), ("insertion", max)):
        values = [row[f"{kind}_auc"] for row in rows if row[f"{kind}_auc"] is not None]
        best = pick(values) if values else None
        for row in rows:
            row[f"best_{kind}"] = best is not None and row[f"{kind}_auc"] is not None and row[f"{kind}_auc"] == best
    return rows


def _gap(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def share_figure(
    shares: Mapping[str, float],
    region_fraction: float,
    labels: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
) -> Figure:
    """Horizontal bars: share of positive attribution inside the region per method (0..1), against the region's area
    fraction (what a uniform map would give). Methods without positive attribution show no bar and say so."""
    names = list(shares)
    values = [_finite(shares[m]) for m in names]
    text = ["no positive attribution" if v is None else f"{v:.0%}" for v in values]
    bar = dict(
        type="bar", orientation="h", y=[_label(labels, m) for m in names], x=[0.0 if v is None else v for v in values],
        marker=dict(color=[_colour(colours, m, k) for k, m in enumerate(names)]), text=text, textposition="outside",
        cliponaxis=False, hovertemplate="%{y}: %{text} of the positive attribution inside the region<extra></extra>",
        name="inside",
    )  # fmt: skip
    fraction = float(np.clip(region_fraction, 0.0, 1.0))
    layout = _base_layout(
        xaxis=_axis("share of positive attribution inside the region", range=[0, 1.18], tickformat=".0%",
                    tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        yaxis=dict(autorange="reversed", automargin=True, tickfont=dict(size=10)),
        showlegend=False, bargap=0.3,
        shapes=[dict(type="line", x0=fraction, x1=fraction, y0=0, y1=1, xref="x", yref="paper",
                     line=dict(color=RANDOM_COLOUR, width=1.5, dash="dash"))],
        annotations=[dict(text=f"region area {fraction:.0%}", x=fraction, y=1.0, xref="x", yref="paper",
                          xanchor="left", yanchor="bottom", showarrow=False, font=dict(size=10, color=RANDOM_COLOUR))],
    )  # fmt: skip
    return {"data": [bar], "layout": layout}


def sanity_figure(
    sanity: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
) -> Figure:
    """Spearman (left) and SSIM (right) of each method's map with the original, per randomization depth.

    `sanity`: {"depths": [layer names, logits first], "spearman": {method: [per depth]}, "ssim": {...},
    "flagged": {method: bool}, "threshold": float}. Flagged methods (maps that barely change, i.e. that do not depend
    on the weights) get a ⚠ in the legend and a thick dotted line; the flagging threshold is drawn on the Spearman
    panel.
    """
    depths = [str(d) for d in sanity.get("depths", [])]
    positions = list(range(1, len(depths) + 1))
    flagged = sanity.get("flagged") or {}
    data: list[dict[str, Any]] = []
    for panel, (metric, axis) in enumerate((("spearman", ""), ("ssim", "2"))):
        for index, (method, values) in enumerate((sanity.get(metric) or {}).items()):
            is_flagged = bool(flagged.get(method))
            name = (f"{FLAG} " if is_flagged else "") + _label(labels, method)
            data.append(dict(
                type="scatter", mode="lines+markers", x=positions, y=[_finite(v) for v in values], name=name,
                customdata=depths, legendgroup=method, showlegend=panel == 0, xaxis=f"x{axis}", yaxis=f"y{axis}",
                line=dict(color=_colour(colours, method, index), width=4 if is_flagged else 2,
                          dash="dot" if is_flagged else "solid"),
                marker=dict(size=7 if is_flagged else 5, symbol="diamond" if is_flagged else "circle"),
                hovertemplate=f"{name}<br>randomized down to %{{customdata}}<br>{metric} %{{y:.3f}}<extra></extra>",
            ))  # fmt: skip
    ticks = dict(tickmode="array", tickvals=positions, ticktext=[_short(d) for d in depths], tickangle=-40)
    shapes = []
    threshold = _finite(sanity.get("threshold"))
    if threshold is not None and depths:
        shapes.append(dict(type="line", x0=0, x1=1, xref="x domain", y0=threshold, y1=threshold, yref="y",
                           line=dict(color="#dc2626", width=1, dash="dash")))  # fmt: skip
    layout = _base_layout(
        xaxis=_axis("randomized from the logits down to layer", domain=[0, 0.46], **ticks),
        yaxis=_axis("Spearman with the original map", range=[-1.05, 1.05]),
        xaxis2=_axis("randomized from the logits down to layer", domain=[0.54, 1], **ticks),
        yaxis2=_axis("SSIM with the original map", anchor="x2", range=[-1.05, 1.05]),
        shapes=shapes,
        annotations=[_panel_title("Spearman rank correlation", 0.23), _panel_title("SSIM", 0.77)],
    )  # fmt: skip
    layout["legend"]["y"] = -0.42
    layout["margin"]["b"] = 8
    return {"data": data, "layout": layout}


def _short(name: str, limit: int = 14) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def agreement_figure(names: Sequence[str], matrix: Any, labels: Mapping[str, str] | None = None) -> Figure:
    """Heatmap of the Spearman correlation between the methods' maps (diverging scale fixed to [-1, 1])."""
    values = np.asarray(matrix, dtype=np.float64).reshape(len(names), len(names))
    axis_labels = [_label(labels, n) for n in names]
    z = [[_finite(v) for v in row] for row in values]
    heat = dict(
        type="heatmap", z=z, x=axis_labels, y=axis_labels, zmin=-1, zmax=1, xgap=2, ygap=2,
        colorscale=[list(stop) for stop in colorscale_stops("RdBu_r")],
        texttemplate="%{z:.2f}", textfont=dict(size=10), hoverongaps=False,
        hovertemplate="%{y} vs %{x}: Spearman %{z:.3f}<extra></extra>",
        colorbar=dict(thickness=10, len=0.9, tickfont=dict(size=10), title=dict(text="\u03c1", side="top")),
    )  # fmt: skip
    layout = _base_layout(
        xaxis=dict(tickangle=-35, automargin=True, tickfont=dict(size=10), showgrid=False),
        yaxis=dict(autorange="reversed", automargin=True, tickfont=dict(size=10), showgrid=False, scaleanchor="x"),
        showlegend=False,
    )  # fmt: skip
    return {"data": [heat], "layout": layout}
