"""Decode and validate images: uploads from the browser and the bundled samples.

Uploads arrive as `data:<mime>;base64,<payload>` strings from `dcc.Upload`. Every failure raises `ImageError` with a
message meant for the user. Checks, in order: the data URI, the encoded size cap, the format (PNG, JPEG, WebP, TIFF,
BMP), the decoded pixel count (read from the header before decoding, so a decompression bomb is refused before it is
expanded; Pillow's own bomb warning is turned into an error too), then EXIF orientation, conversion to RGB (alpha is
composited over white, palettes and 16-bit greys are converted), and finally the fit to the model's input: a centre crop
to the model's aspect ratio and a resize.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WebP", "TIFF": "TIFF", "BMP": "BMP"}
MIN_SIDE = 8
TIMES = "\u00d7"


class ImageError(ValueError):
    """An image that cannot be used; the message is shown to the user."""


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image ready for the model, and what was done to it."""

    array: np.ndarray  # (H, W, 3) uint8
    original_size: tuple[int, int]  # (width, height) as uploaded, after EXIF orientation
    format: str
    note: str  # human summary of the conversions, e.g. "1024x768 JPEG -> 128x128 (centre crop)"


def decode_data_uri(contents: str, max_bytes: int) -> bytes:
    """The raw bytes of a `data:...;base64,...` upload, refusing payloads over `max_bytes`."""
    if not isinstance(contents, str) or not contents.startswith("data:") or "," not in contents:
        raise ImageError("The upload could not be read (expected a data URI from the browser).")
    header, payload = contents.split(",", 1)
    if not header.endswith(";base64"):
        raise ImageError("The upload is not base64-encoded.")
    if len(payload) * 3 // 4 > max_bytes:
        raise ImageError(f"The file is too large ({_mib(len(payload) * 3 // 4)}); the limit is {_mib(max_bytes)}.")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("The upload is not valid base64 data.") from None


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def open_image(data: bytes, max_pixels: int) -> tuple[Image.Image, str]:
    """Decode `data` to an RGB PIL image with EXIF orientation applied; returns (image, format label)."""
    if not data:
        raise ImageError("The file is empty.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageError("The file is not an image Pillow can read. Use PNG, JPEG, WebP, TIFF or BMP.") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError("The image has too many pixels (possible decompression bomb).") from None
        fmt = ALLOWED_FORMATS.get(str(image.format).upper())
        if fmt is None:
            raise ImageError(f"{image.format} images are not supported. Use PNG, JPEG, WebP, TIFF or BMP.")
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(
                f"The image is too large ({width}{TIMES}{height} = {width * height / 1e6:.1f} MP); "
                f"the limit is {max_pixels / 1e6:.0f} MP."
            )
        if min(width, height) < MIN_SIDE:
            raise ImageError(
                f"The image is too small ({width}{TIMES}{height}); each side needs at least {MIN_SIDE} px."
            )
        try:
            image.load()
            image = ImageOps.exif_transpose(image)
            rgb = to_rgb(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError("The image has too many pixels (possible decompression bomb).") from None
        except (OSError, SyntaxError, ValueError) as err:
            raise ImageError(f"The image file is damaged or truncated ({err}).") from None
    return rgb, fmt


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency is composited over white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() or 1.0
        image = Image.fromarray((array / top * 255).round().astype(np.uint8), mode="L")
    elif image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        lo, hi = float(np.nanmin(array)), float(np.nanmax(array))
        scaled = (array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)
        image = Image.fromarray((np.nan_to_num(scaled) * 255).round().astype(np.uint8), mode="L")
    if image.mode == "P" or image.mode in ("LA", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def target_size(size: tuple[int, int], input_size: tuple[int, int] | None, max_side: int) -> tuple[int, int]:
    """(H, W) the model will see: its fixed input size, or for dynamic models the image fitted into `max_side`
    and rounded down to a multiple of 32 (what encoder-decoder nets with 5 poolings need)."""
    if input_size is not None:
        return int(input_size[0]), int(input_size[1])
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return (max(32, int(height * scale) // 32 * 32), max(32, int(width * scale) // 32 * 32))


def fit_to_model(image: Image.Image, size_hw: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """Centre-crop `image` to the aspect ratio of `size_hw` and resize to it; returns (uint8 array, cropped?)."""
    height, width = size_hw
    src_w, src_h = image.size
    target_aspect, src_aspect = width / height, src_w / src_h
    cropped = not math.isclose(target_aspect, src_aspect, rel_tol=0.01)
    if cropped:
        if src_aspect > target_aspect:
            new_w = max(1, round(src_h * target_aspect))
            left = (src_w - new_w) // 2
            image = image.crop((left, 0, left + new_w, src_h))
        else:
            new_h = max(1, round(src_w / target_aspect))
            top = (src_h - new_h) // 2
            image = image.crop((0, top, src_w, top + new_h))
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).copy(), cropped


def load_bytes(data: bytes, input_size: tuple[int, int] | None, *, max_pixels: int, max_side: int = 512) -> LoadedImage:
    """Decode, validate and fit image bytes to the model."""
    image, fmt = open_image(data, max_pixels)
    size = target_size(image.size, input_size, max_side)
    array, cropped = fit_to_model(image, size)
    w, h = image.size
    note = f"{w}{TIMES}{h} {fmt}"
    if (h, w) != size:
        note += f" → {size[1]}{TIMES}{size[0]}" + (" (centre crop)" if cropped else "")
    return LoadedImage(array=array, original_size=(w, h), format=fmt, note=note)


def load_upload(
    contents: str,
    input_size: tuple[int, int] | None,
    *,
    max_bytes: int,
    max_pixels: int,
    max_side: int = 512,
) -> LoadedImage:
    """Decode a `dcc.Upload` data URI into a model-ready image (see the module docstring for the checks)."""
    return load_bytes(decode_data_uri(contents, max_bytes), input_size, max_pixels=max_pixels, max_side=max_side)


def load_file(path: str | Path, input_size: tuple[int, int] | None, max_side: int = 512) -> LoadedImage:
    """Load an image file from disk (the bundled samples) with the same checks as an upload."""
    return load_bytes(Path(path).read_bytes(), input_size, max_pixels=100_000_000, max_side=max_side)
