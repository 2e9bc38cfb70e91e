"""Token layers as CAM layers: a transformer activation (N, L, C) seen as the (N, h, w, C) patch grid it lies on.

A vision transformer's blocks work on a token sequence: the image's patches in row-major order, optionally after a
class token. A CAM needs a spatial grid, so the sequence is reshaped to it, as pytorch-grad-cam's `reshape_transform`
does by hand for ViT and Swin: the class token is dropped, the L' = h * w patch tokens become an h x w grid. Here
the grid is found from the image size, so no user code is needed: h / w is the image's aspect ratio (a square grid
for a square image).

The backends put the grid ON the forward path (the sequence the next layer sees is rebuilt from the grid), so the
gradient with respect to the grid is the gradient with respect to the patch tokens, reshaped; the class token's
gradient is not part of any map.
"""

from __future__ import annotations

import math
from typing import Any


def token_grid(tokens: int | None, size: tuple[int, int]) -> tuple[int, int, int] | None:
    """(h, w, leading) when a sequence of `tokens` tokens is a patch grid of an image of `size` (H, W): `leading`
    (0, or 1 for a class token) tokens come first, then h * w patch tokens, h / w the image's aspect ratio (patches
    of equal height and width, to within one pixel each way). None if it is no such grid.
    """
    if tokens is None:
        return None
    height, width = int(size[0]), int(size[1])
    for leading in (0, 1):
        patches = tokens - leading
        if patches < 1:
            continue
        h = max(1, round(math.sqrt(patches * height / width)))
        if patches % h:
            continue
        w = patches // h
        if abs(height / h - width / w) <= 1.0 and h <= height and w <= width:
            return h, w, leading
    return None


def torch_grid(output: Any, size: tuple[int, int]) -> tuple[Any, Any]:
    """(grid (N, C, h, w), the sequence (N, L, C) rebuilt from it) for a token layer's torch output; ValueError if
    it is no patch grid of an image of `size`."""
    import torch

    n, length, channels = output.shape
    found = token_grid(int(length), size)
    if found is None:
        raise ValueError(f"A token layer's {length} tokens are no patch grid of a {size[0]}x{size[1]} image.")
    h, w, leading = found
    grid = output[:, leading:].reshape(n, h, w, channels).permute(0, 3, 1, 2)
    rebuilt = torch.cat([output[:, :leading], grid.permute(0, 2, 3, 1).reshape(n, h * w, channels)], dim=1)
    return grid, rebuilt


def keras_grid(output: Any, size: tuple[int, int]) -> tuple[Any, Any] | None:
    """(grid (N, h, w, C), the sequence (N, L, C) rebuilt from it) for a token layer's Keras output, or None if its
    static shape is no patch grid of an image of `size`."""
    import keras

    if len(output.shape) != 3 or output.shape[2] is None:
        return None
    found = token_grid(output.shape[1], size)
    if found is None:
        return None
    h, w, leading = found
    channels = int(output.shape[2])
    grid = keras.ops.reshape(output[:, leading:, :], (-1, h, w, channels))
    patches = keras.ops.reshape(grid, (-1, h * w, channels))
    rebuilt = keras.ops.concatenate([output[:, :leading, :], patches], axis=1) if leading else patches
    return grid, rebuilt
