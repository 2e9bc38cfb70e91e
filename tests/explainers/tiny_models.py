"""Tiny Keras segmentation models for the explainer tests, built deterministically (random biases, fixed seeds).

Biases are random because a net with zero biases scales linearly with its input, which makes path methods
degenerate.
"""

from __future__ import annotations

import keras
import numpy as np


def _conv(
    filters: int, name: str, kernel: int = 3, activation: str | None = "relu", seed: int = 0
) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(
        filters,
        kernel,
        padding="same",
        activation=activation,
        name=name,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        bias_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seed + 1000),
    )


def tiny_unet(size: tuple[int, int] = (32, 32), classes: int = 4, logit_scale: float = 1.0) -> keras.Model:
    """A two-level U-Net ending in a 1x1 "logits" conv, an optional logit Rescaling, and a Softmax layer."""
    inputs = keras.Input((*size, 3), name="image")
    e1 = _conv(8, "enc1", seed=1)(inputs)
    down = keras.layers.MaxPooling2D(name="pool")(e1)
    bottom = _conv(12, "bottom", seed=2)(down)
    up = keras.layers.Conv2DTranspose(
        8,
        2,
        strides=2,
        name="up",
        kernel_initializer=keras.initializers.GlorotUniform(seed=3),
        bias_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=4),
    )(bottom)
    merged = keras.layers.Concatenate(name="skip")([e1, up])
    d1 = _conv(8, "dec1", seed=5)(merged)
    logits = _conv(classes, "logits", kernel=1, activation=None, seed=6)(d1)
    if logit_scale != 1.0:
        logits = keras.layers.Rescaling(logit_scale, name="logit_scale")(logits)
    outputs = keras.layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="tiny_unet")


def structured_image(size: tuple[int, int] = (32, 32), seed: int = 0) -> np.ndarray:
    """A smooth-ish uint8 RGB image with structure (gradients plus a disc), so maps are not pure noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    disc = ((yy - size[0] * 0.4) ** 2 + (xx - size[1] * 0.6) ** 2) < (min(size) * 0.25) ** 2
    image = np.stack([xx / size[1], yy / size[0], disc.astype(float)], axis=-1) * 200 + rng.normal(0, 10, (*size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def box_region(size: tuple[int, int], top: int, left: int, bottom: int, right: int) -> np.ndarray:
    """A boolean mask with one filled box [top:bottom, left:right]."""
    region = np.zeros(size, dtype=bool)
    region[top:bottom, left:right] = True
    return region
