"""The zoo's test photo, shared by the Keras and torch builders (their BatchNorm statistics) and the checks."""

from __future__ import annotations

import numpy as np


def scene(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A test photo (H, W, 3) uint8: smooth coloured blobs on a gradient, plus a little noise; closer to a real
    image than uniform noise, which is what BatchNorm statistics and the tests should see."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w]).reshape(2, 1, 1)
    image = np.stack([0.3 + 0.4 * yy, 0.3 + 0.4 * xx, 0.5 - 0.2 * yy], axis=-1)
    for _ in range(6):
        cy, cx, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.08, 0.3)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
        image = image * (1 - blob) + blob * rng.uniform(0, 1, 3)
    image = image + rng.normal(0, 0.04, image.shape)
    return np.clip(image * 255, 0, 255).astype(np.uint8)
