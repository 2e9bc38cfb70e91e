"""The fast set (the four CAMs at every layer, saliency, gradient x input) comes from ONE forward and ONE backward pass.

On every backend with gradients: the saliency and gradient x input maps served from the CAMs' shared pass equal the
ones computed on their own (a separate input-gradient pass), and the backend is called once for the whole set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest

from explainers import SegmentationAdapter, explain
from explainers.cam import cam_explainers

TARGET = 1
FAST = [*cam_explainers(), "saliency", "gradient_x_input"]
BACKEND_CALLS = ("logits", "scores", "input_gradients", "layer_maps", "layer_gradients", "fast_pass")


@pytest.fixture
def calls(gradient_adapter: SegmentationAdapter, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    """Counts the calls the adapter makes to each backend member (the adapter's cache cleared first)."""
    counted: Counter = Counter()
    backend = gradient_adapter.backend
    for name in BACKEND_CALLS:
        original = getattr(backend, name)

        def counting(*args, _name=name, _original=original, **kwargs):
            counted[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(backend, name, counting)
    gradient_adapter.clear_cache()
    yield counted
    gradient_adapter.clear_cache()


@pytest.mark.parametrize("order", ["cams first", "gradients first"])
def test_the_fast_set_is_one_backend_pass_in_any_order(gradient_adapter, calls, image, region, order):
    methods = FAST if order == "cams first" else FAST[::-1]
    results = explain(gradient_adapter, image, region, TARGET, methods=methods)
    assert list(results) == methods  # returned in the order asked for, whatever order they ran in
    assert dict(calls) == {"fast_pass": 1}
    explain(gradient_adapter, image, region, TARGET, methods=methods)  # asked again: served from the kept results
    assert dict(calls) == {"fast_pass": 1}


def test_saliency_and_gradient_x_input_from_the_shared_pass_equal_their_own_pass(gradient_adapter, image, region):
    gradient_adapter.clear_cache()
    shared = explain(gradient_adapter, image, region, TARGET, methods=FAST)
    gradient_adapter.clear_cache()
    alone = explain(gradient_adapter, image, region, TARGET, methods=["saliency", "gradient_x_input"])
    # An independent computation: the adapter's batched input gradient of the same score, no cache involved.
    x = gradient_adapter.model_input(image[None])
    scores, grads = gradient_adapter.input_gradients(x, region, TARGET)
    expected = {"saliency": grads[0].sum(-1), "gradient_x_input": (grads[0] * x[0]).sum(-1)}
    for name, reference in expected.items():
        scale = np.abs(reference).max()
        assert scale > 0
        np.testing.assert_allclose(shared[name].heatmap, reference, rtol=1e-5, atol=1e-6 * scale)
        np.testing.assert_allclose(alone[name].heatmap, reference, rtol=1e-5, atol=1e-6 * scale)
        assert shared[name].score == pytest.approx(float(scores[0]), rel=1e-5)


def test_the_shared_pass_gives_the_same_cams_as_the_maps_alone(gradient_adapter, image, region):
    """fast_pass adds dS/dx to the layer maps' tape without changing the maps."""
    combiners = [explainer.combine for explainer in cam_explainers().values()]
    spec = gradient_adapter.score_spec(region, TARGET, image.shape[:2])
    x = gradient_adapter.model_input(image[None])
    layers = gradient_adapter.conv_layers
    score, maps, grad = gradient_adapter.backend.fast_pass(x, spec, combiners, layers)
    alone_score, alone_maps = gradient_adapter.backend.layer_maps(x, spec, combiners, layers)
    assert score == pytest.approx(alone_score, rel=1e-6)
    assert grad.shape == x.shape[1:]
    for shared_layer, alone_layer in zip(maps, alone_maps, strict=True):
        np.testing.assert_allclose(shared_layer, alone_layer, rtol=1e-5, atol=1e-6 * (np.abs(alone_layer).max() or 1))


def test_a_single_layer_cam_does_not_pay_for_the_input_gradient(gradient_adapter, calls, image, region):
    """With all_layers=False the backward pass stops at the chosen layer, so saliency needs its own pass."""
    layer = gradient_adapter.conv_layers[-1]
    explain(gradient_adapter, image, region, TARGET, methods=["gradcam", "saliency"],
            params={"gradcam": {"layer": layer, "all_layers": False}})  # fmt: skip
    assert dict(calls) == {"layer_maps": 1, "input_gradients": 1}


def test_torch_runs_one_forward_and_one_backward_for_the_fast_set(image, region, monkeypatch):
    """Counted inside torch: forward calls of the network and autograd.grad calls."""
    import torch

    from tests.explainers.conftest import backend_adapter

    adapter = backend_adapter("torch")
    adapter.clear_cache()
    forwards, backwards = [], []
    handle = adapter.backend.model.register_forward_hook(lambda module, inputs, output: forwards.append(1))
    real_grad = torch.autograd.grad

    def counting_grad(*args, **kwargs):
        backwards.append(1)
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    try:
        explain(adapter, image, region, TARGET, methods=FAST[::-1])
    finally:
        handle.remove()
        adapter.clear_cache()
    assert (len(forwards), len(backwards)) == (1, 1)
