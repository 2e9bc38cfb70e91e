"""Turn the user's selection on the mask figure into a boolean region mask.

Plotly image and heatmap traces report no points for box and lasso selections, so the geometry is read from
`selectedData["range"]` (box) and `selectedData["lassoPoints"]` (lasso); clicks come from `clickData`. Coordinates are
in pixel units: pixel (row r, column c) is centred on x = c, y = r and covers [c - 0.5, c + 0.5] x [r - 0.5, r + 0.5].

Rule: a pixel belongs to a box or lasso region when its centre lies inside the shape. A shape too small to contain any
centre selects the one pixel under its centre, so a tiny drag is never silently empty. Points outside the image are
clipped; a shape entirely outside the image is an error. Every error is a `SelectionError` whose message is meant for
the user.

`derive_region` then applies the choices under the selection: "whole objects" (a click selects the connected component
of the clicked pixel's class, a box or lasso the objects it touches) and a border choice (the inner ring, the outer
ring or the inside of the region, with a width in pixels), using `explainers.regions`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from skimage.draw import polygon as draw_polygon
from skimage.measure import find_contours

from dashboard.view.figures import is_background
from explainers.regions import border_label, border_region, component_at, objects_touched

Shape = tuple[int, int]

OUTSIDE_MESSAGE = "The selection lies outside the image. Select a region on the image itself."


class SelectionError(ValueError):
    """A selection that cannot become a region; the message is shown to the user."""


def _axis_key(mapping: Mapping[str, Any], axis: str) -> Any:
    """`mapping["x"]`, or the first key naming another axis of that letter ("x2", ...)."""
    if axis in mapping:
        return mapping[axis]
    for key in sorted(mapping):
        if key.startswith(axis) and key[1:].isdigit():
            return mapping[key]
    raise SelectionError(f"The selection has no {axis} coordinates.")


def _pixel_under(x: float, y: float, shape: Shape) -> tuple[int, int] | None:
    """(row, col) of the pixel covering point (x, y), or None outside the image."""
    height, width = shape
    col, row = math.floor(x + 0.5), math.floor(y + 0.5)
    if 0 <= row < height and 0 <= col < width:
        return row, col
    return None


def _check_overlap(x_lo: float, x_hi: float, y_lo: float, y_hi: float, shape: Shape) -> None:
    height, width = shape
    if x_hi < -0.5 or x_lo > width - 0.5 or y_hi < -0.5 or y_lo > height - 0.5:
        raise SelectionError(OUTSIDE_MESSAGE)


def _single_pixel(x: float, y: float, shape: Shape) -> np.ndarray:
    pixel = _pixel_under(x, y, shape)
    if pixel is None:
        raise SelectionError("The selection covers no pixel of the image. Draw a larger region.")
    mask = np.zeros(shape, dtype=bool)
    mask[pixel] = True
    return mask


def box_to_mask(x_range: Sequence[float], y_range: Sequence[float], shape: Shape) -> np.ndarray:
    """Pixels whose centres lie in the box [x0, x1] x [y0, y1] (either order), clipped to the image."""
    x_lo, x_hi = sorted(float(v) for v in x_range)
    y_lo, y_hi = sorted(float(v) for v in y_range)
    _check_overlap(x_lo, x_hi, y_lo, y_hi, shape)
    height, width = shape
    c0, c1 = max(math.ceil(x_lo), 0), min(math.floor(x_hi), width - 1)
    r0, r1 = max(math.ceil(y_lo), 0), min(math.floor(y_hi), height - 1)
    if c0 > c1 or r0 > r1:
        return _single_pixel((x_lo + x_hi) / 2, (y_lo + y_hi) / 2, shape)
    mask = np.zeros(shape, dtype=bool)
    mask[r0 : r1 + 1, c0 : c1 + 1] = True
    return mask


def lasso_to_mask(xs: Sequence[float], ys: Sequence[float], shape: Shape) -> np.ndarray:
    """Pixels whose centres lie inside the closed polygon (xs, ys), clipped to the image."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if x.size != y.size or x.size == 0:
        raise SelectionError("The lasso selection has no points.")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise SelectionError("The lasso selection has invalid coordinates.")
    _check_overlap(x.min(), x.max(), y.min(), y.max(), shape)
    mask = np.zeros(shape, dtype=bool)
    if x.size >= 3:
        rows, cols = draw_polygon(y, x, shape=shape)
        mask[rows, cols] = True
    if not mask.any():
        return _single_pixel(float(x.mean()), float(y.mean()), shape)
    return mask


def click_to_pixel(click_data: Mapping[str, Any] | None, shape: Shape) -> tuple[int, int]:
    """(row, col) of the clicked pixel; SelectionError when there is no click or it is off the image."""
    points = (click_data or {}).get("points") or []
    if not points:
        raise SelectionError("The click did not hit the image.")
    point = points[0]
    try:
        x, y = float(point["x"]), float(point["y"])
    except (KeyError, TypeError, ValueError):
        raise SelectionError("The click did not hit the image.") from None
    pixel = _pixel_under(x, y, shape)
    if pixel is None:
        raise SelectionError(OUTSIDE_MESSAGE)
    return pixel


def click_to_mask(click_data: Mapping[str, Any] | None, shape: Shape) -> np.ndarray:
    """A one-pixel region at the clicked pixel."""
    mask = np.zeros(shape, dtype=bool)
    mask[click_to_pixel(click_data, shape)] = True
    return mask


