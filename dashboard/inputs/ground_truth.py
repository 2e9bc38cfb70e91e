"""Ground-truth masks uploaded with an image: decode, check and fit them to the image the model sees.

A ground truth is a lossless PNG, in one of two forms:

- **indexed**: a palette ("P") or greyscale ("L", 16-bit) PNG whose pixel values are class indices (the PASCAL VOC
  and Cityscapes convention). The value 255 means "void" (VOC's unlabelled boundary pixels) when the model has fewer
  than 256 classes; void pixels count in no IoU and no error region.
- **colour**: an RGB(A) PNG painted in the app's class colours (`view.figures.class_colours`, as the mask figure
  shows them). The background class, transparent in the app, is black (0, 0, 0) or a fully transparent pixel.

Sizes: the image was centre-cropped to the model's aspect ratio and resized (`dashboard.inputs.images.fit_to_model`). A
ground truth must have the aspect ratio of the image as uploaded (any resolution: it is resized with nearest-neighbour
sampling, which never invents a class); it then gets the same centre crop and a nearest resize to the model's size,
and the note says so. Another aspect ratio is refused: such a mask was made for another picture (or another crop),
and stretching it would shift every boundary.

Every refusal is a `GroundTruthError` whose message is meant for the user.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from dashboard.inputs.images import TIMES, centre_crop_box, decode_data_uri
from dashboard.view.figures import BACKGROUND_COLOUR, class_colours

VOID = -1  # label of void / unlabelled pixels in the decoded map (ignored by explainers.errors with ignore=VOID)
VOID_INDEX = 255  # the value that marks void in an indexed PNG
INDEXED_MODES = ("P", "L", "I;16", "I;16B", "I;16L", "I")


class GroundTruthError(ValueError):
    """A ground-truth mask that cannot be used; the message is shown to the user."""


@dataclass(frozen=True)
class GroundTruth:
    """A ground-truth label map fitted to the model's image, and how it was read."""

    labels: np.ndarray  # (H, W) int32 class indices; VOID where unlabelled
    form: str  # "indexed" | "colour"
    note: str  # for the user, e.g. "256x256 indexed PNG → 128x128 (nearest)" (with TIMES)

    @property
    def void_pixels(self) -> int:
        return int(np.sum(self.labels == VOID))


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """(r, g, b) of a "#rrggbb" colour."""
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def colour_table(class_names: Sequence[str]) -> dict[tuple[int, int, int], int]:
    """{(r, g, b): class index} for colour ground truths: the app's class colours, background as black."""
    table: dict[tuple[int, int, int], int] = {}
    for index, colour in enumerate(class_colours(class_names)):
        rgb = (0, 0, 0) if colour == BACKGROUND_COLOUR else hex_rgb(colour)
        if rgb in table:
            raise GroundTruthError(
                f"Classes “{class_names[table[rgb]]}” and “{class_names[index]}” share a colour in the app, so a "
                "colour ground truth is ambiguous for this model: upload an indexed PNG (pixel value = class index)."
            )
        table[rgb] = index
    return table


