"""Fixtures for the explainer tests: a tiny U-Net, its adapter, an image and a region."""

from __future__ import annotations

import numpy as np
import pytest

from explainers import SegmentationAdapter
from tests.explainers.tiny_models import box_region, structured_image, tiny_unet

SIZE = (32, 32)


@pytest.fixture(scope="session")
def tiny_model():
    return tiny_unet(SIZE)


@pytest.fixture(scope="session")
def adapter(tiny_model) -> SegmentationAdapter:
    return SegmentationAdapter(tiny_model, class_names=["bg", "a", "b", "c"])


@pytest.fixture(scope="session")
def image() -> np.ndarray:
    return structured_image(SIZE)


@pytest.fixture(scope="session")
def region() -> np.ndarray:
    return box_region(SIZE, 6, 10, 20, 26)
