"""Time estimates before a method starts (explainers.estimate): evaluations per method from its parameters, times
the adapter's measured seconds per image."""

from __future__ import annotations

import numpy as np
import pytest

from explainers import SegmentationAdapter, registry
from explainers.estimate import GRADIENT_OVER_FORWARD, describe_seconds, estimated_seconds
from explainers.memory import Throughput
from tests.explainers.conftest import NAMES, SIZE, backend_adapter


def test_each_slow_method_counts_its_model_evaluations_from_its_parameters():
    ig, smooth, shap = registry.get("integrated_gradients"), registry.get("smoothgrad"), registry.get("shap")
    assert ig.evaluations(ig.resolve_params({"steps": 40})) == {"gradient": 41}
    assert smooth.evaluations(smooth.resolve_params({"samples": 12})) == {"gradient": 12, "forward": 1}
    assert shap.evaluations(shap.resolve_params({"max_evals": 200})) == {"forward": 201}
    assert registry.get("gradcam").evaluations({}) == {"gradient": 1}


def test_throughput_is_a_moving_average_per_kind_and_size():
    throughput = Throughput()
    assert throughput.seconds_per_image("forward", SIZE) is None
    throughput.record("forward", SIZE, 2, 3.0)  # the first call: tracing included
    assert throughput.seconds_per_image("forward", SIZE) == pytest.approx(1.5)
    throughput.record("forward", SIZE, 10, 1.0)  # the second replaces it
    assert throughput.seconds_per_image("forward", SIZE) == pytest.approx(0.1)
    throughput.record("forward", SIZE, 1, 0.2)  # then a moving average
    assert throughput.seconds_per_image("forward", SIZE) == pytest.approx(0.3 * 0.2 + 0.7 * 0.1)
    assert throughput.seconds_per_image("forward", (64, 64)) is None and throughput.seconds_per_image(
        "gradient", SIZE) is None  # fmt: skip


def test_an_estimate_multiplies_evaluations_by_the_measured_seconds(image, region):
    adapter = SegmentationAdapter(backend_adapter("keras").backend, class_names=NAMES)
    assert estimated_seconds(adapter, "shap", None, SIZE) is None  # nothing measured yet
    adapter.score(np.repeat(image[None], 8, axis=0), region, 1)  # a timed forward batch
    forward = adapter.throughput.seconds_per_image("forward", SIZE)
    assert forward and forward > 0
    assert estimated_seconds(adapter, "shap", {"max_evals": 99}, SIZE) == pytest.approx(100 * forward)
    # no gradient measured yet: a gradient image counts as GRADIENT_OVER_FORWARD forward images
    ig = estimated_seconds(adapter, "integrated_gradients", {"steps": 9}, SIZE)
    assert ig == pytest.approx(10 * GRADIENT_OVER_FORWARD * forward)
    adapter.input_gradients(adapter.model_input(np.repeat(image[None], 4, axis=0)), region, 1)
    gradient = adapter.throughput.seconds_per_image("gradient", SIZE)
    assert estimated_seconds(adapter, "integrated_gradients", {"steps": 9}, SIZE) == pytest.approx(10 * gradient)


def test_a_model_call_that_fails_is_not_timed(image, region):
    adapter = SegmentationAdapter(backend_adapter("keras").backend, class_names=NAMES)
    with pytest.raises(ValueError):
        adapter.score(np.repeat(image[None], 2, axis=0), region, 99)
    assert adapter.throughput.seconds_per_image("forward", SIZE) is None


@pytest.mark.parametrize(("seconds", "text"), [(None, ""), (0.4, "under a second"), (4.4, "about 4 s"),
                                               (200, "about 3 min")])  # fmt: skip
def test_estimates_read_as_words(seconds, text):
    assert describe_seconds(seconds) == text
