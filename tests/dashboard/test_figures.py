"""Pure figure builders (dashboard.view.figures): traces, shapes, views."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from dashboard.view import figures

URI = "data:image/png;base64,AAAA"
PHOTO = "_segx/photo/session/key.png"
NAMES = ["background", "cap", "gills", "stem"]


def labels() -> np.ndarray:
    lab = np.zeros((6, 8), dtype=np.int16)
    lab[1:3, 1:4] = 1
    lab[4:6, 5:8] = 3
    return lab


def test_mask_figure_traces_and_legend():
    fig = figures.mask_figure(PHOTO, labels(), NAMES, opacity=0.3, outline=["M0,0 L1,0 L1,1 Z"])
    heat = fig["data"][figures.LABELS_TRACE]
    assert heat["type"] == "heatmap"
    assert heat["opacity"] == 0.3 and heat["zmin"] == -0.5 and heat["zmax"] == len(NAMES) - 0.5
    assert heat["text"][1][1] == "cap"
    legend = [t["name"] for t in fig["data"][1:]]
    assert [n.split()[0] for n in legend] == ["background", "cap", "stem"]  # gills is absent
    assert fig["layout"]["dragmode"] == "select"
    assert len(fig["layout"]["shapes"]) == 2  # halo + line
    go.Figure(fig)  # valid against Plotly's schema


def test_mask_figure_y_axis_points_down_and_covers_the_image():
    fig = figures.mask_figure(URI, labels(), NAMES)
    assert fig["layout"]["xaxis"]["range"] == [-0.5, 7.5]
    assert fig["layout"]["yaxis"]["range"] == [5.5, -0.5]
    assert fig["layout"]["yaxis"]["scaleanchor"] == "x"


def test_photo_is_one_layout_image_below_the_traces_covering_the_pixel_grid():
    """Pixel (r, c) is centred on (x=c, y=r): the photo spans x from -0.5 to W - 0.5 and y from -0.5 to H - 0.5."""
    for fig in (figures.mask_figure(PHOTO, labels(), NAMES),
                figures.heatmap_figure(PHOTO, URI, (6, 8))):  # fmt: skip
        photo = fig["layout"]["images"][figures.PHOTO_IMAGE]
        assert photo["source"] == PHOTO and photo["layer"] == "below" and photo["sizing"] == "stretch"
        assert (photo["x"], photo["y"], photo["sizex"], photo["sizey"]) == (-0.5, -0.5, 8, 6)
        assert (photo["xref"], photo["yref"], photo["xanchor"], photo["yanchor"]) == ("x", "y", "left", "top")
        assert all(t.get("source") != PHOTO for t in fig["data"])
        go.Figure(fig)


def test_background_is_transparent_and_other_classes_coloured():
    colours = figures.class_colours(NAMES)
    assert colours[0] == figures.BACKGROUND_COLOUR and len(set(colours[1:])) == 3
    scale = figures.discrete_colorscale(colours)
    assert scale[0] == [0.0, colours[0]] and scale[-1] == [1.0, colours[-1]]


def test_heatmap_figure_draws_the_overlay_as_a_layout_image_over_the_photo():
    view = {"x": [1.0, 3.0], "y": [4.0, 2.0]}
    fig = figures.heatmap_figure(PHOTO, URI, (6, 8), opacity=0.6, view=view, outline=["M0,0 L1,1 Z"])
    photo, overlay = fig["layout"]["images"]
    assert overlay["source"] == URI and overlay["opacity"] == 0.6 and photo["source"] == PHOTO
    # the same pixel box as the photo (anchored at its other edge: plotly.js draws one of two images keyed alike),
    # drawn after it (so above it), below the outline shapes
    def box(image):
        left = image["x"] - (image["sizex"] if image["xanchor"] == "right" else 0)
        return left, image["y"], image["sizex"], image["sizey"], image["yanchor"], image["xref"], image["yref"]

    assert box(overlay) == box(photo) == (-0.5, -0.5, 8, 6, "top", "x", "y")
    assert overlay["layer"] == photo["layer"] == "below" and overlay["sizing"] == photo["sizing"] == "stretch"
    assert (overlay["x"], overlay["sizex"]) != (photo["x"], photo["sizex"])
    (hover,) = fig["data"]
    assert hover["type"] == "image" and hover["hoverinfo"] == "x+y"
    decoded = Image.open(io.BytesIO(base64.b64decode(hover["source"].split(",", 1)[1])))
    assert decoded.size == (8, 6) and np.asarray(decoded.convert("RGBA"))[..., 3].max() == 0  # transparent
    assert fig["layout"]["xaxis"]["range"] == [1.0, 3.0] and fig["layout"]["yaxis"]["range"] == [4.0, 2.0]
    assert len(fig["layout"]["shapes"]) == 2
    go.Figure(fig)
    json.dumps(fig)


def test_placeholder_figure():
    fig = figures.placeholder_figure("hello")
    assert fig["data"] == [] and fig["layout"]["annotations"][0]["text"] == "hello"
    go.Figure(fig)


@pytest.mark.parametrize(
    ("relayout", "expected"),
    [
        ({"xaxis.range[0]": 1, "xaxis.range[1]": 3, "yaxis.range[0]": 5, "yaxis.range[1]": 2},
         {"x": [1.0, 3.0], "y": [5.0, 2.0]}),
        ({"xaxis.range": [1, 2]}, {"x": [1.0, 2.0]}),
        ({"xaxis.autorange": True, "yaxis.autorange": True}, {"x": [-0.5, 7.5], "y": [5.5, -0.5]}),
        ({"dragmode": "lasso"}, None),
        ({"autosize": True}, None),
        (None, None),
    ],
)  # fmt: skip
def test_view_from_relayout(relayout, expected):
    assert figures.view_from_relayout(relayout, (6, 8)) == expected
