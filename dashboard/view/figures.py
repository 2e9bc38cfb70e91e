"""Pure Plotly figure builders: the mask figure and the heatmap figures.

All figures share one coordinate system, pixel units with pixel (r, c) centred on (x=c, y=r) and the y axis pointing
down, so that selections, outlines and linked zoom/pan carry over between them unchanged. The photo is a layout image
below the traces, given by URL (`view.photos`) so that the browser fetches it once for every figure; an attribution
overlay is a second layout image (a PNG data URI) over the photo, so that swapping it (the layer slider) redraws only
the layout images: an `image` trace's source is re-measured, decoded into a canvas and the whole plot redrawn (~30 ms
per figure in Chromium), and a Plotly colour bar with a new range redraws the plot too, so the colour bar is HTML
(`view.components.colour_bar`). Only the predicted label map is a (small, integer) `heatmap`, so that hovering shows
the class name; a heatmap figure's one trace is a transparent image of the map's size that only carries the hover.
Figures are plain dicts in Plotly's JSON schema: building them is ~500x cheaper than `go.Figure`, which matters for
the time from selection to heatmaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dashboard.view.render import blank_png_uri

# A qualitative palette that stays readable over photos; the first class named "background" is left transparent.
PALETTE = [
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
    "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3",
]  # fmt: skip
BACKGROUND_COLOUR = "rgba(0,0,0,0)"
BACKGROUND_LEGEND = "#9aa0a6"
HOVER_TEXT_LIMIT = 256 * 256  # above this many pixels the mask hover shows the class index, not its name
OUTLINE_COLOUR = "#ffffff"
OUTLINE_SHADOW = "rgba(0,0,0,0.75)"

View = Mapping[str, Sequence[float]]  # {"x": [x0, x1], "y": [y_bottom, y_top]}

# Positions that callbacks patch (the layer slider, the opacity sliders).
LABELS_TRACE = 0  # mask figure: the predicted label map
PHOTO_IMAGE = 0  # every image figure: layout.images[0] is the photo
OVERLAY_IMAGE = 1  # heatmap figure: layout.images[1] is the attribution overlay
HOVER_TRACE = 0  # heatmap figure: the transparent image trace carrying the pixel-coordinate hover


def is_background(name: str) -> bool:
    """Whether a class name denotes the background (left transparent in the overlay)."""
    return name.strip().lower() in {"background", "bg", "void", "_background_"}


def class_colours(class_names: Sequence[str]) -> list[str]:
    """One colour per class for the overlay (background transparent)."""
    colours = []
    palette_index = 0
    for name in class_names:
        if is_background(name):
            colours.append(BACKGROUND_COLOUR)
        else:
            colours.append(PALETTE[palette_index % len(PALETTE)])
            palette_index += 1
    return colours


def legend_colour(colour: str) -> str:
    """The colour of a class in the legend (transparent background shown grey)."""
    return BACKGROUND_LEGEND if colour == BACKGROUND_COLOUR else colour


def discrete_colorscale(colours: Sequence[str]) -> list[list[Any]]:
    """A stepped colour scale mapping integer z = k (with zmin=-0.5, zmax=C-0.5) to colours[k]."""
    n = len(colours)
    scale: list[list[Any]] = []
    for k, colour in enumerate(colours):
        scale.append([k / n, colour])
        scale.append([(k + 1) / n, colour])
    return scale


def full_view(shape: tuple[int, int]) -> dict[str, list[float]]:
    """The view showing the whole image."""
    height, width = shape
    return {"x": [-0.5, width - 0.5], "y": [height - 0.5, -0.5]}


Figure = dict[str, Any]


def base_layout(shape: tuple[int, int], view: View | None, uirevision: str) -> dict[str, Any]:
    """Layout of an image figure: pixel axes hidden, y pointing down, aspect ratio kept, the given view."""
    view = {**full_view(shape), **(view or {})}
    axis = dict(visible=False, showgrid=False, zeroline=False, constrain="domain", autorange=False)
    return dict(
        xaxis=dict(axis, range=list(view["x"])),
        yaxis=dict(axis, range=list(view["y"]), scaleanchor="x"),
        margin=dict(l=0, r=0, t=0, b=0),
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        uirevision=uirevision,
        hoverlabel=dict(bgcolor="rgba(20,20,20,0.85)", font=dict(size=12)),
    )


def image_trace(image_uri: str, name: str = "image", **extra: Any) -> dict[str, Any]:
    """A `go.Image` trace (as a dict) showing a PNG data URI at pixel coordinates."""
    return dict(type="image", source=image_uri, x0=0, dx=1, y0=0, dy=1, hoverinfo="x+y", name=name, **extra)


def photo_layer(photo_url: str, shape: tuple[int, int]) -> dict[str, Any]:
    """A layout image drawing the photo (a URL or data URI) below the traces, pixel (r, c) centred on (x=c, y=r)."""
    height, width = shape
    return dict(source=photo_url, xref="x", yref="y", x=-0.5, y=-0.5, sizex=width, sizey=height, xanchor="left",
                yanchor="top", sizing="stretch", layer="below", name="photo")  # fmt: skip


def overlay_layer(overlay_uri: str, shape: tuple[int, int], opacity: float) -> dict[str, Any]:
    """A layout image drawing an attribution overlay (a PNG data URI) over the photo, on the same pixel grid.

    It is anchored at its right edge, not the left like the photo: plotly.js keys the layout images of a subplot by
    (x, sizex, y, sizey) and draws only one of two images that share them."""
    width = shape[1]
    return {**photo_layer(overlay_uri, shape), "x": width - 0.5, "xanchor": "right", "opacity": float(opacity),
            "name": "attribution"}  # fmt: skip


def base_figure(
    photo_url: str, shape: tuple[int, int], *, view: View | None = None, uirevision: str = "image"
) -> Figure:
    """A figure showing the photo at pixel coordinates, axes hidden, aspect ratio kept, no traces yet.

    Figures are plain dicts in Plotly's JSON schema (go.Figure validation cost ~50 ms per figure; this is ~0.1 ms).
    """
    return {"data": [], "layout": {**base_layout(shape, view, uirevision), "images": [photo_layer(photo_url, shape)]}}


def outline_shapes(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Plotly layout shapes drawing the region outline (a dark halo under a white line) for each path."""
    shapes = []
    for width, colour in ((4, OUTLINE_SHADOW), (1.8, OUTLINE_COLOUR)):
        for path in paths:
            shapes.append(
                dict(type="path", path=path, line=dict(color=colour, width=width), fillcolor="rgba(0,0,0,0)",
                     layer="above", xref="x", yref="y", editable=False, name="region")
            )  # fmt: skip
    return shapes


