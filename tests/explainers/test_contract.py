"""One contract every registered attribution method must meet, on a tiny U-Net served by every backend."""

from __future__ import annotations

import re

import numpy as np
import pytest

from explainers import SegmentationAdapter, registry
from explainers.attribution import Attribution
from explainers.backends.base import GradientsUnavailable
from tests.explainers.conftest import BACKENDS, backend_adapter

# Cheap parameters so the contract runs fast; the defaults are exercised by the property tests.
FAST = {
    "smoothgrad": {"samples": 8},
    "integrated_gradients": {"steps": 16, "max_steps": 16},
    "shap": {"max_evals": 200},
}
# Grad-CAM++'s closed-form alpha is not homogeneous in the gradient, so scaling the logits does not scale its map.
NOT_HOMOGENEOUS = {"gradcam++"}


def run(adapter: SegmentationAdapter, name: str, image, region, target: int = 1) -> Attribution:
    explainer = registry.get(name)
    if explainer.requires_gradients and not adapter.gradients:  # a black box: refused, with the backend's reason
        with pytest.raises(GradientsUnavailable, match=re.escape(adapter.why_no_gradients)):
            explainer.explain(adapter, image, region, target, params=FAST.get(name))
        pytest.skip(f"{name} needs gradients: refused with the reason on the {adapter.framework} black box")
    return explainer.explain(adapter, image, region, target, params=FAST.get(name))


@pytest.mark.parametrize("name", registry.available())
def test_shape_dtype_and_finite(any_adapter, image, region, name):
    adapter = any_adapter
    result = run(adapter, name, image, region)
    assert result.method == name
    assert result.heatmap.shape == image.shape[:2]
    assert result.heatmap.dtype == np.float32
    assert np.isfinite(result.heatmap).all()
    assert result.seconds > 0
    np.testing.assert_allclose(result.score, adapter.score(image[None], region, 1)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", registry.available())
def test_deterministic(any_adapter, image, region, name):
    first = run(any_adapter, name, image, region).heatmap
    any_adapter.clear_cache()
    second = run(any_adapter, name, image, region).heatmap
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("name", sorted(set(registry.available()) - NOT_HOMOGENEOUS))
def test_maps_are_raw_not_normalised(image, region, name, backend):
    """Scaling the logits by 3 scales every raw map by 3; a normalised map would not change."""
    base, scaled = backend_adapter(backend), backend_adapter(backend, logit_scale=3.0)
    plain, tripled = run(base, name, image, region).heatmap, run(scaled, name, image, region).heatmap
    assert np.abs(plain).max() > 0
    np.testing.assert_allclose(tripled, 3.0 * plain, rtol=2e-3, atol=2e-4 * np.abs(plain).max())


@pytest.mark.parametrize("name", registry.available())
def test_metadata_matches_the_kind_of_method(any_adapter, image, region, name):
    adapter = any_adapter
    explainer = registry.get(name)
    result = run(adapter, name, image, region)
    assert explainer.label and explainer.paper and explainer.family in {"cam", "gradient", "shap"}
    if explainer.is_cam:
        assert set(result.per_layer) == set(adapter.conv_layers)
        assert result.layer == adapter.default_layer
        np.testing.assert_array_equal(result.heatmap, result.per_layer[result.layer])
        assert all(m.shape == image.shape[:2] and (m >= 0).all() for m in result.per_layer.values())
    else:
        assert result.per_layer is None and result.layer is None
    assert (result.baseline_score is not None) == explainer.additive


def test_explain_validates_once_and_runs_each_method_without_checking_again(adapter, image, region, monkeypatch):
    """`explain` checks the image, question and parameters once for all methods, then runs each method's `run`;
    the per-method public entry (which would check everything again) is not called."""
    from explainers import explain
    from explainers.base import Explainer

    def checks_again(*args, **kwargs):
        raise AssertionError("explain re-validated through Explainer.explain")

    monkeypatch.setattr(Explainer, "explain", checks_again)
    results = explain(adapter, image, region, 1, methods=["gradcam", "saliency"])
    assert list(results) == ["gradcam", "saliency"]
    with pytest.raises(ValueError, match="Target class 99"):  # the one pass still refuses bad input
        explain(adapter, image, region, 99, methods=["gradcam"])
