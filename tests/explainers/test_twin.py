"""Twin test: the same U-Net in Keras and in torch, weights copied across, explained by the two backends.

Scores agree within 1e-4 relative; every CAM at every layer, saliency and Integrated Gradients agree with Pearson
>= 0.999 (a map that is constant on one side, e.g. an all-zero ReLU'd CAM, must be constant on the other too).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainers import SegmentationAdapter, explain
from explainers.cam import cam_explainers
from tests.explainers.tiny_models import box_region, structured_image
from tests.explainers.tiny_torch_models import CONV_ORDER, TinyTorchUNet, keras_twin

torch.set_num_threads(1)
SIZE = (32, 32)
QUESTIONS = [
    (box_region(SIZE, 6, 10, 20, 26), 1),
    (box_region(SIZE, 0, 0, 12, 32), 3),
    (box_region(SIZE, 20, 4, 21, 5), 0),  # one pixel
]


@pytest.fixture(scope="module")
def twins() -> tuple[SegmentationAdapter, SegmentationAdapter]:
    network = TinyTorchUNet(seed=7)
    return SegmentationAdapter(keras_twin(network, SIZE)), SegmentationAdapter(network)


def assert_same_map(first: np.ndarray, second: np.ndarray, what: str) -> None:
    scale = max(np.abs(first).max(), np.abs(second).max())
    if np.ptp(first) <= 1e-6 * max(scale, 1e-12) or np.ptp(second) <= 1e-6 * max(scale, 1e-12):
        np.testing.assert_allclose(first, second, atol=1e-6 * max(scale, 1e-6), err_msg=what)
        return
    pearson = np.corrcoef(first.ravel(), second.ravel())[0, 1]
    assert pearson >= 0.999, f"{what}: Pearson {pearson:.6f}"


def test_the_twins_have_the_same_layers_and_scores(twins):
    keras_adapter, torch_adapter = twins
    # Keras lists each conv's rectified output too (the ReLU layer after it); torch lists its conv modules only.
    keras_convs = [layer.name for layer in keras_adapter.layers if not layer.kind.endswith("ReLU")]
    assert keras_convs == torch_adapter.conv_layers == CONV_ORDER
    assert all(layer.activated for layer in keras_adapter.layers if layer.name not in keras_convs)
    images = np.stack([structured_image(SIZE, seed=s) for s in range(3)])
    for region, target in QUESTIONS:
        np.testing.assert_allclose(
            torch_adapter.score(images, region, target), keras_adapter.score(images, region, target), rtol=1e-4
        )
    np.testing.assert_allclose(torch_adapter.predict(images[0]), keras_adapter.predict(images[0]), atol=1e-5)


@pytest.mark.parametrize(("region", "target"), QUESTIONS)
def test_cams_saliency_and_integrated_gradients_agree(twins, region, target):
    keras_adapter, torch_adapter = twins
    image = structured_image(SIZE, seed=5)
    methods = [*cam_explainers(), "saliency", "integrated_gradients"]
    params = {"integrated_gradients": {"steps": 32, "max_steps": 32}}
    # Keras defaults to a rectified ReLU output that torch does not list: both show the same conv layer here.
    params |= {name: {"layer": torch_adapter.default_layer} for name in cam_explainers()}
    ours = {name: explain(a, image, region, target, methods=methods, params=params) for name, a in
            (("keras", keras_adapter), ("torch", torch_adapter))}  # fmt: skip
    for method in methods:
        first, second = ours["keras"][method], ours["torch"][method]
        np.testing.assert_allclose(second.score, first.score, rtol=1e-4)
        if first.per_layer is not None:
            for layer in CONV_ORDER:
                assert_same_map(first.per_layer[layer], second.per_layer[layer], f"{method} at {layer}")
        assert_same_map(first.heatmap, second.heatmap, method)
