"""Each CAM combiner on each backend's tensors equals its paper's formula written in numpy, on arrays with mixed-sign
activations and gradients, exact zeros, and a Grad-CAM++ channel whose closed-form denominator is exactly zero."""

from __future__ import annotations

import numpy as np
import pytest

from explainers.cam import cam_explainers
from tests.explainers.test_properties import grad_cam_plus_plus

REFERENCE = {
    "gradcam": lambda a, g: np.maximum(a @ g.mean(axis=(0, 1)), 0),
    "hirescam": lambda a, g: np.maximum((a * g).sum(-1), 0),
    "layercam": lambda a, g: np.maximum((a * np.maximum(g, 0)).sum(-1), 0),
    "gradcam++": grad_cam_plus_plus,
}


def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 5, 4)).astype(np.float32)
    g = rng.normal(size=(6, 5, 4)).astype(np.float32)
    g[0, 0, :] = 0.0  # exact zero gradients
    # channel 3: activations summing to -2 and one gradient of 1, so 2 + sum(A) g = 0 there (alpha undefined)
    a[..., 3] = 0.0
    a[0, 1, 3], a[1, 1, 3] = -1.5, -0.5
    g[2, 2, 3] = 1.0
    return a, g


def as_backend(framework: str, x: np.ndarray):
    if framework == "torch":
        import torch

        from explainers.backends.torch_cams import TORCH_OPS

        return TORCH_OPS, torch.from_numpy(x)
    import tensorflow as tf

    from explainers.backends.tf_cams import TF_OPS

    return TF_OPS, tf.constant(x)


@pytest.mark.parametrize("framework", ["keras", "torch"])
@pytest.mark.parametrize("name", list(REFERENCE))
def test_each_combiner_equals_its_formula(framework, name):
    a, g = arrays()
    assert np.isclose(2 + a[..., 3].sum() * g[2, 2, 3], 0.0)
    ops, a_t = as_backend(framework, a)
    _, g_t = as_backend(framework, g)
    ours = np.asarray(cam_explainers()[name].combine(ops, a_t, g_t))
    reference = REFERENCE[name](a.astype(np.float64), g.astype(np.float64))
    assert np.isfinite(ours).all() and reference.max() > 0
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-6)