def class_to_mask(labels: np.ndarray, class_index: int, class_names: Sequence[str]) -> np.ndarray:
    """Every pixel predicted as `class_index`; SelectionError when the class is absent from the prediction."""
    if not 0 <= int(class_index) < len(class_names):
        raise SelectionError(f"Unknown class index {class_index}.")
    mask = np.asarray(labels) == int(class_index)
    if not mask.any():
        raise SelectionError(f"No pixel is predicted as “{class_names[int(class_index)]}”; pick another class.")
    return mask


def selection_to_mask(selected_data: Mapping[str, Any] | None, shape: Shape) -> tuple[np.ndarray, str]:
    """(mask, kind) from a Plotly `selectedData` payload; kind is "box" or "lasso"."""
    if not selected_data:
        raise SelectionError("The selection is empty. Drag a box or a lasso on the image.")
    if selected_data.get("lassoPoints"):
        points = selected_data["lassoPoints"]
        return lasso_to_mask(_axis_key(points, "x"), _axis_key(points, "y"), shape), "lasso"
    if selected_data.get("range"):
        box = selected_data["range"]
        return box_to_mask(_axis_key(box, "x"), _axis_key(box, "y"), shape), "box"
    raise SelectionError("The selection is empty. Drag a box or a lasso on the image.")


SELECT_MODES = ("exact", "objects")
BORDER_CHOICES = ("whole", "inner", "outer", "inside")


def derive_region(
    mask: np.ndarray,
    kind: str,
    labels: np.ndarray,
    class_names: Sequence[str],
    mode: str = "exact",
    border: str = "whole",
    width: int = 3,
) -> tuple[np.ndarray, str]:
    """(region, label) from the drawn `mask` of tool `kind` and the choices under the selection.

    `mode` "objects": a click ("click") becomes its connected component ("component"), a box or lasso the union of the
    objects it touches ("objects"); a whole class is left as it is. `border` other than "whole": that ring or inside,
    `width` pixels wide, labelled e.g. "border-inner(3) of box". Background classes are never objects.
    """
    if mode not in SELECT_MODES:
        raise SelectionError(f"Unknown selection mode {mode!r}.")
    if border not in BORDER_CHOICES:
        raise SelectionError(f"Unknown border choice {border!r}.")
    region, label = np.asarray(mask, dtype=bool), kind
    background = [k for k, name in enumerate(class_names) if is_background(name)]
    try:
        if mode == "objects" and kind == "click":
            pixel = tuple(int(v[0]) for v in np.nonzero(region))
            region, label = component_at(labels, pixel, background=background), "component"
        elif mode == "objects" and kind in ("box", "lasso"):
            region, label = objects_touched(labels, region, background=background), "objects"
        if border != "whole":
            if width is None:
                raise ValueError("Give the border width in pixels.")
            region, label = border_region(region, border, int(width)), f"{border_label(border, int(width))} of {label}"
    except ValueError as err:
        raise SelectionError(str(err)) from None
    return region, label


def class_histogram(labels: np.ndarray, mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixel count of each predicted class inside the region, shape (num_classes,)."""
    return np.bincount(np.asarray(labels)[mask].ravel().astype(np.int64), minlength=num_classes)[:num_classes]


def majority_class(labels: np.ndarray, mask: np.ndarray, num_classes: int) -> int:
    """The most frequent predicted class in the region (lowest index on ties)."""
    if not np.any(mask):
        raise SelectionError("The selection is empty.")
    return int(np.argmax(class_histogram(labels, mask, num_classes)))


def _corner_points(contour: np.ndarray) -> np.ndarray:
    """The vertices of a closed contour: points where its direction changes (collinear points dropped)."""
    if len(contour) > 1 and np.allclose(contour[0], contour[-1]):
        contour = contour[:-1]  # closed by "Z"
    if len(contour) < 3:
        return contour
    incoming = contour - np.roll(contour, 1, axis=0)
    outgoing = np.roll(contour, -1, axis=0) - contour
    cross = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0]
    return contour[np.abs(cross) > 1e-9]


def outline_paths(mask: np.ndarray, max_points: int = 4000) -> list[str]:
    """SVG paths (Plotly shape `path` strings, pixel coordinates) tracing the region's boundary.

    Contours run along pixel edges (the mask is padded, upsampled 2x and traced at level 0.5, which only cuts each
    corner by a quarter pixel), so a box becomes its rectangle and one pixel a square around it. Only corner points
    are kept. If the outline still has more than `max_points` points (a speckled class mask), the longest contours are
    kept within that budget and the smallest specks are left unoutlined: the outline is a visual aid. Only the mask's
    bounding box is traced (a box on a 512x512 image: a few ms instead of ~20).
    """
    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return []
    top, left = int(rows[0]), int(cols[0])
    crop = mask[top : int(rows[-1]) + 1, left : int(cols[-1]) + 1]
    upsampled = np.kron(np.pad(crop, 1).astype(np.float32), np.ones((2, 2), dtype=np.float32))
    contours = [c for c in (_corner_points(c) for c in find_contours(upsampled, 0.5)) if len(c) >= 3]
    contours.sort(key=len, reverse=True)
    paths, budget = [], max_points
    for contour in contours:
        if len(contour) > budget:
            break
        budget -= len(contour)
        # Back from the padded, 2x-upsampled grid to pixel coordinates: upsampled cell i is centred on padded
        # coordinate i / 2 - 0.25, the padding shifts by one pixel and the crop by its corner.
        ys = contour[:, 0] / 2.0 - 1.25 + top
        xs = contour[:, 1] / 2.0 - 1.25 + left
        points = " L".join(f"{x:.2f},{y:.2f}" for x, y in zip(xs, ys, strict=True))
        paths.append(f"M{points} Z")
    return paths
