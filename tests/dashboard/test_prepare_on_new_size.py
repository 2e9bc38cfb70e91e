"""An image of a new size, for a model of dynamic size, starts preparing the fast pass for that size in the
background when it is ingested (so the first selection does not pay for tracing); a fixed-size model is prepared at
start-up instead and ingesting starts nothing."""

from __future__ import annotations

import threading
import time

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


def test_an_image_that_arrives_while_the_model_is_prepared_is_told_so(shared, monkeypatch):
    from dashboard.callbacks.common import CLEAR
    from dashboard.callbacks.upload import loaded_message

    release = threading.Event()
    real_prepare = warmup.prepare
    monkeypatch.setattr(warmup, "prepare", lambda adapter, size: (release.wait(30), real_prepare(adapter, size)))
    dynamic = SegmentationAdapter(tiny_unet((None, None)), class_names=["bg", "a", "b", "c"])
    image = np.zeros((36, 52, 3), np.uint8)
    analysis.ingest_image(shared, "b" * 32, dynamic, image, name="x")
    assert warmup.preparing(dynamic, (36, 52))
    message = loaded_message(dynamic, image, ["Loaded “x”: cropped."])
    assert message[0] == ("Loaded “x”: cropped. Preparing the model for 52x36 images (compiling its fast pass, once "
                          "per size): the first explanation waits until it is ready.")  # fmt: skip
    assert not warmup.preparing(dynamic, (40, 52))  # another size is not being prepared
    release.set()
    deadline = time.monotonic() + 60
    while warmup.preparing(dynamic, (36, 52)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not warmup.preparing(dynamic, (36, 52))
    assert loaded_message(dynamic, image) == CLEAR  # nothing left to say: the message is cleared
    assert analysis.preparing_note(dynamic, (36, 52)) == ""
