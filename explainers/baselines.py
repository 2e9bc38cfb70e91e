"""Reference images ("absence of signal") for path and Shapley methods, in pixel space [0, 255].

Defined on pixels rather than on the model input so that `adapter.score(baseline)` is the baseline's score whatever
the model's preprocessing is.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

BASELINES = ("black", "blur", "mean")


def baseline_image(image: np.ndarray, kind: str = "black", blur_fraction: float = 0.08) -> np.ndarray:
    """A float32 (H, W, 3) baseline for `image`: "black" (zeros), "blur" (Gaussian, sigma = blur_fraction * size),
    or "mean" (the image's mean colour everywhere)."""
    image = np.asarray(image)
    if kind == "black":
        return np.zeros(image.shape, dtype=np.float32)
    if kind == "mean":
        return np.broadcast_to(image.reshape(-1, 3).mean(axis=0), image.shape).astype(np.float32)
    if kind == "blur":
        radius = max(1.0, blur_fraction * max(image.shape[:2]))
        blurred = Image.fromarray(image.astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius))
        return np.asarray(blurred, dtype=np.float32)
    raise ValueError(f"Unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}.")
