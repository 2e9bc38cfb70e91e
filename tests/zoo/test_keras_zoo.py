"""Every Keras zoo architecture (tests/zoo/keras_models.py) passes the shared conformance check
(tests/zoo/conformance.py, references from tests/zoo/keras_references.py).

Each model is built once per module (parametrised fixture), every method is run once on it, and the tests assert on
those results: predictions, finite non-constant maps, Grad-CAM == Seg-Grad-CAM at three layers, IG completeness, SHAP
efficiency, refusals with a reason that leave gradients working, the default CAM layer, and the app's fast path.
"""

from __future__ import annotations

from typing import Any

import pytest

from explainers import SegmentationAdapter
from tests.zoo import conformance
from tests.zoo.conftest import zoo_models
from tests.zoo.keras_models import ZOO
from tests.zoo.keras_references import KerasReferences


@pytest.fixture(scope="module", params=zoo_models(list(ZOO)))
def zoo(request) -> tuple[Any, conformance.ZooRun, KerasReferences, Any]:
    entry = ZOO[request.param]
    model = entry.build()
    adapter = SegmentationAdapter(model)
    refs = KerasReferences(model)
    q = conformance.user_question(entry, adapter)
    state = refs.global_state()
    return entry, conformance.run_methods(adapter, q, entry.method_params), refs, state


def test_adapter_builds_and_predicts_like_the_model(zoo):
    entry, run, refs, _ = zoo
    conformance.check_predicts_like_the_model(entry, run, refs)


def test_logits_neither_vanish_nor_saturate(zoo):
    _, run, refs, _ = zoo
    conformance.check_logits_neither_vanish_nor_saturate(run, refs)


def test_every_method_gives_a_finite_non_constant_map_or_a_reason(zoo):
    entry, run, refs, state = zoo
    conformance.check_every_method(entry, run, refs, state)


def test_grad_cam_equals_seg_grad_cam_at_three_layers(zoo):
    _, run, refs, _ = zoo
    conformance.check_grad_cam_equals_seg_grad_cam(run, refs)


def test_integrated_gradients_completeness_and_shap_efficiency(zoo):
    conformance.check_completeness_and_efficiency(zoo[1])


def test_default_cam_layer_follows_the_rule(zoo):
    conformance.check_default_cam_layer(zoo[1])


def test_the_app_fast_path_answers(zoo, tmp_path):
    conformance.check_the_app_fast_path(zoo[1], tmp_path)
