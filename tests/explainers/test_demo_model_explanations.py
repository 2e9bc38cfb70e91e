"""Every method on the shipped demo model (trained, so the properties are checked where users meet them)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from explainers import SegmentationAdapter, explain, registry
from models import CLASS_NAMES, SAMPLES_DIR, load_demo_model


@pytest.fixture(scope="module")
def demo():
    model = load_demo_model()
    adapter = SegmentationAdapter(model, class_names=list(CLASS_NAMES))
    image = np.asarray(Image.open(sorted(SAMPLES_DIR.glob("*.png"))[0]).convert("RGB"))
    predicted = adapter.predict(image).argmax(-1)
    target = CLASS_NAMES.index("cap")
    return model, adapter, image, predicted == target, target


def test_adapter_finds_the_logits_before_the_softmax_and_every_conv_layer(demo):
    model, adapter, image, region, _ = demo
    assert adapter.logits_source.strip == "softmax_layer"
    assert adapter.num_classes == len(CLASS_NAMES) and adapter.input_size == (128, 128)
    conv_types = (keras.layers.Conv2D, keras.layers.Conv2DTranspose)
    # every conv, a conv -> BN -> ReLU block's conv replaced by its ReLU (the block's rectified feature maps)
    block_of = {}  # conv name -> the ReLU after its BatchNorm
    for layer in model.layers:
        norm = layer.input._keras_history.operation if isinstance(layer, keras.layers.ReLU) else None
        if isinstance(norm, keras.layers.BatchNormalization):
            block_of[norm.input._keras_history.operation.name] = layer.name
    listed = [block_of.get(layer.name, layer.name) for layer in model.layers if isinstance(layer, conv_types)]
    assert adapter.conv_layers == listed and len(block_of) == 14 and len(listed) == 18
    conv = next(iter(block_of))
    with pytest.raises(ValueError, match=f"'{conv}' is listed as its rectified output '{block_of[conv]}'"):
        explain(adapter, image, region, 1, methods=["gradcam"], params={"gradcam": {"layer": conv}})
    assert adapter.default_layer == "dec1_relu2"  # the last rectified 3x3 block output, not the pre-BN conv
    np.testing.assert_allclose(adapter.predict(image), model(image[None] / 255.0)[0].numpy(), atol=1e-5)
    assert region.sum() > 50


def test_every_method_runs_on_the_demo_model(demo):
    _, adapter, image, region, target = demo
    results = explain(adapter, image, region, target, methods=registry.available())
    for name, result in results.items():
        assert result.heatmap.shape == (128, 128) and np.isfinite(result.heatmap).all(), name
        assert np.abs(result.heatmap).max() > 0, name


def test_integrated_gradients_completeness_on_the_demo_model(demo):
    _, adapter, image, region, target = demo
    result = explain(adapter, image, region, target, methods=["integrated_gradients"])["integrated_gradients"]
    black = np.zeros_like(image)
    delta = adapter.score(image[None], region, target)[0] - adapter.score(black[None], region, target)[0]
    assert abs(result.heatmap.sum() - delta) <= 0.01 * abs(delta)
    assert result.diagnostics["steps_used"] >= 64


def test_randomized_demo_model_gives_different_maps(demo):
    model, adapter, image, region, target = demo
    clone = keras.models.clone_model(model)
    rng = np.random.default_rng(0)
    clone.set_weights([rng.normal(0, np.std(w) + 0.05, size=w.shape).astype(w.dtype) for w in model.get_weights()])
    randomized = SegmentationAdapter(clone, class_names=list(CLASS_NAMES))
    layer = adapter.conv_layers[-2]
    for name, params in [("gradcam", {"layer": layer}), ("saliency", {})]:
        a = explain(adapter, image, region, target, methods=[name], params={name: params})[name].heatmap
        b = explain(randomized, image, region, target, methods=[name], params={name: params})[name].heatmap
        rho = spearmanr(a.ravel(), b.ravel()).statistic
        # A NaN rho means the randomized map is constant (e.g. all-zero ReLU CAM): changed as well.
        assert np.abs(a).max() > 0 and (not np.isfinite(rho) or rho < 0.5), (name, rho)
