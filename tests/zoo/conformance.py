"""The one check every zoo model must pass, whatever its framework, as plain functions over a built model (the Keras
and torch zoo tests and the timing script share them).

What is framework-specific, the independent references, comes from a `References` object (tests/zoo/keras_references.py,
tests/zoo/torch_references.py), computed with the model's own layers and the framework's own autodiff, never with the
engine: the model's class probabilities, Seg-Grad-CAM (Vinogradova et al., AAAI 2020: channel weights are the
gradients of the SUM of the class logits over the region, summed over the layer's grid) at chosen layers, and a
snapshot of the framework's global state that no method may change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from explainers import SegmentationAdapter, registry
from explainers.attribution import Attribution
from explainers.layer_choice import classifier_layers, mixes_spatial_context
from tests.zoo.scenes import scene

# Cheap parameters (as tests/explainers/test_contract.py's FAST); defaults are exercised by the property tests.
ZOO_PARAMS: dict[str, dict[str, Any]] = {
    "smoothgrad": {"samples": 4},
    # IG as a user is told to run it: the path is refined (intervals halved) until completeness holds to the tolerance
    # the check asserts; a model whose path needs more than max_steps fails the check rather than passing loosened.
    "integrated_gradients": {"steps": 16, "max_steps": 1024, "tolerance": 0.05},
    "shap": {"max_evals": 60},
    "deep_shap": {"background": ("black",)},
}
# The methods a zoo model may refuse, with the words its reason must contain.
MAY_REFUSE = {"deep_shap": "DeepSHAP cannot run on this model"}


class Entry(Protocol):
    """A zoo entry of either framework (keras_models.ZooModel, torch_models.TorchZooModel)."""

    name: str
    size: tuple[int, int]
    output_stride: int
    classes: int


@dataclass
class Question:
    image: np.ndarray
    region: np.ndarray  # a box aligned to the logits grid, so its resampling is unambiguous
    target: int
    stride: int


class References(Protocol):
    """A framework's independent references for one model."""

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """The model's own prediction as class probabilities (h', w', C); a sigmoid output as (1 - p, p)."""
        ...

    def round_off(self, image: np.ndarray) -> float:
        """The model's float32 disagreement with itself: the largest probability difference between two ways the
        framework runs it (0.0 where it has only one)."""
        ...

    def cam_layers(self, adapter: SegmentationAdapter, count: int = 3) -> list[str]:
        """`count` CAM layers spread over the model's depth that `seg_grad_cam` can reach."""
        ...

    def seg_grad_cam(self, layers: list[str], q: Question) -> dict[str, np.ndarray]:
        """Seg-Grad-CAM ReLU(sum_k alpha_k A_k) at each layer's resolution, alpha_k = sum_ij d(sum_{p in M'} z_c[p]) /
        dA_k[ij]."""
        ...

    def global_state(self) -> Any:
        """A snapshot of what no method may change; `differences(snapshot)` lists what changed since."""
        ...

    def differences(self, snapshot: Any) -> list[str]: ...


