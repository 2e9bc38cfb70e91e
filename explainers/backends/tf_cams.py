"""The Keras backend's CAM step for one layer: every combiner's map in one XLA-compiled function, the four
registered CAMs fused.

`explainers.cam` writes each CAM once, as a `combine(ops, A, G)` formula over (h, w, k) tensors. Run as written, XLA
compiles each of the four into its own loops over A and G: at 512x512 on DeepLabV3+ (88 layers as listed then, 728 MB
of A and G) they cost about 110 ms of a ~620 ms fast pass, about 90 ms fused as below (~80 ms at today's 52 layers).
Here the four registered ones (Grad-CAM, HiResCAM, Grad-CAM++, LayerCAM) share their work on the (h*w, k) views of A
and G:

- ReLU(G) once (Grad-CAM++ and LayerCAM both use it), the channel sums of A and the channel means of G once;
- the channel-weighted maps (Grad-CAM, Grad-CAM++) as ONE matrix product of A with their two weight vectors;
- the pixel-weighted maps (HiResCAM, LayerCAM) as sums over channels of G * A and ReLU(G) * A.

Grad-CAM++'s weights are the closed form explainers.cam.GradCAMPlusPlus derives, sum_ij p / (2 + sum_ij(A) p) with
p = ReLU(G), a zero denominator counted 0. Any other combiner runs as written. tests/explainers/test_tf_cams.py checks
the fused maps against the formulas.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from explainers.backends.base import Combiner, fused_kinds


class TensorFlowOps:
    """The CamOps namespace on TensorFlow tensors (for combiners that are not fused)."""

    relu = staticmethod(tf.nn.relu)
    where = staticmethod(tf.where)
    logical_and = staticmethod(tf.logical_and)

    @staticmethod
    def sum(x: tf.Tensor, axis: int | tuple[int, ...]) -> tf.Tensor:
        return tf.reduce_sum(x, axis=axis)

    @staticmethod
    def mean(x: tf.Tensor, axis: int | tuple[int, ...]) -> tf.Tensor:
        return tf.reduce_mean(x, axis=axis)


TF_OPS = TensorFlowOps()


def fused_maps(activation: tf.Tensor, grad: tf.Tensor, names: Sequence[str]) -> dict[str, tf.Tensor]:
    """{name: (h, w) map} of the registered CAMs in `names`, from one layer's (h, w, k) activation and gradient."""
    shape = tf.shape(activation)
    k = shape[-1]
    a = tf.reshape(activation, (-1, k))
    g = tf.reshape(grad, (-1, k))
    maps: dict[str, tf.Tensor] = {}
    positive = tf.nn.relu(g) if "gradcam++" in names or "layercam" in names else None
    channel: list[tuple[str, tf.Tensor]] = []
    if "gradcam" in names:
        channel.append(("gradcam", tf.reduce_mean(g, axis=0)))
    if "gradcam++" in names:
        denominator = 2.0 + tf.reduce_sum(a, axis=0, keepdims=True) * positive
        safe = tf.where(denominator != 0.0, denominator, float("inf"))
        channel.append(("gradcam++", tf.reduce_sum(positive / safe, axis=0)))
    if channel:
        weighted = tf.matmul(a, tf.stack([weights for _, weights in channel], axis=1))  # (h*w, len(channel))
        for j, (name, _) in enumerate(channel):
            maps[name] = weighted[:, j]
    if "hirescam" in names:
        maps["hirescam"] = tf.reduce_sum(g * a, axis=1)
    if "layercam" in names:
        maps["layercam"] = tf.reduce_sum(positive * a, axis=1)
    return {name: tf.reshape(tf.nn.relu(values), shape[:2]) for name, values in maps.items()}


def layer_maps_function(combiners: Sequence[Combiner]) -> Callable[..., Any]:
    """One XLA-compiled function: a layer's (1, h, w, k) activation and gradient -> its (h, w, len(combiners))
    stack of every combiner's map, the registered CAMs fused (`fused_maps`), any other as written."""
    kinds = fused_kinds()
    names = [kinds.get(combine) for combine in combiners]

    @tf.function(jit_compile=True)
    def combine_layer(activation: tf.Tensor, grad: tf.Tensor) -> tf.Tensor:
        a, g = activation[0], grad[0]
        fused = fused_maps(a, g, [name for name in names if name is not None])
        maps = [
            fused[name] if name is not None else combine(TF_OPS, a, g)
            for name, combine in zip(names, combiners, strict=True)
        ]
        return tf.stack(maps, axis=-1)

    return combine_layer
