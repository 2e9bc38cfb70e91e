"""Decode and validate images: uploads from the browser and the bundled samples.

Uploads arrive as `data:<mime>;base64,<payload>` strings from `dcc.Upload`. Every failure raises `ImageError` with a
message meant for the user. Checks, in order: the data URI (its MIME type is ignored: the bytes decide), the encoded
size cap, the format (only Pillow's PNG, JPEG, WebP, TIFF, BMP and GIF plugins may parse an upload; SVG, PDF and the
like are named in the message), the decoded pixel count (read from the header before decoding, so a decompression bomb
is refused before it is expanded; Pillow's own bomb warning is turned into an error too), then the first frame of
animated / multi-page files, EXIF orientation, conversion to RGB (alpha is composited over white; palette, greyscale,
16-bit, CMYK are converted) and finally the fit to the model's input: a centre crop to the model's aspect ratio and a
resize. Every conversion is listed in `LoadedImage.conversions`, so the user is told what was done.
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

# Pillow format plugin -> label. Only these plugins ever parse an upload (`Image.open(..., formats=...)`).
ALLOWED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WebP", "TIFF": "TIFF", "BMP": "BMP",
                   "GIF": "GIF"}  # fmt: skip
PLUGINS = ["PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF"]  # the JPEG plugin returns MPO files itself
FORMATS = "PNG, JPEG, WebP, TIFF, BMP or GIF"
SNIFFED_TYPES = ((b"%pdf", "PDF"), (b"%!ps", "PostScript/EPS"), (b"ftypheic", "HEIC"), (b"ftypheix", "HEIC"),
                 (b"ftypavif", "AVIF"), (b"pk\x03\x04", "ZIP"))  # fmt: skip
EXIF_ORIENTATION = 0x0112
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
    conversions: tuple[str, ...] = ()  # what was changed beyond resizing, e.g. "CMYK converted to RGB"


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


def _sniff_unsupported(data: bytes) -> str | None:
    """Name a common file type we do not accept, from its first bytes (for a clearer message)."""
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
        return "SVG (vector) images are not supported: export the image as PNG or JPEG."
    for magic, name in SNIFFED_TYPES:
        if head.startswith(magic) or data[4:12].lower() == magic:
            return f"{name} files are not supported. Use {FORMATS}."
    return None


def _open(data: bytes) -> Image.Image:
    """`Image.open` restricted to the allowed format plugins, with every failure turned into an ImageError."""
    try:
        with warnings.catch_warnings():
            # Pillow warns above ~89 MP at open; `open_image` refuses anything over `max_pixels` right after, with the
            # size in the message. Pillow's hard limit (DecompressionBombError, ~179 MP) still applies here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=PLUGINS)
    except UnidentifiedImageError:
        known = _sniff_unsupported(data)
        raise ImageError(known or f"The file is not a {FORMATS} image (or its header is damaged).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("The image has too many pixels (possible decompression bomb).") from None
    except Exception as err:  # a hostile header can raise OSError, SyntaxError, ValueError, struct.error, ...
        raise ImageError(f"The image file is damaged or truncated ({err}).") from None


def open_image(data: bytes, max_pixels: int) -> tuple[Image.Image, str, list[str]]:
    """Decode `data` to an upright RGB PIL image; returns (image, format label, conversions made, for the user).

    Multi-frame files (animated GIF/WebP, multi-page TIFF) give their first frame.
    """
    if not data:
        raise ImageError("The file is empty.")
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = _open(data)
        fmt = ALLOWED_FORMATS[str(image.format).upper()]
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
            if getattr(image, "is_animated", False):
                image.seek(0)
                notes.append("first frame used (the file has several frames/pages)")
            rawmode = image.tile[0].args if image.tile and isinstance(image.tile[0].args, str) else ""
            image.load()
            if image.mode in ("RGB", "RGBA") and ";16" in rawmode:
                notes.append("16 bits per channel reduced to 8")
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
            image = ImageOps.exif_transpose(image)
            if orientation not in (None, 1):
                notes.append(f"turned upright (EXIF orientation {orientation})")
            rgb, mode_notes = convert_to_rgb(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError("The image has too many pixels (possible decompression bomb).") from None
        except MemoryError:
            raise ImageError("The image needs too much memory to decode.") from None
        except Exception as err:  # decoders raise OSError, SyntaxError, ValueError, EOFError, ... on damaged data
            raise ImageError(f"The image file is damaged or truncated ({err}).") from None
    return rgb, fmt, notes + mode_notes


MODE_NAMES = {"1": "1-bit black and white", "L": "greyscale", "LA": "greyscale with transparency",
              "P": "palette", "PA": "palette with transparency", "CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "Lab",
              "HSV": "HSV", "I": "32-bit integer greyscale", "F": "floating-point greyscale",
              "I;16": "16-bit greyscale", "I;16B": "16-bit greyscale", "I;16L": "16-bit greyscale",
              "RGBA": "RGBA", "RGBa": "RGBA",
              "RGBX": "RGBX"}  # fmt: skip


def convert_to_rgb(image: Image.Image) -> tuple[Image.Image, list[str]]:
    """`to_rgb` with a note for the user when the mode was not plain RGB."""
    notes = []
    if image.mode != "RGB":
        name = MODE_NAMES.get(image.mode, image.mode)
        transparent = image.mode in ("RGBA", "RGBa", "LA", "PA") or "transparency" in image.info
        wide = image.mode in ("I", "F") or image.mode.startswith("I;16")
        scaled = " (scaled to 8 bits by its maximum)" if wide else ""
        notes.append(f"{name} converted to RGB{scaled}" + (", transparency composited over white" if transparent
                                                            else ""))  # fmt: skip
    elif "transparency" in image.info:
        notes.append("transparent colour composited over white")
    return to_rgb(image), notes


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency is composited over white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() or 1.0
        image = Image.fromarray((array / top * 255).round().astype(np.uint8))
    elif image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        lo, hi = float(np.nanmin(array)), float(np.nanmax(array))
        scaled = (array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)
        image = Image.fromarray((np.nan_to_num(scaled) * 255).round().astype(np.uint8))
    if image.mode == "P" or image.mode in ("LA", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode == "RGBa":
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


def centre_crop_box(size: tuple[int, int], size_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The (left, top, right, bottom) centre crop of an image of `size` (width, height) to the aspect ratio of
    `size_hw`, or None when the aspect ratios already agree (within 1%)."""
    height, width = size_hw
    src_w, src_h = size
    target_aspect, src_aspect = width / height, src_w / src_h
    if math.isclose(target_aspect, src_aspect, rel_tol=0.01):
        return None
    if src_aspect > target_aspect:
        new_w = max(1, round(src_h * target_aspect))
        left = (src_w - new_w) // 2
        return left, 0, left + new_w, src_h
    new_h = max(1, round(src_w / target_aspect))
    top = (src_h - new_h) // 2
    return 0, top, src_w, top + new_h


def fit_to_model(image: Image.Image, size_hw: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """Centre-crop `image` to the aspect ratio of `size_hw` and resize to it; returns (uint8 array, cropped?)."""
    height, width = size_hw
    box = centre_crop_box(image.size, size_hw)
    if box is not None:
        image = image.crop(box)
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).copy(), box is not None


def load_bytes(data: bytes, input_size: tuple[int, int] | None, *, max_pixels: int, max_side: int = 512) -> LoadedImage:
    """Decode, validate and fit image bytes to the model."""
    image, fmt, conversions = open_image(data, max_pixels)
    size = target_size(image.size, input_size, max_side)
    array, cropped = fit_to_model(image, size)
    w, h = image.size
    note = f"{w}{TIMES}{h} {fmt}"
    if (h, w) != size:
        note += f" → {size[1]}{TIMES}{size[0]}" + (" (centre crop)" if cropped else "")
    return LoadedImage(array=array, original_size=(w, h), format=fmt, note=note, conversions=tuple(conversions))


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
