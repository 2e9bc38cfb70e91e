"""Resampling of coarse maps to image resolution (bilinear, half-pixel centres), with Pillow."""

from __future__ import annotations

import numpy as np
from PIL import Image


def upsample(map_2d: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (h, w) float map to `size` (H, W); returns float32, a copy when sizes already match."""
    map_2d = np.asarray(map_2d, dtype=np.float32)
    if map_2d.shape == tuple(size):
        return map_2d.copy()
    resized = Image.fromarray(map_2d, mode="F").resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)
