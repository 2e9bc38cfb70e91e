"""Fixtures for the explainer tests: tiny U-Nets (Keras and torch), their adapters, an image and a region.

`BACKENDS` maps a backend name to a builder `(logit_scale) -> SegmentationAdapter` of the tiny U-Net served by that
backend; the contract test runs on every entry, so adding a backend is one line here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from explainers import SegmentationAdapter
from tests.explainers.tiny_models import box_region, structured_image, tiny_unet

SIZE = (32, 32)
NAMES = ["bg", "a", "b", "c"]


def _torch_unet(logit_scale: float = 1.0) -> SegmentationAdapter:
    import torch

    from tests.explainers.tiny_torch_models import TinyTorchUNet

    torch.set_num_threads(1)  # the test machine is shared: OpenMP threads spinning on busy cores cost ~10x
    return SegmentationAdapter(TinyTorchUNet(logit_scale=logit_scale), class_names=NAMES)


def _onnx_unet(logit_scale: float = 1.0, backend: str = "auto") -> SegmentationAdapter:
    """The torch U-Net exported to ONNX (TorchScript exporter, opset 17), through onnx2torch or as a black box."""
    from explainers.onnx_loading import load_onnx
    from tests.explainers.onnx_exports import export
    from tests.explainers.tiny_torch_models import TinyTorchUNet

    loaded = load_onnx(export(TinyTorchUNet(logit_scale=logit_scale), SIZE), backend=backend)
    assert loaded.backend.framework == ("torch" if backend == "auto" else "onnxruntime")
    return SegmentationAdapter(loaded.backend, class_names=NAMES)


BACKENDS: dict[str, Callable[[float], SegmentationAdapter]] = {
    "keras": lambda logit_scale=1.0: SegmentationAdapter(tiny_unet(SIZE, logit_scale=logit_scale), class_names=NAMES),
    "torch": _torch_unet,
    "onnx2torch": _onnx_unet,
    "onnx-black-box": lambda logit_scale=1.0: _onnx_unet(logit_scale, backend="onnxruntime"),
}
_BUILT: dict[tuple[str, float], SegmentationAdapter] = {}


def backend_adapter(name: str, logit_scale: float = 1.0) -> SegmentationAdapter:
    """The tiny U-Net on backend `name`, built once per test session."""
    if (name, logit_scale) not in _BUILT:
        _BUILT[name, logit_scale] = BACKENDS[name](logit_scale)
    return _BUILT[name, logit_scale]


@pytest.fixture(params=list(BACKENDS))
def any_adapter(request) -> SegmentationAdapter:
    """The tiny U-Net on each backend in turn."""
    return backend_adapter(request.param)


BLACK_BOX = {"onnx-black-box"}  # backends without gradients (checked in gradient_adapter)


@pytest.fixture(params=[name for name in BACKENDS if name not in BLACK_BOX])
def gradient_adapter(request) -> SegmentationAdapter:
    """The tiny U-Net on each backend that has gradients."""
    adapter = backend_adapter(request.param)
    assert adapter.gradients, f"{request.param} has no gradients: list it in BLACK_BOX"
    return adapter


@pytest.fixture(scope="session")
def tiny_model():
    return tiny_unet(SIZE)


@pytest.fixture(scope="session")
def adapter(tiny_model) -> SegmentationAdapter:
    return SegmentationAdapter(tiny_model, class_names=NAMES)


@pytest.fixture(scope="session")
def image() -> np.ndarray:
    return structured_image(SIZE)


@pytest.fixture(scope="session")
def region() -> np.ndarray:
    return box_region(SIZE, 6, 10, 20, 26)
