"""The one check every zoo model must pass, as plain functions over a built model (the zoo tests and the timing
script share them).

Independent references are computed here with the model's own layers and a plain `tf.GradientTape`, never with the
engine: the pre-softmax logits (`reference_logits`) and Seg-Grad-CAM (Vinogradova et al., AAAI 2020: channel
weights are the gradients of the SUM of the class logits over the region, summed over the layer's grid).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from explainers import SegmentationAdapter, registry
from explainers.attribution import Attribution
from tests.zoo.keras_models import ZooModel, scene

# Cheap parameters (as tests/explainers/test_contract.py's FAST); defaults are exercised by the property tests.
ZOO_PARAMS: dict[str, dict[str, Any]] = {
    "smoothgrad": {"samples": 4},
    "integrated_gradients": {"steps": 32, "max_steps": 32},
    "shap": {"max_evals": 60},
    "deep_shap": {"background": ("black",)},
}
# The methods a zoo model may refuse, with the words its reason must contain.
MAY_REFUSE = {"deep_shap": "DeepSHAP cannot run on this model"}


@dataclass
class Question:
    image: np.ndarray
    region: np.ndarray  # a box aligned to the logits grid, so its resampling is unambiguous
    target: int
    stride: int


def question_for(entry: ZooModel, seed: int = 11) -> Question:
    """A test photo and a box covering a quarter of it, aligned to the model's output grid."""
    h, w = entry.size
    s = entry.output_stride
    region = np.zeros((h, w), dtype=bool)
    region[(h // s // 4) * s : (h // s // 2 + 1) * s, (w // s // 4) * s : (3 * w // s // 4) * s] = True
    return Question(scene(entry.size, seed=seed), region, target=1, stride=s)


# ------------------------------------------------------------------------------------------ independent references
def reference_logits_fn(model: keras.Model) -> tuple[keras.Model, Any]:
    """(a model image -> [final layer's input], a function of that input -> pre-activation logits (N, h, w, C)),
    built from the model's own last layer: Softmax / Activation layers are skipped, a conv with a softmax or sigmoid
    activation is re-applied without it (keras.ops.conv with its own kernel), a sigmoid becomes (-z, z)."""
    final = model.layers[-1]
    body = keras.Model(model.inputs, final.input)
    activation = getattr(getattr(final, "activation", None), "__name__", None)
    sigmoid = activation == "sigmoid"
    if isinstance(final, (keras.layers.Softmax, keras.layers.Activation)):

        def head(x: Any) -> Any:
            return x
    elif isinstance(final, keras.layers.Conv2D) and activation in ("softmax", "sigmoid", "linear"):

        def head(x: Any) -> Any:
            z = keras.ops.conv(x, final.kernel, strides=final.strides, padding=final.padding,
                               dilation_rate=final.dilation_rate)  # fmt: skip
            return z + final.bias if final.use_bias else z
    else:
        raise AssertionError(f"no reference logits for a final {type(final).__name__}")

    def logits(x: Any) -> Any:
        z = head(x)
        return keras.ops.concatenate([-z, z], axis=-1) if sigmoid else z

    return body, logits


def reference_probabilities(model: keras.Model, image: np.ndarray) -> np.ndarray:
    """The model's own prediction as class probabilities (H', W', C); a sigmoid output as (1 - p, p)."""
    out = np.asarray(model(image[None].astype(np.float32) / 255.0, training=False))[0]
    return np.concatenate([1.0 - out, out], axis=-1) if out.shape[-1] == 1 else out


def seg_grad_cam(model: keras.Model, layers: list[str], q: Question) -> dict[str, np.ndarray]:
    """Seg-Grad-CAM at top-level `layers`, at each layer's resolution: ReLU(sum_k alpha_k A_k), alpha_k =
    sum_ij d(sum_{p in M'} z_c[p]) / dA_k[ij]."""
    outputs = [model.get_layer(name).output for name in layers]
    body, logits_of = reference_logits_fn(model)
    probe = keras.Model(model.inputs, [*outputs, body.output])
    x = tf.constant(q.image[None].astype(np.float32) / 255.0)
    with tf.GradientTape() as tape:
        *activations, before_head = probe(x, training=False)
        z = logits_of(before_head)[0, :, :, q.target]
        cells = q.region[q.stride // 2 :: q.stride, q.stride // 2 :: q.stride]
        total = tf.reduce_sum(z * tf.constant(cells, tf.float32))
    grads = tape.gradient(total, activations)
    maps = {}
    for name, a, g in zip(layers, activations, grads, strict=True):
        alpha = tf.reduce_sum(g[0], axis=(0, 1))
        maps[name] = tf.nn.relu(tf.reduce_sum(a[0] * alpha, axis=-1)).numpy()
    return maps


def top_level_cam_layers(model: keras.Model, adapter: SegmentationAdapter, count: int = 3) -> list[str]:
    """`count` CAM layers of the outer model (reachable as model.get_layer(name).output: not nested, not shared, not
    the final layer, whose output is past the logits), spread over its depth."""
    top = [
        name
        for name in adapter.conv_layers
        if "/" not in name
        and name != model.layers[-1].name
        and _uses(model, model.get_layer(name)) == 1
        and name not in _nested_output_names(model)
    ]
    picks = np.unique(np.linspace(0, len(top) - 1, count).round().astype(int))
    return [top[i] for i in picks]


def _uses(model: keras.Model, layer: Any) -> int:
    """How often `layer` is called in `model`'s own graph (the adapter's replays add nodes elsewhere)."""
    return sum(node.operation is layer for nodes in model._nodes_by_depth.values() for node in nodes)


def _nested_output_names(model: keras.Model) -> set[str]:
    return {layer.name for layer in model.layers if isinstance(layer, keras.Model)}


# ----------------------------------------------------------------------------------------------------- running
@dataclass
class ZooRun:
    """Every registered method's result on one zoo model (or the ValueError that refused it), with its time."""

    adapter: SegmentationAdapter
    question: Question
    results: dict[str, Attribution] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_methods(adapter: SegmentationAdapter, q: Question) -> ZooRun:
    run = ZooRun(adapter, q)
    for name in registry.available():
        start = time.perf_counter()
        try:
            run.results[name] = registry.get(name).explain(adapter, q.image, q.region, q.target,
                                                           params=ZOO_PARAMS.get(name))  # fmt: skip
        except ValueError as err:
            run.refused[name] = str(err)
        run.seconds[name] = time.perf_counter() - start
    return run