def question_for(entry: Entry, seed: int = 11) -> Question:
    """A test photo and a box covering a quarter of it, aligned to the model's output grid."""
    h, w = entry.size
    s = entry.output_stride
    region = np.zeros((h, w), dtype=bool)
    region[(h // s // 4) * s : (h // s // 2 + 1) * s, (w // s // 4) * s : (3 * w // s // 4) * s] = True
    return Question(scene(entry.size, seed=seed), region, target=1, stride=s)


def user_question(entry: Entry, adapter: SegmentationAdapter) -> Question:
    """`question_for`, its target the class the model predicts most in the box (what a user would pick)."""
    q = question_for(entry)
    labels = np.argmax(adapter.predict(q.image), axis=-1)
    q.target = int(np.bincount(labels[q.region], minlength=adapter.num_classes).argmax())
    return q


def with_a_token_layer(picks: list[str], tokens: list[str]) -> list[str]:
    """`picks` with its middle entry replaced by the last token layer when the model has token layers and none was
    picked (so the Seg-Grad-CAM check covers the reshaping of a token layer)."""
    if tokens and not set(picks) & set(tokens) and len(picks) >= 3:
        picks = [picks[0], tokens[-1], *picks[2:]]
    return picks


# ----------------------------------------------------------------------------------------------------- running
@dataclass
class ZooRun:
    """Every registered method's result on one zoo model (or the ValueError that refused it), with its time."""

    adapter: SegmentationAdapter
    question: Question
    results: dict[str, Attribution] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_methods(
    adapter: SegmentationAdapter, q: Question, overrides: dict[str, dict[str, Any]] | None = None
) -> ZooRun:
    """Every registered method once, with `ZOO_PARAMS` (a model's `overrides` on top, parameter by parameter, e.g.
    fewer SHAP evaluations)."""
    run = ZooRun(adapter, q)
    overrides = overrides or {}
    params = {name: {**ZOO_PARAMS.get(name, {}), **overrides.get(name, {})} for name in {*ZOO_PARAMS, *overrides}}
    for name in registry.available():
        start = time.perf_counter()
        try:
            run.results[name] = registry.get(name).explain(adapter, q.image, q.region, q.target,
                                                           params=params.get(name))  # fmt: skip
        except ValueError as err:
            run.refused[name] = str(err)
        run.seconds[name] = time.perf_counter() - start
    return run


# ------------------------------------------------------------------------------------------------------ checks
def check_predicts_like_the_model(entry: Entry, run: ZooRun, refs: References) -> None:
    """The adapter finds the classes and the logits grid, and the softmax of its logits is the model's output."""
    adapter, q = run.adapter, run.question
    assert adapter.num_classes == entry.classes
    assert adapter.output_shape_for(entry.size) == (entry.size[0] // entry.output_stride,
                                                    entry.size[1] // entry.output_stride)  # fmt: skip
    expected = refs.probabilities(q.image)
    predicted = adapter.predict(q.image)
    assert predicted.shape == (*entry.size, entry.classes)
    logits = adapter.backend.logits(adapter.model_input(q.image[None]))[0]  # the adapter's own logits grid
    if adapter.backend.binary:  # the classes are (-z, z): the model's probability is sigmoid(z), not their softmax
        np.testing.assert_array_equal(logits[..., 0], -logits[..., 1])
        foreground = 1.0 / (1.0 + np.exp(-logits[..., 1:]))
        ours = np.concatenate([1.0 - foreground, foreground], axis=-1)
    else:
        ours = np.exp(logits - logits.max(axis=-1, keepdims=True))
        ours = ours / ours.sum(axis=-1, keepdims=True)
    # The adapter runs a compiled replay of the model; float32 results depend on operation order (oneDNN and grappler
    # fuse and reorder ops in a graph), so no tolerance tighter than the model's own eager-vs-compiled disagreement
    # can be asked. On EfficientNetB0 + FPN both the model's own call and the adapter are 5.7e-5 off a float64
    # evaluation of the same weights (the compiled model call is exactly the adapter's logits).
    atol = max(1e-5, 2.0 * refs.round_off(q.image))
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=atol)
    if entry.output_stride == 1:  # predict itself, where no upsampling is involved
        np.testing.assert_allclose(predicted, expected, rtol=1e-4, atol=atol)


def check_logits_neither_vanish_nor_saturate(run: ZooRun, refs: References) -> None:
    probabilities = refs.probabilities(run.question.image)
    assert 0.2 < probabilities.max(axis=-1).mean() < 0.98
    assert (np.argmax(probabilities, axis=-1) == run.question.target).any() or probabilities.shape[-1] > 2


def check_every_method(entry: Entry, run: ZooRun, refs: References, state: Any) -> None:
    """Every method gives a finite, non-constant map (the CAMs at the default layer) or refuses with its reason;
    whatever ran or refused, the framework's global state is as it was."""
    assert set(run.results) | set(run.refused) == set(registry.available())
    for name, reason in run.refused.items():
        assert name in MAY_REFUSE and MAY_REFUSE[name] in reason, (name, reason)
    for name, result in run.results.items():
        assert result.heatmap.shape == entry.size, name
        assert np.isfinite(result.heatmap).all(), name
        assert np.ptp(result.heatmap) > 0, f"{name} gives a constant map on {entry.name}"
        if registry.get(name).is_cam:
            assert result.layer == run.adapter.default_layer
    assert refs.differences(state) == []
    assert "saliency" in run.results and "gradcam" in run.results


def check_grad_cam_equals_seg_grad_cam(run: ZooRun, refs: References) -> None:
    """The engine's Grad-CAM (region-mean score, alpha = mean gradient) equals Seg-Grad-CAM / (|M'| h w) at three
    layers spread over the depth."""
    adapter, q = run.adapter, run.question
    layers = refs.cam_layers(adapter)
    assert len(layers) == 3
    reference = refs.seg_grad_cam(layers, q)
    cam = registry.get("gradcam").explain(adapter, q.image, q.region, q.target, params={"layer": layers[-1]})
    cells = int(q.region[q.stride // 2 :: q.stride, q.stride // 2 :: q.stride].sum())
    for layer in layers:
        native = cam.per_layer.native(layer)
        expected = reference[layer] / (cells * native.shape[0] * native.shape[1])
        assert native.shape == expected.shape, layer
        np.testing.assert_allclose(native, expected, rtol=2e-3, atol=2e-4 * max(np.abs(expected).max(), 1e-12),
                                   err_msg=layer)  # fmt: skip


def check_completeness_and_efficiency(run: ZooRun) -> None:
    ig = run.results["integrated_gradients"]
    gap = ig.score - ig.baseline_score
    error = abs(float(ig.heatmap.sum()) - gap)
    assert error <= ZOO_PARAMS["integrated_gradients"]["tolerance"] * abs(gap) + 1e-4, ig.diagnostics
    np.testing.assert_allclose(ig.diagnostics["completeness_error"], error / abs(gap), rtol=1e-3, atol=1e-6)
    shap = run.results["shap"]
    np.testing.assert_allclose(float(shap.heatmap.sum()), shap.score - shap.baseline_score, rtol=1e-4, atol=1e-5)
    if "deep_shap" in run.results:
        deep = run.results["deep_shap"]
        np.testing.assert_allclose(float(deep.heatmap.sum()), deep.score - deep.baseline_score, rtol=2e-3,
                                   atol=1e-4)  # fmt: skip


def check_default_cam_layer(run: ZooRun) -> None:
    """The default CAM layer is outside the classifier head, mixes spatial context, is a rectified feature map or a
    token layer where the model has one, and is the last such layer; its Grad-CAM++ map is not blank (the failure a
    pre-activation default gives)."""
    adapter = run.adapter
    by_name = {layer.name: layer for layer in adapter.layers}
    head = classifier_layers(adapter.layers, adapter.num_classes)
    chosen = by_name[adapter.default_layer]
    assert chosen.name not in head and mixes_spatial_context(chosen)

    def eligible(layer: Any) -> bool:
        return layer.name not in head and mixes_spatial_context(layer) and (layer.activated or layer.tokens)

    if any(eligible(layer) for layer in adapter.layers):
        assert eligible(chosen)
        later = adapter.conv_layers[adapter.conv_layers.index(chosen.name) + 1 :]
        assert not [name for name in later if eligible(by_name[name])]
    else:
        later = adapter.conv_layers[adapter.conv_layers.index(chosen.name) + 1 :]
        assert not [name for name in later if name not in head and mixes_spatial_context(by_name[name])]
    if "gradcam++" in run.results:
        assert np.ptp(run.results["gradcam++"].heatmap) > 0


def check_the_app_fast_path(run: ZooRun, tmp_path: Path) -> None:
    """The app's explain callback answers every fast method on the model, without a background job."""
    from dash import no_update

    from dashboard.callbacks import explain, selection
    from dashboard.state.resources import methods
    from dashboard.state.store import DiskStore, new_session_id
    from dashboard.usecases import analysis

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
