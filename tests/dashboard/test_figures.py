"""Pure figure builders (dashboard.view.figures): traces, shapes, views."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

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
                figures.heatmap_figure(PHOTO, URI, (6, 8), (0.0, 1.0), signed=False)):  # fmt: skip
        (photo,) = fig["layout"]["images"]
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


def test_heatmap_figure_has_image_overlay_and_colour_bar():
    view = {"x": [1.0, 3.0], "y": [4.0, 2.0]}
    fig = figures.heatmap_figure(PHOTO, URI, (6, 8), (-2.0, 2.0), signed=True, opacity=0.6, view=view,
                                 outline=["M0,0 L1,1 Z"])  # fmt: skip
    overlay, scale = fig["data"][figures.OVERLAY_TRACE], fig["data"][figures.COLORBAR_TRACE]
    assert len(fig["data"]) == 2 and overlay["type"] == "image" and overlay["source"] == URI
    assert overlay["opacity"] == 0.6
    assert scale["marker"]["cmin"] == -2.0 and scale["marker"]["showscale"]
    assert scale["marker"]["colorscale"][0] == [0.0, "rgb(5,48,97)"]  # explicit stops: plotly.js lacks "RdBu_r"
    assert fig["layout"]["xaxis"]["range"] == [1.0, 3.0] and fig["layout"]["yaxis"]["range"] == [4.0, 2.0]
    go.Figure(fig)
    json.dumps(fig)


def test_unsigned_heatmap_uses_sequential_scale():
    fig = figures.heatmap_figure(URI, URI, (6, 8), (0.0, 1.0), signed=False)
    from plotly.colors import get_colorscale

    turbo = [list(stop) for stop in get_colorscale("Turbo")]
    assert fig["data"][figures.COLORBAR_TRACE]["marker"]["colorscale"] == turbo


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
