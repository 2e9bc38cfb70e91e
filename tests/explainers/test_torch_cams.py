"""The torch backend's fused CAM step, in both its forms (the compiled loop of explainers.backends.cam_kernel and eager
torch), equals the formulas of explainers.cam run as written, layer by layer: on mixed-sign tensors of several shapes,
with a Grad-CAM++ zero denominator in one layer, in any combiner order and with a combiner that is not fused; and the
compiled loop on real-size layers (whole vector lanes and a remainder), and where the eager form must take over."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from explainers.backends import torch_cams  # noqa: E402
from explainers.backends.cam_kernel import fused_cams  # noqa: E402
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


def assert_formula(ours: np.ndarray, combine, a, g) -> None:
    """`ours` is the formula's map as near as its own float32 evaluation: within twice that evaluation's distance
    from the float64 one (Grad-CAM++'s denominators near 0 amplify round-off), plus float32 round-off of the map."""
    exact = as_written(combine, a.double(), g.double())
    own = np.abs(as_written(combine, a.float(), g.float()) - exact).max()
    tolerance = 2 * own + 1e-6 * max(float(np.abs(exact).max()), 1e-3)
    assert np.abs(ours - exact).max() <= tolerance


def signed_sum(ops, activations, gradients):
    """A combiner that is not fused (no ReLU: negative values must survive)."""
    return ops.sum(gradients, axis=-1) - ops.mean(activations, axis=-1)


@pytest.fixture(params=["compiled", "eager"])
def form(request, monkeypatch):
    """Which fused form runs: the compiled loop (the eager one then made to fail) or eager torch."""
    if request.param == "compiled":
        only_compiled(monkeypatch)
    return request.param


def only_compiled(monkeypatch) -> None:
    """Make the eager form fail, so only the compiled loop can give the fused maps."""
    assert fused_cams() is not None  # numba comes with shap

    def refuse(*args):
        raise AssertionError("the eager form ran where the compiled loop should have")

    monkeypatch.setattr(torch_cams, "_fused_layer", refuse)


@pytest.mark.parametrize("order", [None, "reversed", "with-other"])
def test_fused_maps_equal_the_formulas(order, form):
    combiners = list(cam_combiners().values())
    if order == "reversed":
        combiners = combiners[::-1]
    elif order == "with-other":
        combiners = [combiners[2], signed_sum, combiners[0]]
    activations, grads = tensors()
    a1, g1 = activations[1][0, 2].numpy(), grads[1][0, 2].numpy()
    assert 2 + a1.sum() * g1.max() == 0.0  # the zero denominator is really there
    maps = layer_maps(activations, grads, combiners, compiled=form == "compiled")
    assert len(maps) == len(activations)
    for a, g, ours in zip(activations, grads, maps, strict=True):
        assert ours.shape == (a.shape[2], a.shape[3], len(combiners)) and ours.dtype == np.float32
        for j, combine in enumerate(combiners):
            assert_formula(ours[..., j], combine, a, g)
            if form == "eager":  # the formulas' own operators, so their own round-off
                np.testing.assert_allclose(ours[..., j], as_written(combine, a, g), rtol=1e-5, atol=1e-6)
    assert np.isfinite(np.concatenate([m.ravel() for m in maps])).all()
    if order == "with-other":
        assert min(m[..., 1].min() for m in maps) < 0


def test_compiled_loop_on_real_size_layers(monkeypatch):
    """Layers of a U-Net's sizes, n not a multiple of the vector width, gradients of a real backward pass's scale (so
    the Grad-CAM++ denominators are near 2), one layer channels-last: the loop's maps are the formulas' to float32
    summation order."""
    only_compiled(monkeypatch)
    rng = np.random.default_rng(7)
    combiners = list(cam_combiners().values())
    shapes = [(12, 61, 67), (48, 16, 16), (3, 1, 1)]
    activations = [torch.from_numpy(rng.gamma(1.0, size=(1, *s)).astype(np.float32)) for s in shapes]
    grads = [torch.from_numpy((1e-4 * rng.normal(size=(1, *s))).astype(np.float32)) for s in shapes]
    activations[1] = activations[1].to(memory_format=torch.channels_last)  # not (k, h*w)-contiguous: copied first
    assert not activations[1].is_contiguous()
    maps = layer_maps(activations, grads, combiners, compiled=True)
    for a, g, ours in zip(activations, grads, maps, strict=True):
        for j, combine in enumerate(combiners):
            assert_formula(ours[..., j], combine, a, g)
        assert (ours >= 0).all() and ours[..., 1].max() > 0


def test_eager_form_where_the_loop_cannot_run(monkeypatch):
    """float64 layers (a float64 model) run in eager torch, to the formulas in float64 (the maps rounded to float32),
    even with compiled=True."""
    calls = []
    monkeypatch.setattr(torch_cams, "fused_cams", lambda: lambda *args: calls.append(args))
    activations, grads = tensors()
    activations, grads = [a.double() for a in activations], [g.double() for g in grads]
    combiners = list(cam_combiners().values())
    maps = layer_maps(activations, grads, combiners, compiled=True)
    assert not calls
    for a, g, ours in zip(activations, grads, maps, strict=True):
        for j, combine in enumerate(combiners):
            np.testing.assert_allclose(ours[..., j], as_written(combine, a, g), rtol=1e-6, atol=1e-7)


def test_the_loop_compiles_without_a_cache_where_numba_cannot_write_one(monkeypatch):
    """A read-only install without a usable cache directory: numba refuses `cache=True`; the loop is built without
    a cache instead (and the maps are still the formulas')."""
    import numba

    from explainers.backends import cam_kernel

    real_njit = numba.njit
    asked = []

    def njit(*args, **kwargs):
        asked.append(kwargs.get("cache"))
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function '_fused_cams': no locator available")
        return real_njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit)
    cam_kernel.fused_cams.cache_clear()
    try:
        kernel = cam_kernel.fused_cams()
        assert kernel is not None and asked == [True, False]
        rng = np.random.default_rng(5)
        a, g = rng.normal(size=(3, 10)).astype(np.float32), rng.normal(size=(3, 10)).astype(np.float32)
        outs = [np.empty(10, np.float32) for _ in range(4)]
        kernel(a, g, *outs)
        np.testing.assert_allclose(outs[1], np.maximum((a * g).sum(axis=0), 0), rtol=1e-5, atol=1e-6)  # HiResCAM
    finally:
        cam_kernel.fused_cams.cache_clear()
