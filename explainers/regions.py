"""Region transformations for segmentation questions: border rings, the inside of a region, objects.

Pure numpy / scikit-image functions from boolean (H, W) masks and integer (H, W) label maps to boolean masks. They
make the sharper questions people ask of a segmentation network:

- the **inner border ring** of a region (its pixels within `width` of the outside), the **outer ring** (the pixels
  outside it within `width` of it) and the **inside without its border**. Boundary pixels are where segmentation
  networks disagree with their labels most;
- the **object** under a click: the connected component of the clicked pixel's class ("this mushroom", not every
  mushroom), and the **objects touched** by a box or lasso (the union of the components it touches).

Distances are chessboard distances (8-neighbourhood): a pixel is within `width` of another when their rows and their
columns each differ by at most `width`, i.e. the rings come from erosion / dilation by a (2 width + 1)-square. The
image frame is not a border: a region cut by the edge of the image has no ring along that edge (the region may well
continue beyond the picture). Components are 8-connected by default.

Every function returns a new mask; an empty result is a `ValueError` with a sentence saying why.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from skimage.measure import label as label_components
from skimage.morphology import dilation, erosion, footprint_rectangle
from skimage.segmentation import flood

BORDER_KINDS = ("inner", "outer", "inside")


def region_mask(region: np.ndarray) -> np.ndarray:
    """A non-empty 2-D boolean (or 0/1) mask as a bool array; ValueError with the reason otherwise."""
    mask = np.asarray(region)
    if mask.ndim != 2:
        raise ValueError(f"The region must be a 2-D (H, W) mask; got shape {mask.shape}.")
    if mask.dtype != bool:
        if mask.size and not np.isin(mask, (0, 1)).all():
            raise ValueError("The region mask must be boolean (or 0/1).")
        mask = mask.astype(bool)
    if not mask.any():
        raise ValueError("The region is empty: select at least one pixel of the image.")
    return mask


def _width(width: int) -> int:
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or int(width) < 1:
        raise ValueError(f"The border width must be a whole number of pixels, 1 or more; got {width!r}.")
    return int(width)


def _square(width: int) -> list:
    return footprint_rectangle((2 * width + 1, 2 * width + 1), decomposition="separable")


def _eroded(mask: np.ndarray, width: int) -> np.ndarray:
    return erosion(mask, _square(width), mode="ignore")  # outside the image counts as inside: the frame is no border


def inner_border(region: np.ndarray, width: int = 1) -> np.ndarray:
    """The region's pixels within `width` pixels of a pixel outside it (the inner border ring)."""
    mask, width = region_mask(region), _width(width)
    ring = mask & ~_eroded(mask, width)
    if not ring.any():
        raise ValueError("The region has no border inside the image (it covers the whole image), so no inner ring.")
    return ring


def outer_border(region: np.ndarray, width: int = 1) -> np.ndarray:
    """The pixels outside the region within `width` pixels of it (the outer border ring)."""
    mask, width = region_mask(region), _width(width)
    ring = dilation(mask, _square(width), mode="ignore") & ~mask
    if not ring.any():
        raise ValueError("The region covers the whole image, so it has no outer ring.")
    return ring


def inside(region: np.ndarray, width: int = 1) -> np.ndarray:
    """The region without its inner border ring of `width` pixels."""
    mask, width = region_mask(region), _width(width)
    core = _eroded(mask, width)
    if not core.any():
        raise ValueError(
            f"The region is thinner than the border width: nothing is left inside it once a {width}-pixel border "
            "is taken off. Choose a smaller width or a larger region."
        )
    return core


def border_region(region: np.ndarray, kind: str, width: int = 1) -> np.ndarray:
    """`inner_border`, `outer_border` or `inside` by name ("inner", "outer", "inside")."""
    transforms = {"inner": inner_border, "outer": outer_border, "inside": inside}
    if kind not in transforms:
        raise ValueError(f"Unknown border choice {kind!r}; choose one of {', '.join(BORDER_KINDS)}.")
    return transforms[kind](region, width)


def border_label(kind: str, width: int) -> str:
    """How a border region is named in a question's label, e.g. "border-inner(3)"."""
    return f"border-{kind}({int(width)})"


def _labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"The label map must be a 2-D integer (H, W) array; got {labels.dtype} {labels.shape}.")
    return labels


def component_at(
    labels: np.ndarray,
    pixel: tuple[int, int],
    *,
    target: int | None = None,
    background: Collection[int] = (),
    connectivity: int = 2,
) -> np.ndarray:
    """The connected component of the clicked pixel's class in the label map ("this object").

    Args:
        labels: (H, W) integer predicted class per pixel.
        pixel: (row, col) of the click.
        target: if given, the pixel must be of this class (ValueError otherwise, and when the class is absent).
        background: classes that are not objects (a click on them is a ValueError).
        connectivity: 1 for 4-connected components, 2 for 8-connected.
    """
    labels = _labels(labels)
    row, col = (int(pixel[0]), int(pixel[1]))
    if not (0 <= row < labels.shape[0] and 0 <= col < labels.shape[1]):
        raise ValueError(f"Pixel ({row}, {col}) lies outside the {labels.shape[0]}x{labels.shape[1]} label map.")
    clicked = int(labels[row, col])
    if target is not None and clicked != int(target):
        if not (labels == int(target)).any():
            raise ValueError(f"Class {int(target)} is not predicted anywhere in the image, so it has no object here.")
        raise ValueError(f"The clicked pixel is predicted as class {clicked}, not class {int(target)}.")
    if clicked in {int(b) for b in background}:
        raise ValueError("The clicked pixel is background, which is not an object. Click on an object.")
    return flood(labels, (row, col), connectivity=connectivity)


def objects_touched(
    labels: np.ndarray,
    selection: np.ndarray,
    *,
    background: Collection[int] = (),
    classes: Collection[int] | None = None,
    connectivity: int = 2,
) -> np.ndarray:
    """The union of the connected components (each of one class) that the selection touches.

    `classes`: only components of these classes count (default: every class but `background`).
    """
    labels, selection = _labels(labels), region_mask(selection)
    if selection.shape != labels.shape:
        raise ValueError(f"The selection is {selection.shape} but the label map is {labels.shape}; they must match.")
    # Components of equal value: shift by one so that no class is taken as skimage's background value 0.
    components = label_components(labels.astype(np.int64) + 1, background=0, connectivity=connectivity)
    eligible = ~np.isin(labels, list(background))
    if classes is not None:
        eligible &= np.isin(labels, list(classes))
    touched = np.unique(components[selection & eligible])
    if touched.size == 0:
        raise ValueError("The selection touches no object, only background. Select part of an object.")
    return np.isin(components, touched)