def mask_figure(
    image_uri: str,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    opacity: float = 0.5,
    outline: Sequence[str] = (),
    view: View | None = None,
    uirevision: str = "image",
) -> Figure:
    """The image with the predicted label map over it, a legend of the predicted classes and the region outline.

    Trace `LABELS_TRACE` is the label map (its opacity is what the opacity slider patches), the rest legend entries.
    The figure opens in box-select mode.
    """
    labels = np.asarray(labels)
    shape = labels.shape[:2]
    colours = class_colours(class_names)
    n = len(class_names)
    fig = base_figure(image_uri, shape, view=view, uirevision=uirevision)
    heat: dict[str, Any] = dict(
        type="heatmap", z=labels.astype(np.int16).tolist(), zmin=-0.5, zmax=n - 0.5,
        colorscale=discrete_colorscale(colours), showscale=False, opacity=float(opacity), name="prediction",
    )  # fmt: skip
    if labels.size <= HOVER_TEXT_LIMIT:
        heat["text"] = np.asarray(class_names, dtype=object)[labels].tolist()
        heat["hovertemplate"] = "x %{x}, y %{y}<br><b>%{text}</b><extra></extra>"
    else:
        heat["hovertemplate"] = "x %{x}, y %{y}<br>class %{z}<extra></extra>"
    fig["data"].append(heat)
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=n)
    total = max(int(labels.size), 1)
    for k, name in enumerate(class_names):
        if counts[k] == 0:
            continue
        fig["data"].append(
            dict(type="scatter", x=[None], y=[None], mode="markers", name=f"{name} {100 * counts[k] / total:.0f}%",
                 marker=dict(size=11, symbol="square", color=legend_colour(colours[k])), hoverinfo="skip",
                 showlegend=True)
        )  # fmt: skip
    fig["layout"].update(
        dragmode="select",
        showlegend=True,
        legend=dict(orientation="h", x=0, xanchor="left", y=-0.02, yanchor="top", itemclick=False,
                    itemdoubleclick=False, bgcolor="rgba(0,0,0,0)", font=dict(size=12)),
        margin=dict(l=0, r=0, t=0, b=36),
        shapes=outline_shapes(outline),
        newselection=dict(line=dict(color="#ffffff", width=1.5, dash="dot")),
        activeselection=dict(fillcolor="rgba(255,255,255,0.08)", opacity=1),
    )  # fmt: skip
    return fig


def heatmap_figure(
    image_uri: str,
    overlay_uri: str,
    shape: tuple[int, int],
    *,
    opacity: float = 0.75,
    outline: Sequence[str] = (),
    view: View | None = None,
    uirevision: str = "image",
) -> Figure:
    """The image under a semi-transparent attribution overlay (layout image `OVERLAY_IMAGE`, patched by the layer
    slider and the opacity slider); trace `HOVER_TRACE` is a transparent image of the map's size for the hover."""
    fig = base_figure(image_uri, shape, view=view, uirevision=uirevision)
    fig["layout"]["images"].append(overlay_layer(overlay_uri, shape, opacity))
    fig["data"].append(image_trace(blank_png_uri(shape), name="pixel"))
    fig["layout"].update(dragmode="zoom", showlegend=False, shapes=outline_shapes(outline))
    return fig


def placeholder_figure(message: str = "") -> Figure:
    """An empty, axis-less figure with an optional centred message."""
    annotations = [dict(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                        font=dict(size=14, color="#8a8f98"))] if message else []  # fmt: skip
    return {
        "data": [],
        "layout": dict(xaxis=dict(visible=False), yaxis=dict(visible=False), margin=dict(l=0, r=0, t=0, b=0),
                       paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", annotations=annotations),
    }  # fmt: skip


def view_from_relayout(relayout: Mapping[str, Any] | None, shape: tuple[int, int]) -> dict[str, list[float]] | None:
    """The view set by a zoom, pan or reset in `relayoutData`, or None if the event is not about the view.

    A reset ("autorange") gives the full view; a zoom on one axis only returns just that axis.
    """
    if not relayout:
        return None
    if relayout.get("xaxis.autorange") or relayout.get("yaxis.autorange"):
        return full_view(shape)
    view: dict[str, list[float]] = {}
    for axis in ("x", "y"):
        try:
            if f"{axis}axis.range[0]" in relayout and f"{axis}axis.range[1]" in relayout:
                view[axis] = [float(relayout[f"{axis}axis.range[0]"]), float(relayout[f"{axis}axis.range[1]"])]
            elif isinstance(relayout.get(f"{axis}axis.range"), (list, tuple)):
                view[axis] = [float(v) for v in relayout[f"{axis}axis.range"][:2]]
        except (TypeError, ValueError):
            continue
    return view or None
