"""An image of a new size, for a model of dynamic size, starts preparing the fast pass for that size in the
background when it is ingested (so the first selection does not pay for tracing); a fixed-size model is prepared at
start-up instead and ingesting starts nothing."""

from __future__ import annotations

import numpy as np

from dashboard.usecases import analysis
from explainers import SegmentationAdapter, warmup
from tests.explainers.tiny_models import tiny_unet


def test_a_new_image_size_is_prepared_in_the_background_for_a_dynamic_model(shared, monkeypatch):
    started: list[tuple[int, int]] = []
    monkeypatch.setattr(warmup, "prepare_in_background", lambda adapter, size: started.append(tuple(size)))
    session = "a" * 32
    dynamic = SegmentationAdapter(tiny_unet((None, None)), class_names=["bg", "a", "b", "c"])
    analysis.ingest_image(shared, session, dynamic, np.zeros((40, 48, 3), np.uint8), name="x")
    assert started == [(40, 48)]
    fixed = SegmentationAdapter(tiny_unet((32, 32)), class_names=["bg", "a", "b", "c"])
    analysis.ingest_image(shared, session, fixed, np.zeros((32, 32, 3), np.uint8), name="y")
    assert started == [(40, 48)]
