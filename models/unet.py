"""A small U-Net for the procedural mushroom demo (``models.mushrooms``).

Three down-sampling levels, two 3x3 Conv2D + BatchNorm + ReLU blocks per level, Conv2DTranspose up-sampling with
skip connections, a 1x1 Conv2D named ``"logits"`` (no activation) and a ``Softmax`` layer named
``"probabilities"``.  The input is float32 RGB in [0, 1] (``image / 255``); the output is per-pixel class
probabilities.  Layer names are readable (``enc1_conv1`` ... ``bottleneck_conv2`` ... ``dec1_conv2``, ``logits``)
so that the explainers can list them per layer.
"""

from __future__ import annotations

import keras
from keras import layers

DEFAULT_FILTERS: tuple[int, int, int, int] = (12, 24, 48, 96)


def _block(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def build_unet(input_shape: tuple[int, int, int] = (128, 128, 3), num_classes: int = 6,
               filters: tuple[int, int, int, int] = DEFAULT_FILTERS) -> keras.Model:
    """Build the (uncompiled) U-Net; ``filters`` are the widths of the three encoder levels and the bottleneck."""
    f1, f2, f3, fb = filters
    inputs = keras.Input(shape=input_shape, name="image")
    e1 = _block(inputs, f1, "enc1")
    e2 = _block(layers.MaxPooling2D(name="pool1")(e1), f2, "enc2")
    e3 = _block(layers.MaxPooling2D(name="pool2")(e2), f3, "enc3")
    b = _block(layers.MaxPooling2D(name="pool3")(e3), fb, "bottleneck")
    x = b
    for level, skip, f in ((3, e3, f3), (2, e2, f2), (1, e1, f1)):
        x = layers.Conv2DTranspose(f, 2, strides=2, padding="same", name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skip])
        x = _block(x, f, f"dec{level}")
    logits = layers.Conv2D(num_classes, 1, name="logits")(x)
    probs = layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, probs, name="mushroom_unet")
