"""Contrast questions ("why c rather than c'?") through the engine: the score, and identities the methods must keep.

The contrast score is mean over the region of z_c - z_c'. Its gradient, at the input or at any layer, is linear in the
class weights, so gradient maps of the contrast are the difference of the two classes' maps (saliency, gradient x
input, Integrated Gradients on the same path), and Grad-CAM of the contrast is ReLU(sum_k A_k mean(G_c - G_c'))
built from the two classes' layer gradients.
"""

from __future__ import annotations

import numpy as np
import pytest

from explainers import explain
from explainers.adapter import resample_region
from explainers.question import Question

TARGET, OTHER = 1, 2
FIXED_IG = {"steps": 16, "max_steps": 16, "tolerance": 1.0}  # no adaptive refinement: the same path for all scores


def test_contrast_score_is_the_mean_logit_difference_computed_with_numpy(any_adapter, image, region):
    adapter = any_adapter
    images = np.stack([image, image[::-1].copy(), np.zeros_like(image)])
    expected = []
    for one in images:
        logits = adapter.logits(one).astype(np.float64)
        cells = resample_region(region, logits.shape[:2])
        expected.append((logits[cells][:, TARGET] - logits[cells][:, OTHER]).mean())
    np.testing.assert_allclose(adapter.score(images, region, TARGET, contrast=OTHER), expected, rtol=1e-5, atol=1e-6)
    question = Question(region, TARGET, OTHER)
    np.testing.assert_allclose(adapter.score(images, question), expected, rtol=1e-5, atol=1e-6)
    difference = adapter.score(images, region, TARGET) - adapter.score(images, region, OTHER)
    np.testing.assert_allclose(adapter.score(images, region, TARGET, contrast=OTHER), difference, rtol=1e-5, atol=1e-6)


def test_contrast_equal_to_target_and_mixed_forms_are_value_errors(adapter, image, region):
    with pytest.raises(ValueError, match="must differ from the target"):
        adapter.score(image[None], region, TARGET, contrast=TARGET)
    with pytest.raises(ValueError, match="must differ from the target"):
        explain(adapter, image, region, TARGET, methods=["saliency"], contrast=TARGET)
    with pytest.raises(ValueError, match="out of range"):
        adapter.score(image[None], region, TARGET, contrast=adapter.num_classes)
    with pytest.raises(ValueError, match="not both"):
        adapter.score(image[None], Question(region, TARGET), TARGET)


def test_gradient_maps_of_a_contrast_are_the_difference_of_the_two_classes_maps(gradient_adapter, image, region):
    adapter = gradient_adapter
    methods = ["saliency", "gradient_x_input", "integrated_gradients"]
    params = {"integrated_gradients": FIXED_IG}
    contrast = explain(adapter, image, region, TARGET, methods=methods, params=params, contrast=OTHER)
    first = explain(adapter, image, region, TARGET, methods=methods, params=params)
    second = explain(adapter, image, region, OTHER, methods=methods, params=params)
    for name in methods:
        expected = first[name].heatmap.astype(np.float64) - second[name].heatmap
        scale = np.abs(expected).max()
        np.testing.assert_allclose(contrast[name].heatmap, expected, rtol=1e-4, atol=1e-5 * scale, err_msg=name)
        np.testing.assert_allclose(contrast[name].score, first[name].score - second[name].score, rtol=1e-5, atol=1e-6)


def test_integrated_gradients_is_complete_for_a_contrast_score(adapter, image, region):
    result = explain(adapter, image, region, TARGET, methods=["integrated_gradients"], contrast=OTHER)
    ig = result["integrated_gradients"]
    black = np.zeros_like(image)
    np.testing.assert_allclose(ig.baseline_score, adapter.score(black[None], region, TARGET, contrast=OTHER)[0],
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    delta = ig.score - ig.baseline_score
    assert abs(ig.heatmap.sum() - delta) <= 0.01 * abs(delta)


def test_shap_is_exactly_efficient_for_a_contrast_score(adapter, image, region):
    result = explain(
        adapter, image, Question(region, TARGET, OTHER), methods=["shap"], params={"shap": {"max_evals": 300}}
    )
    shap_map = result["shap"]
    np.testing.assert_allclose(shap_map.score, adapter.score(image[None], region, TARGET, contrast=OTHER)[0], rtol=1e-5)
    np.testing.assert_allclose(shap_map.heatmap.sum(), shap_map.score - shap_map.baseline_score, rtol=1e-3, atol=1e-5)


def test_layer_gradients_of_a_contrast_are_the_difference(gradient_adapter, image, region):
    adapter = gradient_adapter
    score, layers = adapter.layer_gradients(image, region, TARGET, contrast=OTHER)
    score_c, layers_c = adapter.layer_gradients(image, region, TARGET)
    score_o, layers_o = adapter.layer_gradients(image, region, OTHER)
    np.testing.assert_allclose(score, score_c - score_o, rtol=1e-5, atol=1e-6)
    for name, (activation, gradient) in layers.items():
        np.testing.assert_allclose(activation, layers_c[name][0], rtol=1e-6)
        expected = layers_c[name][1].astype(np.float64) - layers_o[name][1]
        np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-6 * (np.abs(expected).max() + 1e-12))


@pytest.mark.parametrize("position", [0, 1, -1])
def test_gradcam_of_a_contrast_is_seg_grad_cam_on_the_contrast_score(gradient_adapter, image, region, position):
    """Grad-CAM of "c rather than c'" = ReLU(sum_k A_k * mean_ij(G_c - G_c')), from the two classes' gradients."""
    adapter = gradient_adapter
    layer = adapter.conv_layers[position]
    result = explain(adapter, image, region, TARGET, methods=["gradcam"], params={"gradcam": {"layer": layer}},
                     contrast=OTHER)["gradcam"]  # fmt: skip
    _, layers_c = adapter.layer_gradients(image, region, TARGET)
    _, layers_o = adapter.layer_gradients(image, region, OTHER)
    activation = layers_c[layer][0].astype(np.float64)
    weights = (layers_c[layer][1].astype(np.float64) - layers_o[layer][1]).mean(axis=(0, 1))
    expected = np.maximum(activation @ weights, 0.0)
    native = result.per_layer.native(layer)
    np.testing.assert_allclose(native, expected, rtol=1e-4, atol=1e-5 * (np.abs(expected).max() + 1e-12))
    plain = explain(adapter, image, region, TARGET, methods=["gradcam"], params={"gradcam": {"layer": layer}})
    assert not np.allclose(native, plain["gradcam"].per_layer.native(layer))


def test_caches_are_keyed_by_the_question(adapter, image, region):
    adapter.clear_cache()
    plain = adapter.image_gradient(image, region, TARGET)[2]
    contrast = adapter.image_gradient(image, region, TARGET, contrast=OTHER)[2]
    assert not np.allclose(plain, contrast)  # a kept plain result is not served for the contrast question
    again = adapter.image_gradient(image, Question(region, TARGET, OTHER, label="box"))[2]
    assert again is contrast  # the same question (the label is not part of it) is served from the cache
