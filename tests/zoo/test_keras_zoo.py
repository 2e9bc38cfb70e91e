"""Every zoo architecture (tests/zoo/keras_models.py) passes the shared conformance check (tests/zoo/conformance.py).

Each model is built once per module (parametrised fixture), every method is run once on it, and the tests assert on
those results: predictions, finite non-constant maps, Grad-CAM == Seg-Grad-CAM at three layers, IG completeness, SHAP
efficiency, refusals with a reason that leave gradients working, the default CAM layer, and the app's fast path.
"""

from __future__ import annotations

import numpy as np
import pytest

from explainers import SegmentationAdapter, registry
from explainers.backends.tf_isolation import TFGradientState
from explainers.layer_choice import classifier_layers, mixes_spatial_context
from tests.zoo.conformance import (
    MAY_REFUSE,
    ZooRun,
    question_for,
    reference_probabilities,
    run_methods,
    seg_grad_cam,
    top_level_cam_layers,
)
from tests.zoo.conftest import zoo_models
from tests.zoo.keras_models import ZOO


@pytest.fixture(scope="module", params=zoo_models(list(ZOO)))
def zoo(request) -> tuple[object, ZooRun, TFGradientState]:
    entry = ZOO[request.param]
    model = entry.build()
    adapter = SegmentationAdapter(model)
    q = question_for(entry)
    labels = np.argmax(adapter.predict(q.image), axis=-1)
    q.target = int(np.bincount(labels[q.region], minlength=adapter.num_classes).argmax())  # what a user would pick
    state = TFGradientState.capture()
    return entry, run_methods(adapter, q), state


def test_adapter_builds_and_predicts_like_the_model(zoo):
    entry, run, _ = zoo
    adapter, q = run.adapter, run.question
    assert adapter.num_classes == entry.classes
    assert adapter.output_shape_for(entry.size) == (entry.size[0] // entry.output_stride,
                                                    entry.size[1] // entry.output_stride)  # fmt: skip
    expected = reference_probabilities(adapter.model, q.image)
    predicted = adapter.predict(q.image)
    assert predicted.shape == (*entry.size, entry.classes)
    logits = adapter.backend.logits(adapter.model_input(q.image[None]))[0]  # the adapter's own logits grid
    ours = np.exp(logits - logits.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(ours / ours.sum(axis=-1, keepdims=True), expected, rtol=1e-4, atol=1e-5)


def test_logits_neither_vanish_nor_saturate(zoo):
    _, run, _ = zoo
    probabilities = reference_probabilities(run.adapter.model, run.question.image)
    assert 0.2 < probabilities.max(axis=-1).mean() < 0.98
    assert (np.argmax(probabilities, axis=-1) == run.question.target).any() or probabilities.shape[-1] > 2


def test_every_method_gives_a_finite_non_constant_map_or_a_reason(zoo):
    entry, run, state = zoo
    assert set(run.results) | set(run.refused) == set(registry.available())
    for name, reason in run.refused.items():
        assert name in MAY_REFUSE and MAY_REFUSE[name] in reason, (name, reason)
    for name, result in run.results.items():
        assert result.heatmap.shape == entry.size, name
        assert np.isfinite(result.heatmap).all(), name
        assert np.ptp(result.heatmap) > 0, f"{name} gives a constant map on {entry.name}"
        if registry.get(name).is_cam:
            assert result.layer == run.adapter.default_layer
    # Whatever ran or refused, TensorFlow's gradient machinery is as it was and gradients still work.
    assert state.differences() == []
    assert "saliency" in run.results and "gradcam" in run.results


def test_grad_cam_equals_seg_grad_cam_at_three_layers(zoo):
    _, run, _ = zoo
    adapter, q = run.adapter, run.question
    layers = top_level_cam_layers(adapter.model, adapter)
    assert len(layers) == 3
    reference = seg_grad_cam(adapter.model, layers, q)
    cam = registry.get("gradcam").explain(adapter, q.image, q.region, q.target, params={"layer": layers[-1]})
    cells = int(q.region[q.stride // 2 :: q.stride, q.stride // 2 :: q.stride].sum())
    for layer in layers:
        native = cam.per_layer.native(layer)
        expected = reference[layer] / (cells * native.shape[0] * native.shape[1])
        assert native.shape == expected.shape
        np.testing.assert_allclose(native, expected, rtol=2e-3, atol=2e-4 * max(np.abs(expected).max(), 1e-12))


def test_integrated_gradients_completeness_and_shap_efficiency(zoo):
    _, run, _ = zoo
    ig = run.results["integrated_gradients"]
    gap = ig.score - ig.baseline_score
    assert abs(float(ig.heatmap.sum()) - gap) <= 0.05 * abs(gap) + 1e-4
    shap = run.results["shap"]
    np.testing.assert_allclose(float(shap.heatmap.sum()), shap.score - shap.baseline_score, rtol=1e-4, atol=1e-5)
    if "deep_shap" in run.results:
        deep = run.results["deep_shap"]
        np.testing.assert_allclose(float(deep.heatmap.sum()), deep.score - deep.baseline_score, rtol=2e-3,
                                   atol=1e-4)  # fmt: skip


def test_default_cam_layer_follows_the_rule(zoo):
    _, run, _ = zoo
    adapter = run.adapter
    by_name = {layer.name: layer for layer in adapter.layers}
    head = classifier_layers(adapter.layers, adapter.num_classes)
    chosen = by_name[adapter.default_layer]
    assert chosen.name not in head and mixes_spatial_context(chosen)
    later = adapter.conv_layers[adapter.conv_layers.index(chosen.name) + 1 :]
    assert not [name for name in later if name not in head and mixes_spatial_context(by_name[name])]


def test_the_app_fast_path_answers(zoo, tmp_path):
    from dash import no_update

    from dashboard.callbacks import explain, selection
    from dashboard.state.resources import methods
    from dashboard.state.store import DiskStore, new_session_id
    from dashboard.usecases import analysis

    _, run, _ = zoo
    adapter, q = run.adapter, run.question
    store, session = DiskStore(str(tmp_path / "state")), new_session_id()
    try:
        image_ref = analysis.ingest_image(store, session, adapter, q.image, name="zoo.png")
        ys, xs = np.nonzero(q.region)
        selected = {"points": [], "range": {"x": [int(xs.min()), int(xs.max())], "y": [int(ys.min()), int(ys.max())]}}
        region_ref = selection.handle_selected(store, session, image_ref, selected, adapter.class_names)[0]
        fast = [info.name for info in methods() if not info.slow]
        index = adapter.conv_layers.index(adapter.default_layer)
        cards, slow, request, results, *_ = explain.handle_explain(
            region_ref, q.target, fast, image_ref, session, index, 0.8, None, None,
            adapter=adapter, store=store, infos=methods(),
        )  # fmt: skip
        shown = [card.to_plotly_json()["props"]["data-method"] for card in cards]
        assert shown == fast and slow == [] and request is no_update  # no background job for fast methods
        for name in fast:
            summary = analysis.stored_result(store, session, results["question"], name)
            assert summary is not None and np.isfinite(summary["heatmap"]).all()
    finally:
        store.close()
