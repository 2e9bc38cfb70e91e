"""Tests of the committed demo model (models/mushroom_unet.keras) on the committed samples (assets/samples)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from models import CLASS_NAMES, DEMO_MODEL_PATH, METRICS_PATH, SAMPLES_DIR, load_demo_model

SAMPLE_NAMES = [f"mushroom_{i:02d}.png" for i in range(1, 13)]


@pytest.fixture(scope="module")
def model():
    return load_demo_model()


@pytest.fixture(scope="module")
def samples():
    images = np.stack([np.asarray(Image.open(SAMPLES_DIR / n).convert("RGB")) for n in SAMPLE_NAMES])
    masks = np.stack([np.asarray(Image.open(SAMPLES_DIR / "ground_truth" / n)) for n in SAMPLE_NAMES])
    return images, masks


@pytest.fixture(scope="module")
def predictions(model, samples):
    images, _ = samples
    return np.asarray(model.predict_on_batch(images.astype(np.float32) / 255.0))


def test_files_exist_and_are_small():
    assert DEMO_MODEL_PATH.is_file()
    assert DEMO_MODEL_PATH.stat().st_size < 10 * 1024 * 1024
    for n in SAMPLE_NAMES:
        assert (SAMPLES_DIR / n).is_file() and (SAMPLES_DIR / "ground_truth" / n).is_file()


def test_samples_format(samples):
    images, masks = samples
    assert images.shape == (12, 128, 128, 3) and images.dtype == np.uint8
    assert masks.shape == (12, 128, 128) and masks.dtype == np.uint8
    assert masks.max() < len(CLASS_NAMES)
    assert set(np.unique(masks).tolist()) == set(range(len(CLASS_NAMES)))


def test_model_structure(model):
    assert tuple(model.input_shape) == (None, 128, 128, 3)
    assert tuple(model.output_shape) == (None, 128, 128, len(CLASS_NAMES))
    assert model.get_layer("logits").get_config()["activation"] == "linear"
    assert model.layers[-1].name == "probabilities"
    assert 100_000 <= model.count_params() <= 300_000


def test_outputs_are_probabilities(model, samples):
    images, _ = samples
    out = np.asarray(model.predict_on_batch(images[:1].astype(np.float32) / 255.0))
    assert out.shape == (1, 128, 128, len(CLASS_NAMES))
    assert np.all(out >= 0)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-4)


def test_predicts_all_six_classes(predictions):
    assert set(np.unique(predictions.argmax(-1)).tolist()) == set(range(len(CLASS_NAMES)))


def test_iou_on_samples(predictions, samples):
    _, masks = samples
    pred = predictions.argmax(-1)
    ious = []
    for c in range(len(CLASS_NAMES)):
        inter = np.sum((pred == c) & (masks == c))
        union = np.sum((pred == c) | (masks == c))
        ious.append(inter / union)
    assert np.mean(ious) >= 0.7, dict(zip(CLASS_NAMES, np.round(ious, 3), strict=True))


def test_committed_metrics_are_reproduced_by_the_committed_model(model):
    """The held-out figures in the metrics file come from this model: re-evaluating its first 24 held-out images (same
    generator, same seed) gives per-class IoUs close to the committed ones over 200."""
    from models.evaluate import evaluate_model

    metrics = json.loads(METRICS_PATH.read_text())
    fresh = evaluate_model(model, n=24, seed=metrics["eval"]["seed"])
    assert set(metrics["per_class_iou"]) == set(CLASS_NAMES) == set(fresh["per_class_iou"])
    assert metrics["mean_iou"] >= 0.85
    assert abs(fresh["mean_iou"] - metrics["mean_iou"]) < 0.05, (fresh["mean_iou"], metrics["mean_iou"])
