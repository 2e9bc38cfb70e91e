"""Numerical properties of the methods, each checked against an independent computation made in the test."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import spearmanr

from explainers import SegmentationAdapter, explain
from tests.explainers.tiny_models import tiny_unet

TARGET = 1


def pre_softmax_model(model: keras.Model, layer: str) -> keras.Model:
    """Independent access to one layer's activation and the logits of the (flat) tiny U-Net."""
    return keras.Model(model.inputs, [model.get_layer(layer).output, model.get_layer("logits").output])


def to_image_size(map_2d: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (half-pixel centres) upsampling of a coarse layer map to the image size, as the engine documents it."""
    return tf.image.resize(map_2d[None, ..., None].astype(np.float32), size, method="bilinear")[0, ..., 0].numpy()


def seg_grad_cam(model: keras.Model, layer: str, image: np.ndarray, region: np.ndarray, target: int) -> np.ndarray:
    """Vinogradova et al. 2020: Grad-CAM of the SUM of class logits over the region, at the layer's resolution."""
    probe = pre_softmax_model(model, layer)
    x = tf.constant(image[None].astype(np.float32) / 255.0)
    with tf.GradientTape() as tape:
        activation, logits = probe(x)
        logits_region = tf.image.resize(tf.constant(region[None, ..., None], tf.float32), logits.shape[1:3], "nearest")
        total = tf.reduce_sum(logits[..., target] * logits_region[..., 0])
    grads = tape.gradient(total, activation)[0].numpy()
    weights = grads.mean(axis=(0, 1))
    return np.maximum(activation[0].numpy() @ weights, 0)


@pytest.mark.parametrize("layer", ["enc1", "bottom", "dec1"])
def test_gradcam_is_seg_grad_cam_up_to_the_region_size(tiny_model, adapter, image, region, layer):
    ours = explain(adapter, image, region, TARGET, methods=["gradcam"], params={"gradcam": {"layer": layer}})["gradcam"]
    reference = seg_grad_cam(tiny_model, layer, image, region, TARGET)
    reference = to_image_size(reference, image.shape[:2])
    np.testing.assert_allclose(ours.heatmap * region.sum(), reference, rtol=1e-4, atol=1e-5 * np.abs(reference).max())


def grad_cam_plus_plus(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Chattopadhyay et al. 2018, eq. 19 with the exponential-output closed form, as written in the paper."""
    a, g = a.astype(np.float64), g.astype(np.float64)
    numerator = g**2
    denominator = 2 * g**2 + a.sum(axis=(0, 1)) * g**3
    alpha = np.divide(numerator, denominator, out=np.zeros_like(g), where=denominator != 0)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(0, 1))
    return np.maximum(a @ weights, 0)


def test_per_layer_maps_from_one_pass_equal_one_layer_at_a_time(tiny_model, adapter, image, region):
    results = explain(adapter, image, region, TARGET, methods=["gradcam", "hirescam", "gradcam++", "layercam"])
    for layer in adapter.conv_layers:
        probe = pre_softmax_model(tiny_model, layer)
        x = tf.constant(image[None].astype(np.float32) / 255.0)
        with tf.GradientTape() as tape:
            activation, logits = probe(x)
            score = tf.reduce_sum(logits[0, ..., TARGET] * region) / region.sum()
        a, g = activation[0].numpy(), tape.gradient(score, activation)[0].numpy()
        expected = {
            "gradcam": np.maximum(a @ g.mean(axis=(0, 1)), 0),
            "hirescam": np.maximum((a * g).sum(-1), 0),
            "layercam": np.maximum((a * np.maximum(g, 0)).sum(-1), 0),
            "gradcam++": grad_cam_plus_plus(a, g),
        }
        for name, reference in expected.items():
            reference = to_image_size(reference, image.shape[:2])
            np.testing.assert_allclose(results[name].per_layer[layer], reference, rtol=1e-4, atol=1e-7)


def test_one_layer_mode_gives_the_same_map_as_the_all_layer_pass(adapter, image, region):
    """all_layers=False computes only the chosen layer (its backward pass stops there): same map, one entry."""
    for layer in (adapter.conv_layers[0], adapter.conv_layers[-2]):
        adapter.clear_cache()
        every = explain(adapter, image, region, TARGET, methods=["gradcam", "layercam"], params={
            "gradcam": {"layer": layer}, "layercam": {"layer": layer}})  # fmt: skip
        adapter.clear_cache()
        one = explain(adapter, image, region, TARGET, methods=["gradcam", "layercam"], params={
            "gradcam": {"layer": layer, "all_layers": False}, "layercam": {"layer": layer, "all_layers": False}})
        for name in ("gradcam", "layercam"):
            assert list(one[name].per_layer) == [layer] and len(every[name].per_layer) == len(adapter.conv_layers)
            np.testing.assert_allclose(one[name].heatmap, every[name].heatmap, rtol=1e-5, atol=1e-8)
            assert one[name].score == pytest.approx(every[name].score)


def test_saliency_equals_a_gradient_tape_gradient(tiny_model, adapter, image, region):
    logits_model = keras.Model(tiny_model.inputs, tiny_model.get_layer("logits").output)
    x = tf.constant(image[None].astype(np.float32) / 255.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(logits_model(x)[0, ..., TARGET] * region) / region.sum()
    expected = tape.gradient(score, x)[0].numpy().sum(-1)
    ours = explain(adapter, image, region, TARGET, methods=["saliency", "gradient_x_input"])
    np.testing.assert_allclose(ours["saliency"].heatmap, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(logits_model(x)[0, ..., TARGET] * region) / region.sum()
    grad_x_input = (tape.gradient(score, x) * x)[0].numpy().sum(-1)
    np.testing.assert_allclose(ours["gradient_x_input"].heatmap, grad_x_input, rtol=1e-4, atol=1e-6)


def test_integrated_gradients_completeness_at_default_steps(adapter, image, region):
    result = explain(adapter, image, region, TARGET, methods=["integrated_gradients"])["integrated_gradients"]
    black = np.zeros_like(image)
    np.testing.assert_allclose(result.baseline_score, adapter.score(black[None], region, TARGET)[0], rtol=1e-5)
    delta = result.score - result.baseline_score
    assert abs(result.heatmap.sum() - delta) <= 0.01 * abs(delta)


@pytest.mark.parametrize("name", ["shap", "deep_shap"])
def test_shap_efficiency(adapter, image, region, name):
    params = {"shap": {"max_evals": 300}} if name == "shap" else None
    result = explain(adapter, image, region, TARGET, methods=[name], params=params)[name]
    np.testing.assert_allclose(result.heatmap.sum(), result.score - result.baseline_score, rtol=1e-3, atol=1e-5)


def test_deep_shap_baseline_is_the_mean_background_score(adapter, image, region):
    from explainers.baselines import baseline_image

    result = explain(adapter, image, region, TARGET, methods=["deep_shap"])["deep_shap"]
    background = np.stack([baseline_image(image, "black"), baseline_image(image, "blur")])
    np.testing.assert_allclose(result.baseline_score, adapter.score(background, region, TARGET).mean(), rtol=1e-4)


def randomized_clone(model: keras.Model, seed: int = 123) -> keras.Model:
    clone = keras.models.clone_model(model)
    rng = np.random.default_rng(seed)
    clone.set_weights([rng.normal(0, np.std(w) + 0.05, size=w.shape).astype(w.dtype) for w in model.get_weights()])
    return clone


def test_randomizing_all_weights_changes_gradcam_and_saliency(image, region):
    model = tiny_unet((32, 32))
    original = SegmentationAdapter(model)
    randomized = SegmentationAdapter(randomized_clone(model))
    for name, layer in [("gradcam", "dec1"), ("saliency", None)]:
        params = {name: {"layer": layer}} if layer else None
        a = explain(original, image, region, TARGET, methods=[name], params=params)[name].heatmap
        b = explain(randomized, image, region, TARGET, methods=[name], params=params)[name].heatmap
        rho = spearmanr(a.ravel(), b.ravel()).statistic
        assert np.isfinite(rho) and rho < 0.5, (name, rho)


def test_integrated_gradients_refines_its_path_until_complete(adapter, image, region):
    coarse = {"steps": 2, "max_steps": 2}
    refined = {"steps": 2, "max_steps": 256, "tolerance": 0.001}
    fixed = explain(adapter, image, region, TARGET, methods=["integrated_gradients"],
                    params={"integrated_gradients": coarse})["integrated_gradients"]  # fmt: skip
    adaptive = explain(adapter, image, region, TARGET, methods=["integrated_gradients"],
                       params={"integrated_gradients": refined})["integrated_gradients"]  # fmt: skip
    delta = adaptive.score - adaptive.baseline_score
    assert fixed.diagnostics["steps_used"] == 2
    assert adaptive.diagnostics["steps_used"] > 2
    assert abs(adaptive.heatmap.sum() - delta) <= max(0.001 * abs(delta), abs(fixed.heatmap.sum() - delta))
    error = abs(adaptive.heatmap.sum() - delta) / abs(delta)
    np.testing.assert_allclose(adaptive.diagnostics["completeness_error"], error, rtol=1e-3)
