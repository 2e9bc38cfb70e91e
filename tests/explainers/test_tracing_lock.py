"""A Keras step already traced runs while another request holds the backend's tracing lock (tracing a new image size
or layer set), so tracing in one session never blocks another session's request."""

from __future__ import annotations

import threading

from explainers import SegmentationAdapter
from explainers.cam import cam_explainers
from tests.explainers.conftest import NAMES, SIZE
from tests.explainers.tiny_models import box_region, structured_image, tiny_unet


def test_a_traced_step_runs_while_another_caller_is_tracing():
    adapter = SegmentationAdapter(tiny_unet(SIZE), class_names=NAMES)
    combiners = {name: explainer.combine for name, explainer in cam_explainers().items()}
    image, region = structured_image(SIZE), box_region(SIZE, 6, 10, 20, 26)
    adapter.layer_maps(image, region, 1, combiners=combiners)  # traced once
    adapter.clear_cache()
    done = threading.Event()

    def request() -> None:
        adapter.layer_maps(image, region, 2, combiners=combiners)  # same step, another question: no new trace
        done.set()

    with adapter.backend._lock:  # as while another request traces a step of its own
        worker = threading.Thread(target=request, daemon=True)
        worker.start()
        finished = done.wait(timeout=60)
    worker.join(timeout=60)
    assert finished, "the traced step waited for the tracing lock"
