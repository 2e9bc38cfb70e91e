"""The backend seam: dispatch on the model's type, and a black-box backend (no gradients) behind the adapter: the
perturbation method runs, every gradient method is refused with the backend's reason before any work."""

from __future__ import annotations

import numpy as np
import pytest

from explainers import SegmentationAdapter, explain, registry
from explainers.backends import GradientsUnavailable, ScoreSpec, backend_for
from tests.explainers.tiny_models import box_region, structured_image

SIZE = (16, 16)


class LinearBlackBox:
    """A black-box 'segmentation model' in numpy: the logits of class c are a fixed linear mix of the RGB channels."""

    framework = "numpy"
    input_size = SIZE
    num_classes = 3
    binary = False
    layers: list = []
    gradients = False
    why_no_gradients = "it is served as a black box (test backend)"

    def __init__(self) -> None:
        self.mix = np.random.default_rng(0).normal(size=(3, self.num_classes)).astype(np.float32)
        self.calls = 0

    def output_shape_for(self, size: tuple[int, int]) -> tuple[int, int]:
        return size

    def logits(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return x @ self.mix

    def scores(self, x: np.ndarray, spec: ScoreSpec) -> np.ndarray:
        z = self.logits(x) @ spec.weights
        return (z * spec.region).sum(axis=(1, 2)) / spec.region.sum()


def test_dispatch_on_the_model_type(tiny_model):
    import torch

    assert backend_for(tiny_model).framework == "keras"
    assert backend_for(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1))).framework == "torch"
    box = LinearBlackBox()
    assert backend_for(box) is box
    with pytest.raises(ValueError, match=r"expected a Keras 3 model or a torch\.nn\.Module, got str"):
        SegmentationAdapter("model.pt")


def test_a_black_box_backend_runs_shap_and_refuses_gradient_methods_with_the_reason():
    box = LinearBlackBox()
    adapter = SegmentationAdapter(box)
    image, region = structured_image(SIZE), box_region(SIZE, 3, 3, 9, 10)
    assert adapter.framework == "numpy" and not adapter.gradients and adapter.conv_layers == []
    assert adapter.why_no_gradients == box.why_no_gradients
    x = image.astype(np.float32) / 255
    expected = ((x @ box.mix)[..., 2] * region).sum() / region.sum()
    np.testing.assert_allclose(adapter.score(image[None], region, 2)[0], expected, rtol=1e-5)
    np.testing.assert_allclose(adapter.predict(image).sum(axis=-1), 1.0, atol=1e-6)
    result = registry.get("shap").explain(adapter, image, region, 2, params={"max_evals": 100})
    np.testing.assert_allclose(result.heatmap.sum(), result.score - result.baseline_score, atol=1e-5)
    gradient_methods = [name for name in registry.available() if registry.get(name).requires_gradients]
    assert set(gradient_methods) == set(registry.available()) - {"shap"}
    for name in gradient_methods:
        calls = box.calls
        with pytest.raises(GradientsUnavailable, match="test backend"):
            registry.get(name).explain(adapter, image, region, 2)
        assert box.calls == calls  # refused before any work
    with pytest.raises(GradientsUnavailable, match="Saliency needs the model's gradients"):
        explain(adapter, image, region, 2, methods=["shap", "saliency"])
