"""Display rendering: arrays to PNG data URIs, display normalisation and colour maps.

The engine returns RAW maps; how to show them is decided here. Unsigned maps (e.g. ReLU'd CAMs) are shown from 0 (or
their 0.5th percentile when negative values occur) to their 99.5th percentile; signed maps on a symmetric diverging
scale [-L, L] with L the 99.5th percentile of |map|, so that a few extreme pixels do not wash out the rest. The overlay
is RGBA: its alpha grows with the normalised magnitude, so weak attribution lets the image show through.

Maps are sent to the browser as PNG images (a few kB) rather than JSON arrays (hundreds of kB).
"""

from __future__ import annotations

import base64
import functools
import io

import numpy as np
from PIL import Image
from plotly.colors import get_colorscale, sample_colorscale

UNSIGNED_COLORSCALE = "Turbo"
SIGNED_COLORSCALE = "RdBu_r"
CLIP_PERCENTILE = 99.5


def png_data_uri(array: np.ndarray) -> str:
    """Encode an (H, W), (H, W, 3) or (H, W, 4) uint8 array as a `data:image/png;base64,...` URI."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def display_range(heatmap: np.ndarray, signed: bool, percentile: float = CLIP_PERCENTILE) -> tuple[float, float]:
    """(lo, hi) of the colour scale for one map; always lo < hi, also for constant maps."""
    values = np.asarray(heatmap, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (-1.0, 1.0) if signed else (0.0, 1.0)
    if signed:
        limit = float(np.percentile(np.abs(values), percentile))
        if limit <= 0:
            limit = float(np.abs(values).max()) or 1.0
        return -limit, limit
    lo = 0.0 if values.min() >= 0 else float(np.percentile(values, 100 - percentile))
    hi = float(np.percentile(values, percentile))
    if hi <= lo:
        hi = float(values.max())
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def is_blank(heatmap: np.ndarray) -> bool:
    """True when a map carries no information (all zero or not finite), e.g. a dead ReLU layer."""
    values = np.asarray(heatmap)
    finite = values[np.isfinite(values)]
    return finite.size == 0 or not np.any(finite)


@functools.lru_cache(maxsize=16)
def colorscale_stops(colorscale: str) -> tuple[tuple[float, str], ...]:
    """A named Plotly colour scale as explicit [position, colour] stops.

    plotly.js knows only a few scale names (and not "Turbo" or reversed "_r" names), and dict figures skip
    plotly.py's name resolution, so figures carry the stops themselves.
    """
    return tuple((float(position), str(colour)) for position, colour in get_colorscale(colorscale))


@functools.lru_cache(maxsize=16)
def colour_lut(colorscale: str, n: int = 256) -> np.ndarray:
    """(n, 3) uint8 lookup table sampled from a named Plotly colour scale."""
    samples = sample_colorscale(get_colorscale(colorscale), np.linspace(0, 1, n), colortype="tuple")
    lut = np.array(samples, dtype=np.float64)
    if lut.max() <= 1.0:
        lut = lut * 255
    lut = np.clip(lut.round(), 0, 255).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def colorize(
    heatmap: np.ndarray, lo: float, hi: float, signed: bool, colorscale: str | None = None, gamma: float = 0.6
) -> np.ndarray:
    """RGBA uint8 overlay of a map: colour from the scale, alpha from the normalised magnitude (0 is transparent)."""
    colorscale = colorscale or (SIGNED_COLORSCALE if signed else UNSIGNED_COLORSCALE)
    values = np.nan_to_num(np.asarray(heatmap, dtype=np.float64))
    position = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    if signed:
        magnitude = np.abs(position * 2.0 - 1.0)
    else:
        magnitude = position
    lut = colour_lut(colorscale)
    rgb = lut[np.round(position * (len(lut) - 1)).astype(np.int64)]
    alpha = np.round(255 * magnitude**gamma).astype(np.uint8)
    return np.dstack([rgb, alpha])


def heatmap_uri(heatmap: np.ndarray, signed: bool) -> tuple[str, tuple[float, float]]:
    """The PNG overlay of a raw map and the (lo, hi) range it was normalised with."""
    lo, hi = display_range(heatmap, signed)
    return png_data_uri(colorize(heatmap, lo, hi, signed)), (lo, hi)
