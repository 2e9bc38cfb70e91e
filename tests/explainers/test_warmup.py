"""Preparing a model for an image size (explainers.warmup): after `prepare`, the first real fast pass at that size
traces nothing new; `prepare_in_background` runs once per adapter and size."""

from __future__ import annotations

import numpy as np

from explainers import SegmentationAdapter
from explainers.cam import cam_explainers
from explainers.warmup import prepare, prepare_in_background
from tests.explainers.conftest import NAMES
from tests.explainers.tiny_models import box_region, structured_image, tiny_unet


def _dynamic_adapter() -> SegmentationAdapter:
    adapter = SegmentationAdapter(tiny_unet((None, None)), class_names=NAMES)
    assert adapter.input_size is None
    return adapter


def test_after_prepare_the_first_fast_pass_at_that_size_traces_nothing():
    adapter = _dynamic_adapter()
    size = (40, 48)
    prepare(adapter, size)
    steps = dict(adapter.backend._map_fns)
    assert any(key[3] == (1, *size, 3) for key in steps)  # the fast pass at this size is traced
    combiners = {name: explainer.combine for name, explainer in cam_explainers().items()}
    image, region = structured_image(size), box_region(size, 4, 6, 30, 40)
    score, maps = adapter.layer_maps(image, region, 2, combiners=combiners)
    assert adapter.backend._map_fns == steps  # no new step: served by the prepared one
    assert np.isfinite(score) and set(maps) == set(combiners)
    _, _, gradient = adapter.image_gradient(image, region, 2)  # saliency comes from the same pass
    assert gradient.shape == (*size, 3)


def test_preparing_in_the_background_happens_once_per_size():
    adapter = _dynamic_adapter()
    thread = prepare_in_background(adapter, (32, 40))
    assert thread is not None
    thread.join(timeout=120)
    assert any(key[3] == (1, 32, 40, 3) for key in adapter.backend._map_fns)
    assert prepare_in_background(adapter, (32, 40)) is None
    other = prepare_in_background(adapter, (48, 32))
    assert other is not None
    other.join(timeout=120)
