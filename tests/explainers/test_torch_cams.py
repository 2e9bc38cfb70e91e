"""The torch backend's fused CAM step equals the formulas of explainers.cam run as written, layer by layer: on
mixed-sign tensors of several shapes, with a Grad-CAM++ zero denominator in one layer, in any combiner order and with
a combiner that is not fused."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from explainers.backends.torch_cams import TORCH_OPS, layer_maps  # noqa: E402
from explainers.cam import cam_combiners  # noqa: E402


def tensors() -> tuple[list, list]:
    rng = np.random.default_rng(1)
    shapes = [(4, 6, 5), (3, 2, 8), (5, 1, 1)]
    activations = [rng.normal(size=(1, *shape)).astype(np.float32) for shape in shapes]
    grads = [rng.normal(size=(1, *shape)).astype(np.float32) for shape in shapes]
    # layer 1, channel 2: activations summing to -2 and one gradient of 1, so 2 + sum(A) g = 0 (alpha undefined)
    activations[1][0, 2] = 0.0
    activations[1][0, 2, 0, 0], activations[1][0, 2, 1, 3] = -1.5, -0.5
    grads[1][0, 2] = 0.0
    grads[1][0, 2, 1, 1] = 1.0
    grads[0][0, :, 0, 0] = 0.0  # exact zero gradients
    return [torch.from_numpy(a) for a in activations], [torch.from_numpy(g) for g in grads]


def as_written(combine, a, g) -> np.ndarray:
    return combine(TORCH_OPS, a[0].permute(1, 2, 0), g[0].permute(1, 2, 0)).numpy()


def signed_sum(ops, activations, gradients):
    """A combiner that is not fused (no ReLU: negative values must survive)."""
    return ops.sum(gradients, axis=-1) - ops.mean(activations, axis=-1)


@pytest.mark.parametrize("order", [None, "reversed", "with-other"])
def test_fused_maps_equal_the_formulas(order):
    combiners = list(cam_combiners().values())
    if order == "reversed":
        combiners = combiners[::-1]
    elif order == "with-other":
        combiners = [combiners[2], signed_sum, combiners[0]]
    activations, grads = tensors()
    a1, g1 = activations[1][0, 2].numpy(), grads[1][0, 2].numpy()
    assert 2 + a1.sum() * g1.max() == 0.0  # the zero denominator is really there
    maps = layer_maps(activations, grads, combiners)
    assert len(maps) == len(activations)
    for a, g, ours in zip(activations, grads, maps, strict=True):
        assert ours.shape == (a.shape[2], a.shape[3], len(combiners)) and ours.dtype == np.float32
        for j, combine in enumerate(combiners):
            np.testing.assert_allclose(ours[..., j], as_written(combine, a, g), rtol=1e-5, atol=1e-6)
    assert np.isfinite(np.concatenate([m.ravel() for m in maps])).all()
    if order == "with-other":
        assert min(m[..., 1].min() for m in maps) < 0
