"""Every class at once (`explainers.overview`): one request, one forward pass, the same maps as one `explain` per class.

Each class's attribution is compared with `explain` on its whole-class region computed afresh (the adapter's cache
cleared, so nothing is shared), and Grad-CAM with a numpy Grad-CAM from the raw layer activations and gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from explainers import SegmentationAdapter, explain
from explainers.cam import cam_explainers
from explainers.overview import class_questions, explain_classes


def _labels(adapter: SegmentationAdapter, image: np.ndarray) -> np.ndarray:
    return adapter.predict(image).argmax(-1)


def _close(actual: np.ndarray, expected: np.ndarray, message: str) -> None:
    scale = float(np.abs(expected).max()) or 1.0
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale, err_msg=message)


def test_every_predicted_class_gets_its_whole_region(gradient_adapter, image):
    labels = _labels(gradient_adapter, image)
    questions = class_questions(gradient_adapter, image)
    assert list(questions) == sorted(int(c) for c in np.unique(labels))
    assert len(questions) >= 2, "the test image should be predicted as several classes"
    for target, question in questions.items():
        assert question.target == target and question.contrast is None
        np.testing.assert_array_equal(question.region, labels == target)


@pytest.mark.parametrize("method", list(cam_explainers()))
def test_cam_overview_equals_one_explain_per_class_at_every_layer(gradient_adapter, image, method):
    adapter = gradient_adapter
    adapter.clear_cache()
    overview = explain_classes(adapter, image, method)
    adapter.clear_cache()
    questions = class_questions(adapter, image)
    assert list(overview) == list(questions)
    for target, question in questions.items():
        alone = explain(adapter, image, question, methods=[method])[method]
        adapter.clear_cache()
        got = overview[target]
        assert got.method == method and got.layer == alone.layer == adapter.default_layer
        np.testing.assert_allclose(got.score, alone.score, rtol=1e-5, atol=1e-6)
        assert set(got.per_layer) == set(alone.per_layer) == set(adapter.conv_layers)
        for layer in adapter.conv_layers:
            _close(got.per_layer[layer], alone.per_layer[layer], f"{method} class {target} layer {layer}")
        _close(got.heatmap, alone.heatmap, f"{method} class {target}")


def test_one_layer_overview_equals_a_numpy_grad_cam_per_class(gradient_adapter, image):
    adapter = gradient_adapter
    layer = adapter.conv_layers[len(adapter.conv_layers) // 2]
    overview = explain_classes(adapter, image, "gradcam", layer=layer, params={"all_layers": False})
    for target, question in class_questions(adapter, image).items():
        score, pairs = adapter.layer_gradients(image, question)
        activation, gradient = (np.asarray(t, dtype=np.float64) for t in pairs[layer])
        expected = np.maximum((activation * gradient.mean(axis=(0, 1))).sum(axis=-1), 0.0)
        got = overview[target]
        assert set(got.per_layer) == {layer} and got.layer == layer
        _close(got.per_layer.native(layer), expected, f"class {target}")
        np.testing.assert_allclose(got.score, score, rtol=1e-5, atol=1e-6)


class _Counting:
    """A backend proxy that counts calls of the CAM members (and can hide the shared one)."""

    def __init__(self, backend: Any, shared: bool = True) -> None:
        self._backend, self._shared = backend, shared
        self.calls = {"layer_maps": 0, "fast_pass": 0, "layer_maps_shared": 0}

    def __getattr__(self, name: str) -> Any:
        if name == "layer_maps_shared" and not self._shared:
            raise AttributeError(name)
        value = getattr(self._backend, name)
        if name in self.calls:

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls[name] += 1
                return value(*args, **kwargs)

            return counted
        return value


@pytest.mark.parametrize("shared", [True, False])
def test_the_overview_is_one_shared_pass_or_one_pass_per_class_without_it(gradient_adapter, image, shared):
    counting = _Counting(gradient_adapter.backend, shared=shared)
    adapter = gradient_adapter.with_backend(counting)
    overview = explain_classes(adapter, image, "gradcam")
    classes = len(class_questions(gradient_adapter, image))
    per_question = counting.calls["layer_maps"] + counting.calls["fast_pass"]
    assert (per_question, counting.calls["layer_maps_shared"]) == ((0, 1) if shared else (classes, 0))
    reference = explain_classes(gradient_adapter, image, "gradcam")
    for target, attribution in overview.items():
        _close(attribution.heatmap, reference[target].heatmap, f"class {target}")
    # The results are kept: each class's question asked alone is now a lookup, with no new pass.
    before = dict(counting.calls)
    for question in class_questions(adapter, image).values():
        explain(adapter, image, question, methods=["gradcam"])
    assert counting.calls == before


def test_torch_falls_back_to_one_backward_per_class_where_vmap_fails(monkeypatch, image):
    torch = pytest.importorskip("torch")
    from tests.explainers.conftest import backend_adapter

    adapter = backend_adapter("torch")
    adapter.clear_cache()
    batched = explain_classes(adapter, image, "hirescam")
    grad = torch.autograd.grad

    def no_vmap(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("Batching rule not implemented")
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", no_vmap)
    adapter.clear_cache()
    looped = explain_classes(adapter, image, "hirescam")
    adapter.clear_cache()
    for target in batched:
        for layer in adapter.conv_layers:
            _close(looped[target].per_layer[layer], batched[target].per_layer[layer], f"class {target} {layer}")


def test_a_gradient_method_overview_equals_explain_per_class(gradient_adapter, image):
    overview = explain_classes(gradient_adapter, image, "saliency")
    for target, question in class_questions(gradient_adapter, image).items():
        alone = explain(gradient_adapter, image, question, methods=["saliency"])["saliency"]
        _close(overview[target].heatmap, alone.heatmap, f"class {target}")


def test_bad_overview_requests_are_clear_value_errors(adapter, image):
    labels = _labels(adapter, image)
    only_background = np.zeros_like(labels)
    with pytest.raises(ValueError, match="No pixel of the image is predicted as “a”"):
        explain_classes(adapter, image, "gradcam", classes=[1], labels=only_background)
    with pytest.raises(ValueError, match="out of range"):
        explain_classes(adapter, image, "gradcam", classes=[adapter.num_classes])
    with pytest.raises(ValueError, match="has no layers"):
        explain_classes(adapter, image, "saliency", layer=adapter.conv_layers[0])
    with pytest.raises(ValueError, match="not a conv layer"):
        explain_classes(adapter, image, "gradcam", layer="no_such_layer")
    with pytest.raises(ValueError, match="must match"):
        class_questions(adapter, image, labels=labels[:-1])
    chosen = explain_classes(adapter, image, "gradcam", classes=[int(labels[0, 0])])
    assert list(chosen) == [int(labels[0, 0])]


def test_any_number_of_classes_gives_each_its_own_maps(gradient_adapter, image):
    """Keras pads the shared step to a few traced sizes (repeating a question): every subset still gets its own."""
    adapter = gradient_adapter
    present = list(class_questions(adapter, image))
    for count in range(1, len(present) + 1):
        chosen = present[-count:]
        adapter.clear_cache()
        overview = explain_classes(adapter, image, "gradcam", classes=chosen)
        assert list(overview) == chosen
        for target in chosen:
            adapter.clear_cache()
            alone = explain(adapter, image, class_questions(adapter, image)[target], methods=["gradcam"])["gradcam"]
            _close(overview[target].heatmap, alone.heatmap, f"{count} classes, class {target}")
            np.testing.assert_allclose(overview[target].score, alone.score, rtol=1e-5, atol=1e-6)
