"""The adapter: its score against numpy on hand-made arrays, logits detection, model shapes and bad input."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from explainers import SegmentationAdapter, explain
from explainers.adapter import resample_region
from tests.explainers.tiny_models import box_region, structured_image, tiny_unet

RNG = np.random.default_rng(7)


def linear_head_model(
    size=(4, 6), classes=3, pool=1, activation=None, softmax_layer=False
) -> tuple[keras.Model, tuple]:
    """A 1x1 conv (hand-set weights) after optional average pooling: logits = avgpool(x/255) @ W + b."""
    weights = RNG.normal(size=(3, classes)).astype(np.float32)
    bias = RNG.normal(size=classes).astype(np.float32)
    inputs = keras.Input((*size, 3))
    x = keras.layers.AveragePooling2D(pool)(inputs) if pool > 1 else inputs
    head = keras.layers.Conv2D(classes, 1, activation=activation, name="head")
    out = head(x)
    if softmax_layer:
        out = keras.layers.Softmax()(out)
    head.set_weights([weights.reshape(1, 1, 3, classes), bias])
    return keras.Model(inputs, out), (weights, bias)


def numpy_logits(image: np.ndarray, weights, bias, pool: int = 1) -> np.ndarray:
    x = image.astype(np.float64) / 255.0
    if pool > 1:
        h, w, _ = x.shape
        x = x.reshape(h // pool, pool, w // pool, pool, 3).mean(axis=(1, 3))
    return x @ weights + bias


def test_score_equals_numpy_mean_logit_over_region():
    model, (weights, bias) = linear_head_model()
    adapter = SegmentationAdapter(model)
    images = RNG.integers(0, 256, (5, 4, 6, 3), dtype=np.uint8)
    region = np.array([[1, 0, 0, 0, 0, 1], [0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]], dtype=bool)
    expected = [numpy_logits(im, weights, bias)[..., 2][region].mean() for im in images]
    np.testing.assert_allclose(adapter.score(images, region, 2), expected, rtol=1e-5)


def test_score_on_a_coarser_output_grid_uses_the_nearest_resampled_region():
    model, (weights, bias) = linear_head_model(size=(4, 4), pool=2)
    adapter = SegmentationAdapter(model)
    image = RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    region = np.zeros((4, 4), dtype=bool)
    region[1, 1] = region[3, 1] = True  # output cell centres sample input pixels (1,1),(1,3),(3,1),(3,3)
    logits = numpy_logits(image, weights, bias, pool=2)[..., 0]
    np.testing.assert_allclose(adapter.score(image[None], region, 0)[0], (logits[0, 0] + logits[1, 0]) / 2, rtol=1e-5)


def test_seg_grad_cam_score_is_the_region_sum_and_the_seed_score_the_masked_average():
    """S = Seg-Grad-CAM's sum of logits / |M'| = the seed's global-average-pooled masked output * (H'W' / |M'|)."""
    model, (weights, bias) = linear_head_model(size=(4, 6))
    adapter = SegmentationAdapter(model)
    image = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    region = box_region((4, 6), 1, 1, 3, 4)
    logits = numpy_logits(image, weights, bias)[..., 1]
    score = adapter.score(image[None], region, 1)[0]
    np.testing.assert_allclose(score * region.sum(), logits[region].sum(), rtol=1e-5)
    np.testing.assert_allclose(score * region.sum() / region.size, (logits * region).mean(), rtol=1e-5)


def test_resample_region_nearest_and_small_regions_survive():
    region = np.zeros((8, 8), dtype=bool)
    region[0:4, 0:4] = True
    np.testing.assert_array_equal(resample_region(region, (2, 2)), [[True, False], [False, False]])
    click = np.zeros((8, 8), dtype=bool)
    click[0, 7] = True  # not a cell centre: nearest loses it, the fallback keeps the touched cell
    np.testing.assert_array_equal(resample_region(click, (2, 2)), [[False, True], [False, False]])


@pytest.mark.parametrize("kind", ["softmax_layer", "softmax_activation", "logits"])
def test_logits_are_reached_before_softmax(kind):
    model, (weights, bias) = linear_head_model(
        activation="softmax" if kind == "softmax_activation" else None, softmax_layer=kind == "softmax_layer"
    )
    adapter = SegmentationAdapter(model)
    image = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    region = np.ones((4, 6), dtype=bool)
    np.testing.assert_allclose(
        adapter.score(image[None], region, 1)[0], numpy_logits(image, weights, bias)[..., 1].mean(), rtol=1e-5
    )
    probabilities = adapter.predict(image)
    logits = numpy_logits(image, weights, bias)
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-6)


def test_single_channel_sigmoid_becomes_background_and_foreground():
    model, (weights, bias) = linear_head_model(classes=1, activation="sigmoid")
    adapter = SegmentationAdapter(model)
    assert adapter.class_names == ["background", "foreground"] and adapter.num_classes == 2
    image = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    region = np.ones((4, 6), dtype=bool)
    z = numpy_logits(image, weights, bias)[..., 0]
    np.testing.assert_allclose(adapter.score(image[None], region, 1)[0], z.mean(), rtol=1e-5)
    np.testing.assert_allclose(adapter.score(image[None], region, 0)[0], -z.mean(), rtol=1e-5)
    sig = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(adapter.predict(image), np.stack([1 - sig, sig], -1), rtol=1e-4, atol=1e-6)


def test_sigmoid_activation_layer_model():
    inputs = keras.Input((8, 8, 3))
    z = keras.layers.Conv2D(1, 3, padding="same", name="z")(inputs)
    model = keras.Model(inputs, keras.layers.Activation("sigmoid")(z))
    adapter = SegmentationAdapter(model)
    image = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    raw = keras.Model(inputs, z)(image[None].astype("float32") / 255).numpy()[0, ..., 0]
    np.testing.assert_allclose(adapter.score(image[None], np.ones((8, 8), bool), 1)[0], raw.mean(), rtol=1e-5)


def test_logits_layer_override():
    model = tiny_unet((16, 16))
    adapter = SegmentationAdapter(model, logits_layer="dec1")
    assert adapter.num_classes == 8  # dec1 has 8 channels
    with pytest.raises(ValueError, match="not a layer"):
        SegmentationAdapter(model, logits_layer="nope")


def test_conv_layers_in_order_including_nested_and_sequential():
    encoder = keras.Sequential(
        [
            keras.Input((8, 8, 4)),
            keras.layers.Conv2D(4, 3, padding="same", name="inner1"),
            keras.layers.DepthwiseConv2D(3, padding="same", name="inner2"),
        ],
        name="encoder",
    )
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="first")(inputs)
    x = encoder(x)
    x = keras.layers.SeparableConv2D(4, 3, padding="same", name="sep")(x)
    x = keras.layers.Conv2D(3, 1, activation="softmax", name="head")(x)
    adapter = SegmentationAdapter(keras.Model(inputs, x))
    assert adapter.conv_layers == ["first", "encoder/inner1", "encoder/inner2", "sep", "head"]
    image = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    result = explain(adapter, image, np.ones((8, 8), bool), 0, methods=["gradcam"])["gradcam"]
    assert set(result.per_layer) == set(adapter.conv_layers)


def test_nested_output_model_and_activation_maps_match_the_inner_layers():
    inner_in = keras.Input((8, 8, 3))
    inner = keras.Model(
        inner_in, keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="c")(inner_in), name="backbone"
    )
    head_in = keras.Input((8, 8, 5))
    head = keras.Model(head_in, keras.layers.Conv2D(2, 1, activation="softmax", name="cls")(head_in), name="head")
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, head(inner(inputs)))
    adapter = SegmentationAdapter(model)
    assert adapter.conv_layers == ["backbone/c", "head/cls"]
    image = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    _, layers = adapter.layer_gradients(image, np.ones((8, 8), bool), 1)
    np.testing.assert_allclose(
        layers["backbone/c"][0], inner(image[None].astype("float32") / 255).numpy()[0], rtol=1e-5
    )


def test_sequential_dynamic_size_non_square_and_coarse_output():
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a"),
            keras.layers.MaxPooling2D(4),
            keras.layers.Conv2D(3, 1, name="logits"),
        ]
    )
    adapter = SegmentationAdapter(model)
    assert adapter.input_size is None
    for size in [(16, 24), (32, 8)]:
        image = structured_image(size)
        region = box_region(size, 2, 2, 6, 6)
        assert adapter.output_shape_for(size) == (size[0] // 4, size[1] // 4)
        assert adapter.predict(image).shape == (*size, 3)
        result = explain(adapter, image, region, 2, methods=["gradcam", "saliency", "deep_shap"])
        assert all(r.heatmap.shape == size for r in result.values())


def test_bad_input_raises_clear_value_errors(adapter, image, region):
    with pytest.raises(ValueError, match="empty"):
        adapter.score(image[None], np.zeros(image.shape[:2], bool), 1)
    with pytest.raises(ValueError, match="region mask is"):
        adapter.score(image[None], np.ones((5, 5), bool), 1)
    with pytest.raises(ValueError, match="out of range"):
        adapter.score(image[None], region, 4)
    with pytest.raises(ValueError, match="out of range"):
        adapter.score(image[None], region, -1)
    with pytest.raises(ValueError, match="RGB"):
        adapter.predict(image[..., 0])
    with pytest.raises(ValueError, match="uint8"):
        adapter.predict(image.astype(np.float32))
    with pytest.raises(ValueError, match="model takes 32x32"):
        adapter.predict(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="Unknown attribution method"):
        explain(adapter, image, region, 1, methods=["nope"])
    with pytest.raises(ValueError, match="no parameter"):
        explain(adapter, image, region, 1, methods=["saliency"], params={"saliency": {"steps": 3}})


def test_unsupported_models_are_refused_with_the_reason():
    inputs = keras.Input((8, 8, 3))
    classifier = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(inputs)))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        SegmentationAdapter(classifier)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 1)

        def call(self, x):
            return self.conv(x)

    subclassed = Subclassed()
    subclassed(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="subclassed"):
        SegmentationAdapter(subclassed)
