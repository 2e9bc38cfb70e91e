"""Engine benchmarks on the shipped demo model: P1 (the CAM family) and P3 (SHAP), as ratios measured in one run.

P1 times all four CAM variants for every conv layer (one traced pass, through the public `explain`) against (a) one
plain forward+backward of the adapted score with respect to the input, the floor, and (b) a loop of one
forward+backward per conv layer, as single-layer CAM libraries do. P3 compares SHAP Partition's evaluations per second
with the batched forward throughput of the adapted score, and reports the default `shap` run's wall time. Timed
variants are interleaved round-robin, so load from other processes on this shared machine hits them alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf


def interleaved_medians(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median wall seconds of each call, measured round-robin after one warm-up each."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def one_layer_step(adapter: Any, layer_index: int, combiners: list[Callable[..., tf.Tensor]]) -> Callable[..., Any]:
    """A traced forward+backward that reaches ONE conv layer's gradient, then its CAMs (what per-layer tools do)."""
    from explainers.backends.tf_cams import TF_OPS

    features = adapter.backend.features
    probe = tf.keras.Model(features.inputs, [features.outputs[0], features.outputs[1 + layer_index]])

    @tf.function
    def step(x: tf.Tensor, region: tf.Tensor, onehot: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            logits, activation = probe(x, training=False)
            class_logit = tf.reduce_sum(logits * onehot, axis=-1)
            score = tf.reduce_sum(class_logit * region, axis=(1, 2)) / tf.reduce_sum(region)
        grad = tape.gradient(score, activation)
        maps = tf.stack([combine(TF_OPS, activation[0], grad[0]) for combine in combiners], axis=-1)
        return tf.image.resize(maps[None], tf.shape(x)[1:3], method="bilinear")

    return step


def p1_cam_family(repeats: int = 20) -> dict[str, Any]:
    from benchmarks.methods import demo_question
    from explainers import explain
    from explainers.cam import cam_explainers

    adapter, image, region, target = demo_question()
    combiners = {name: explainer.combine for name, explainer in cam_explainers().items()}
    spec = adapter.score_spec(region, target, image.shape[:2])
    x = tf.constant(adapter.model_input(image[None]))
    region_out, onehot = tf.constant(spec.region), tf.constant(spec.weights)
    per_layer_steps = [one_layer_step(adapter, i, list(combiners.values())) for i in range(len(adapter.conv_layers))]

    def ours() -> None:  # the public API: four CAM results, each with its heatmap at image resolution
        adapter.clear_cache()
        explain(adapter, image, region, target, methods=list(combiners))

    def floor() -> None:
        adapter.backend._score_fn(x, region_out, onehot)[1].numpy()

    def loop_per_layer() -> None:
        for step in per_layer_steps:
            step(x, region_out, onehot).numpy()

    medians = interleaved_medians({"ours": ours, "floor": floor, "loop": loop_per_layer}, repeats)
    return {
        "layers": len(adapter.conv_layers),
        "ours_ms": 1000 * medians["ours"],
        "floor_ms": 1000 * medians["floor"],
        "loop_ms": 1000 * medians["loop"],
        "ratio_to_floor": medians["ours"] / medians["floor"],
        "speedup_vs_loop": medians["loop"] / medians["ours"],
    }


def p3_shap(repeats: int = 3) -> dict[str, Any]:
    from benchmarks.methods import demo_question
    from explainers import registry

    adapter, image, region, target = demo_question()
    shap_method = registry.get("shap")
    max_evals, batch_size = shap_method.defaults["max_evals"], shap_method.defaults["batch_size"]
    batch = np.repeat(image[None].astype(np.float32), batch_size, axis=0)
    batches = int(np.ceil(max_evals / batch_size))

    def forward_equivalent() -> None:  # the same number of evaluations as SHAP, as plain batched forward passes
        for _ in range(batches):
            adapter.score(batch, region, target, batch_size=batch_size)

    def shap_run() -> None:
        shap_method.explain(adapter, image, region, target)

    medians = interleaved_medians({"forward": forward_equivalent, "shap": shap_run}, repeats)
    forward_rate = batches * batch_size / medians["forward"]
    shap_rate = max_evals / medians["shap"]
    return {
        "max_evals": max_evals,
        "shap_s": medians["shap"],
        "forward_evals_per_s": forward_rate,
        "shap_evals_per_s": shap_rate,
        "ratio": shap_rate / forward_rate,
    }
