"""Display rendering: arrays to PNG data URIs, display normalisation and colour maps.

The engine returns RAW maps; how to show them is decided here. Unsigned maps (e.g. ReLU'd CAMs) are shown from 0 (or
their 0.5th percentile when negative values occur) to their 99.5th percentile; signed maps on a symmetric diverging
scale [-L, L] with L the 99.5th percentile of |map|, so that a few extreme pixels do not wash out the rest. The overlay
is RGBA: its alpha grows with the normalised magnitude, so weak attribution lets the image show through.

Maps are sent to the browser as palette PNG images (one byte per pixel, the overlay's 255 RGBA colours in the
palette) rather than JSON arrays (hundreds of kB) or RGBA PNGs (four times the bytes and the encoding time).
"""

from __future__ import annotations

import base64
import functools
import io
import math

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


PALETTE_SIZE = 255  # odd, so that the middle entry is exactly 0.5: the zero of a signed map is fully transparent


@functools.lru_cache(maxsize=16)
def colour_lut(colorscale: str, n: int = PALETTE_SIZE) -> np.ndarray:
    """(n, 3) uint8 lookup table sampled from a named Plotly colour scale."""
    samples = sample_colorscale(get_colorscale(colorscale), np.linspace(0, 1, n), colortype="tuple")
    lut = np.array(samples, dtype=np.float64)
    if lut.max() <= 1.0:
        lut = lut * 255
    lut = np.clip(lut.round(), 0, 255).astype(np.uint8)
    lut.setflags(write=False)
    return lut


@functools.lru_cache(maxsize=32)
def overlay_palette(signed: bool, colorscale: str | None = None, gamma: float = 0.6) -> np.ndarray:
    """(PALETTE_SIZE, 4) uint8 RGBA palette of the overlay: entry k is the colour at position k / (n - 1) of the scale
    and an alpha growing with the magnitude there (|2p - 1| for signed maps, p otherwise) to the power `gamma`."""
    colorscale = colorscale or (SIGNED_COLORSCALE if signed else UNSIGNED_COLORSCALE)
    position = np.linspace(0.0, 1.0, PALETTE_SIZE)
    magnitude = np.abs(position * 2.0 - 1.0) if signed else position
    alpha = np.round(255 * magnitude**gamma).astype(np.uint8)
    palette = np.concatenate([colour_lut(colorscale), alpha[:, None]], axis=1)
    palette.setflags(write=False)
    return palette


def palette_index(heatmap: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(H, W) uint8 palette entries of a map shown on [lo, hi] (clipped; NaN as 0)."""
    values = np.nan_to_num(np.asarray(heatmap, dtype=np.float32))
    position = np.clip((values - np.float32(lo)) * np.float32(1.0 / (hi - lo)), 0.0, 1.0)
    return np.rint(position * np.float32(PALETTE_SIZE - 1)).astype(np.uint8)


def colorize(
    heatmap: np.ndarray, lo: float, hi: float, signed: bool, colorscale: str | None = None, gamma: float = 0.6
) -> np.ndarray:
    """RGBA uint8 overlay of a map: colour from the scale, alpha from the normalised magnitude (0 is transparent);
    the `overlay_palette` looked up at `palette_index`, so it is exactly what `heatmap_uri` draws."""
    return overlay_palette(signed, colorscale, gamma)[palette_index(heatmap, lo, hi)]


def palette_png_data_uri(index: np.ndarray, palette: np.ndarray) -> str:
    """A palette PNG (one byte per pixel, alpha per entry in its tRNS chunk) as a data URI: about a quarter of the
    bytes and of the encoding time of the same image as RGBA."""
    image = Image.fromarray(np.ascontiguousarray(index, dtype=np.uint8), mode="P")
    image.putpalette(palette[:, :3].tobytes(), rawmode="RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1, transparency=palette[:, 3].tobytes())
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def heatmap_uri(heatmap: np.ndarray, signed: bool) -> tuple[str, tuple[float, float]]:
    """The PNG overlay of a raw map (a palette PNG that decodes to `colorize`'s RGBA) and the (lo, hi) range it was
    normalised with."""
    lo, hi = display_range(heatmap, signed)
    return palette_png_data_uri(palette_index(heatmap, lo, hi), overlay_palette(signed)), (lo, hi)


@functools.lru_cache(maxsize=8)
def blank_png_uri(shape: tuple[int, int]) -> str:
    """A fully transparent PNG of `shape` (H, W) as a data URI (a few hundred bytes): the hover carrier of a figure
    whose pictures are layout images."""
    height, width = (int(v) for v in shape)
    image = Image.new("P", (width, height), 0)
    image.putpalette(b"\x00\x00\x00")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True, transparency=0)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


SCALE_TICKS = 5


def scale_ticks(lo: float, hi: float, n: int = SCALE_TICKS) -> list[str]:
    """The `n` labels of a colour bar on [lo, hi], evenly spaced from lo to hi, two significant digits."""
    return [format_tick(lo + (hi - lo) * k / (n - 1)) for k in range(n)]


def format_tick(value: float) -> str:
    """Two significant digits in plain notation from 1e-4 to 1e6 (scientific outside), no trailing zeros, a true
    minus sign; values within round-off of 0 are 0."""
    rounded = float(f"{value:.2g}")
    if abs(rounded) < 1e-12:
        return "0"
    if 1e-4 <= abs(rounded) < 1e6:
        decimals = max(0, 1 - math.floor(math.log10(abs(rounded))))
        text = f"{rounded:.{decimals}f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text
    else:
        text = f"{rounded:.1e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")
    return text.replace("-", "\u2212")


def gradient_css(colorscale: str) -> str:
    """A CSS `linear-gradient` (left to right) of a named Plotly colour scale."""
    stops = ", ".join(f"{colour} {100 * position:.1f}%" for position, colour in colorscale_stops(colorscale))
    return f"linear-gradient(to right, {stops})"
