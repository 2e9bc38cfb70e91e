"""Bilinear resizing of maps and probabilities in numpy, with half-pixel centres (the convention of
`tf.image.resize(..., method="bilinear")`, `torch.nn.functional.interpolate(..., mode="bilinear",
align_corners=False)` and OpenCV), so upsampled maps do not depend on the model's framework.

Output pixel i samples the input at s = (i + 0.5) * n_in / n_out - 0.5, clamped to the edge pixels, and interpolates
linearly between floor(s) and ceil(s) (no antialiasing when shrinking, as those libraries' defaults).
"""

from __future__ import annotations

import numpy as np


def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    source = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    floor = np.floor(source)
    lower = np.clip(floor, 0, n_in - 1).astype(np.intp)
    upper = np.clip(np.ceil(source), 0, n_in - 1).astype(np.intp)
    return lower, upper, (source - floor).astype(np.float32)


def bilinear_resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (h, w) or (h, w, C) array to `size` (H, W); float32 out."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim not in (2, 3):
        raise ValueError(f"bilinear_resize takes an (h, w) or (h, w, C) array; got shape {array.shape}.")
    out_h, out_w = int(size[0]), int(size[1])
    lower, upper, frac = _axis(array.shape[0], out_h)
    frac = frac.reshape((-1,) + (1,) * (array.ndim - 1))
    rows = array[lower] + (array[upper] - array[lower]) * frac
    lower, upper, frac = _axis(array.shape[1], out_w)
    frac = frac.reshape((1, -1) + (1,) * (array.ndim - 2))
    return (rows[:, lower] + (rows[:, upper] - rows[:, lower]) * frac).astype(np.float32)
