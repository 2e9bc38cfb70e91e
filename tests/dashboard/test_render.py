"""Display normalisation, colour maps and PNG encoding (dashboard.view.render)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from dashboard.view import render


def decode(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGBA"))


def test_png_round_trip():
    array = np.random.default_rng(0).integers(0, 256, (7, 9, 4), dtype=np.uint8)
    np.testing.assert_array_equal(decode(render.png_data_uri(array)), array)


def test_unsigned_range_starts_at_zero_and_clips_outliers():
    heat = np.zeros((100, 100), dtype=np.float32)
    heat[:50] = np.linspace(0, 1, 50 * 100).reshape(50, 100)
    heat[0, 0] = 1000.0  # one extreme pixel
    lo, hi = render.display_range(heat, signed=False)
    assert lo == 0.0 and 0.9 < hi < 2


def test_signed_range_is_symmetric():
    heat = np.array([[-3.0, 1.0], [0.5, 2.0]])
    lo, hi = render.display_range(heat, signed=True, percentile=100)
    assert lo == -3.0 and hi == 3.0


@pytest.mark.parametrize("signed", [True, False])
def test_constant_and_empty_maps_get_a_valid_range(signed):
    for heat in (np.zeros((4, 4)), np.full((4, 4), 2.0), np.full((4, 4), np.nan)):
        lo, hi = render.display_range(heat, signed)
        assert np.isfinite([lo, hi]).all() and lo < hi


def test_blank_maps_are_detected():
    assert render.is_blank(np.zeros((3, 3)))
    assert not render.is_blank(np.eye(3))


def test_colorize_alpha_follows_magnitude():
    heat = np.array([[0.0, 0.5, 1.0]])
    rgba = render.colorize(heat, 0.0, 1.0, signed=False)
    assert rgba.shape == (1, 3, 4) and rgba.dtype == np.uint8
    assert rgba[0, 0, 3] == 0 and rgba[0, 2, 3] == 255 and 0 < rgba[0, 1, 3] < 255
    signed = render.colorize(np.array([[-1.0, 0.0, 1.0]]), -1.0, 1.0, signed=True)
    assert signed[0, 1, 3] == 0 and signed[0, 0, 3] == signed[0, 2, 3] == 255
    assert signed[0, 0, 2] > signed[0, 0, 0]  # negative is blue
    assert signed[0, 2, 0] > signed[0, 2, 2]  # positive is red


def test_heatmap_uri_returns_overlay_and_range():
    uri, (lo, hi) = render.heatmap_uri(np.arange(16, dtype=np.float32).reshape(4, 4), signed=False)
    assert decode(uri).shape == (4, 4, 4) and lo == 0 and hi > 14


@pytest.mark.parametrize("signed", [False, True])
def test_the_palette_png_decodes_to_the_rgba_overlay_and_is_smaller(signed):
    rng = np.random.default_rng(1)
    heat = rng.normal(size=(64, 80)).astype(np.float32)
    heat = heat if signed else np.abs(heat)
    uri, (lo, hi) = render.heatmap_uri(heat, signed)
    expected = render.colorize(heat, lo, hi, signed)
    np.testing.assert_array_equal(decode(uri), expected)
    assert len(uri) < len(render.png_data_uri(expected))
    # the palette is the colour scale's lookup table plus alpha from the magnitude, independently recomputed
    position = np.clip((heat.astype(np.float64) - lo) / (hi - lo), 0, 1)
    magnitude = np.abs(2 * position - 1) if signed else position
    alpha = np.round(255 * magnitude**0.6)
    assert np.abs(expected[..., 3].astype(np.float64) - alpha).max() <= 255 * (1 / (render.PALETTE_SIZE - 1)) ** 0.6


@pytest.mark.parametrize(
    ("lo", "hi"), [(0.0, 1.0), (-0.0123, 0.0123), (0.0, 1234.5), (0.0, 3e-7), (-5e8, 5e8), (0.1, 0.2), (2.5, 2.6)]
)
def test_colour_bar_ticks_read_back_to_evenly_spaced_values_within_two_digits(lo, hi):
    ticks = render.scale_ticks(lo, hi)
    values = [float(t.replace("\u2212", "-")) for t in ticks]
    expected = np.linspace(lo, hi, render.SCALE_TICKS)
    # two significant digits: each label within 5% of its value (the zero of a symmetric scale exactly 0)
    np.testing.assert_allclose(values, expected, rtol=0.05, atol=1e-12 + 1e-9 * max(abs(lo), abs(hi)))
    assert all(" " not in t and not t.endswith(".") and "e+" not in t for t in ticks)


def test_colour_bar_gradient_follows_the_scale_stops():
    css = render.gradient_css("RdBu_r")
    stops = render.colorscale_stops("RdBu_r")
    assert css.startswith("linear-gradient(to right, ") and css.count("rgb(") == len(stops)
    assert f"{stops[0][1]} 0.0%" in css and f"{stops[-1][1]} 100.0%" in css


def test_blank_png_is_transparent_at_the_given_size():
    pixels = decode(render.blank_png_uri((6, 9)))
    assert pixels.shape == (6, 9, 4) and not pixels[..., 3].any()
