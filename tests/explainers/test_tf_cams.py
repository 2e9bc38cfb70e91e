"""The Keras backend's fused CAM step (explainers.backends.tf_cams, XLA-compiled) equals the formulas of
explainers.cam run as written, layer by layer: on mixed-sign tensors of several shapes, with a Grad-CAM++ zero
denominator, in any combiner order, with a combiner that is not fused, and inside the backend's own fast pass."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from explainers.backends.tf_cams import TF_OPS, fused_maps, layer_maps_function
from explainers.cam import cam_combiners


def tensors() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(1, h, w, k) activations and gradients of three layers (NHWC, as Keras gives them)."""
    rng = np.random.default_rng(3)
    shapes = [(6, 5, 4), (2, 8, 3), (1, 1, 5)]
    activations = [rng.normal(size=(1, *shape)).astype(np.float32) for shape in shapes]
    grads = [rng.normal(size=(1, *shape)).astype(np.float32) for shape in shapes]
    # layer 1, channel 2: activations summing to -2 and one gradient of 1, so 2 + sum(A) g = 0 (alpha undefined)
    activations[1][0, :, :, 2] = 0.0
    activations[1][0, 0, 0, 2], activations[1][0, 1, 3, 2] = -1.5, -0.5
    grads[1][0, :, :, 2] = 0.0
    grads[1][0, 1, 1, 2] = 1.0
    grads[0][0, 0, 0, :] = 0.0  # exact zero gradients
    return activations, grads


def as_written(combine, a: np.ndarray, g: np.ndarray, dtype) -> np.ndarray:
    return combine(TF_OPS, tf.constant(a[0], dtype), tf.constant(g[0], dtype)).numpy()


def assert_formula(ours: np.ndarray, combine, a: np.ndarray, g: np.ndarray) -> None:
    """`ours` is the formula's map as near as its own float32 evaluation: within twice that evaluation's distance
    from the float64 one, plus float32 round-off of the map."""
    exact = as_written(combine, a, g, tf.float64)
    own = np.abs(as_written(combine, a, g, tf.float32) - exact).max()
    assert np.isfinite(ours).all()
    assert np.abs(ours - exact).max() <= 2 * own + 1e-6 * max(float(np.abs(exact).max()), 1e-3)


def signed_sum(ops, activations, gradients):
    """A combiner that is not fused (no ReLU: negative values must survive)."""
    return ops.sum(gradients, axis=-1) - ops.mean(activations, axis=-1)


@pytest.mark.parametrize("order", [["gradcam", "hirescam", "gradcam++", "layercam"], ["layercam", "gradcam++"],
                                   ["hirescam"], ["gradcam++", "signed", "gradcam"]])  # fmt: skip
def test_each_layers_maps_equal_the_formulas_in_any_order(order):
    registered = cam_combiners()
    combiners = [signed_sum if name == "signed" else registered[name] for name in order]
    combine_layer = layer_maps_function(combiners)
    for a, g in zip(*tensors(), strict=True):
        maps = combine_layer(tf.constant(a), tf.constant(g)).numpy()
        assert maps.shape == (*a.shape[1:3], len(order))
        for j, combine in enumerate(combiners):
            assert_formula(maps[..., j], combine, a, g)
    assert (maps[..., order.index("signed")] < 0).any() if "signed" in order else True


def test_a_zero_grad_cam_plus_plus_denominator_counts_zero():
    """Layer 1's channel 2 has 2 + sum(A) g = 0 at one pixel: the fused weights stay finite and equal the formula."""
    a, g = (arrays[1] for arrays in tensors())
    positive = np.maximum(g[0, :, :, 2], 0.0)
    assert np.isclose(2.0 + a[0, :, :, 2].sum() * positive.max(), 0.0)
    fused = fused_maps(tf.constant(a[0]), tf.constant(g[0]), ["gradcam++"])["gradcam++"].numpy()
    assert_formula(fused, cam_combiners()["gradcam++"], a, g)


def test_the_keras_fast_pass_gives_the_formulas_maps(adapter, image, region):
    """Inside the backend's traced, per-layer XLA step: every layer's fused maps equal the formulas applied to that
    layer's activation and gradient, as the backend's own layer gradients give them."""
    spec = adapter.score_spec(region, 1, image.shape[:2])
    x = adapter.model_input(image[None])
    combiners = list(cam_combiners().values())
    layers = adapter.conv_layers
    _, maps, _ = adapter.backend.fast_pass(x, spec, combiners, layers)
    _, pairs = adapter.backend.layer_gradients(x, spec, layers)
    assert len(maps) == len(layers) > 1
    for layer_maps, (activation, grad) in zip(maps, pairs, strict=True):
        assert layer_maps.shape == (*activation.shape[:2], len(combiners))
        for j, combine in enumerate(combiners):
            assert_formula(layer_maps[..., j], combine, activation[None], grad[None])