def _open_png(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise GroundTruthError("The ground-truth file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["PNG"])
            width, height = image.size
            if width * height > max_pixels:
                raise GroundTruthError(f"The ground truth is too large ({width}{TIMES}{height}).")
            image.load()
    except GroundTruthError:
        raise
    except UnidentifiedImageError:
        raise GroundTruthError(
            "The ground truth must be a PNG (lossless): an indexed PNG of class indices or a PNG in the class colours."
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise GroundTruthError("The ground truth has too many pixels.") from None
    except Exception as err:  # damaged files raise OSError, SyntaxError, ValueError, ...
        raise GroundTruthError(f"The ground-truth PNG is damaged or truncated ({err}).") from None
    return image


def _indexed_labels(image: Image.Image, class_names: Sequence[str]) -> np.ndarray:
    values = np.asarray(image).astype(np.int64)
    num_classes = len(class_names)
    labels = values.astype(np.int32)
    if num_classes <= VOID_INDEX:
        labels[values == VOID_INDEX] = VOID
    bad = (labels != VOID) & (labels >= num_classes)
    if bad.any():
        found = sorted({int(v) for v in np.unique(values[bad])})
        shown = ", ".join(str(v) for v in found[:5]) + (", ..." if len(found) > 5 else "")
        raise GroundTruthError(
            f"The ground truth has class indices {shown}, but the model has only classes 0-{num_classes - 1} "
            f"({', '.join(class_names)})" + (f"; {VOID_INDEX} marks void pixels." if num_classes <= VOID_INDEX else ".")
        )
    return labels


def _colour_labels(image: Image.Image, class_names: Sequence[str]) -> np.ndarray:
    table = colour_table(class_names)
    rgba = np.asarray(image.convert("RGBA"))
    rgb = rgba[..., :3].astype(np.int64)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    transparent = rgba[..., 3] == 0
    labels = np.full(codes.shape, VOID, dtype=np.int32)
    for (r, g, b), index in table.items():
        labels[codes == ((r << 16) | (g << 8) | b)] = index
    background = [i for i, c in enumerate(class_colours(class_names)) if c == BACKGROUND_COLOUR]
    if background:
        labels[transparent] = background[0]
    unknown = (labels == VOID) & ~transparent
    if unknown.any():
        found, counts = np.unique(codes[unknown], return_counts=True)
        order = np.argsort(-counts)[:3]
        shown = ", ".join(f"#{int(found[i]):06x} ({int(counts[i])} px)" for i in order)
        legend = ", ".join(
            f"{name} {'#000000' if colour == BACKGROUND_COLOUR else colour}"
            for name, colour in zip(class_names, class_colours(class_names), strict=True)
        )
        raise GroundTruthError(
            f"The ground truth has {len(found)} colour(s) that are not class colours, e.g. {shown}. "
            f"Paint it with exactly these colours: {legend} (or upload an indexed PNG; a JPEG's blur is not allowed)."
        )
    if transparent.any() and not background:
        raise GroundTruthError("The ground truth has transparent pixels, but the model has no background class.")
    return labels


def fit_labels(labels: np.ndarray, original_size: tuple[int, int], size_hw: tuple[int, int]) -> tuple[np.ndarray, str]:
    """A label map (h, w) fitted to the model's image: same centre crop as the image, nearest resize to `size_hw`.

    `original_size`: (width, height) of the image as uploaded; the label map must have its aspect ratio.
    Returns (labels (H, W) int32, a note for the user).
    """
    height, width = labels.shape
    src_w, src_h = original_size
    if not math.isclose(width / height, src_w / src_h, rel_tol=0.01):
        raise GroundTruthError(
            f"The ground truth is {width}{TIMES}{height} but the image was uploaded as {src_w}{TIMES}{src_h}: another "
            "shape, so it belongs to another picture or crop. Upload the mask made for this image (same aspect ratio)."
        )
    image = Image.fromarray(labels.astype(np.int32))  # mode "I": NEAREST resizes keep every value
    if (width, height) != (src_w, src_h):
        image = image.resize((src_w, src_h), Image.Resampling.NEAREST)
    box = centre_crop_box(image.size, size_hw)
    if box is not None:
        image = image.crop(box)
    if image.size != (size_hw[1], size_hw[0]):
        image = image.resize((size_hw[1], size_hw[0]), Image.Resampling.NEAREST)
    fitted = np.asarray(image, dtype=np.int32).copy()
    note = ""
    if (height, width) != tuple(size_hw):
        note = f" → {size_hw[1]}{TIMES}{size_hw[0]} (" + ("centre crop, " if box is not None else "") + "nearest)"
    return fitted, note


def load_ground_truth(
    data: bytes,
    class_names: Sequence[str],
    original_size: tuple[int, int],
    size_hw: tuple[int, int],
    *,
    max_pixels: int = 100_000_000,
) -> GroundTruth:
    """Decode a ground-truth PNG (see the module docstring) and fit it to the model's (H, W) image."""
    image = _open_png(data, max_pixels)
    if image.mode in INDEXED_MODES:
        form, labels = "indexed", _indexed_labels(image, class_names)
    elif image.mode in ("RGB", "RGBA"):
        form, labels = "colour", _colour_labels(image, class_names)
    else:
        raise GroundTruthError(
            f"A {image.mode} PNG cannot be a ground truth: use an indexed (palette or greyscale) or RGB PNG."
        )
    fitted, resized = fit_labels(labels, original_size, size_hw)
    note = f"{image.size[0]}{TIMES}{image.size[1]} {form} PNG{resized}"
    return GroundTruth(labels=fitted, form=form, note=note)


def load_ground_truth_upload(
    contents: str,
    class_names: Sequence[str],
    original_size: tuple[int, int],
    size_hw: tuple[int, int],
    *,
    max_bytes: int,
    max_pixels: int = 100_000_000,
) -> GroundTruth:
    """`load_ground_truth` for a `dcc.Upload` data URI."""
    try:
        data = decode_data_uri(contents, max_bytes)
    except ValueError as err:
        raise GroundTruthError(str(err)) from None
    return load_ground_truth(data, class_names, original_size, size_hw, max_pixels=max_pixels)
