"""The app's error and overview use cases on a PyTorch model (the demo U-Net's torch twin): a bundled sample with its
ground truth, "explain this error" computed and stored with its contrast, and the every-class overview."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from PIL import Image

from dashboard.usecases import analysis, errors, overview
from explainers import explain
from models import CLASS_NAMES, SAMPLES_DIR

SAMPLE = "mushroom_02.png"


@pytest.fixture(scope="module")
def torch_adapter():
    pytest.importorskip("torch")
    from explainers.torch_loading import load_torch_adapter
    from models.torch_unet import TORCH_WEIGHTS_PATH

    return load_torch_adapter("models.torch_unet:TorchUNet", TORCH_WEIGHTS_PATH, CLASS_NAMES)


@pytest.fixture()
def loaded(store, session, torch_adapter):
    image = np.asarray(Image.open(SAMPLES_DIR / SAMPLE).convert("RGB"))
    ref = analysis.ingest_image(store, session, torch_adapter, image, name=SAMPLE)
    data = (SAMPLES_DIR / "ground_truth" / SAMPLE).read_bytes()
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    truth_ref = errors.ingest_truth(store, session, ref, uri, SAMPLE, CLASS_NAMES, max_bytes=1 << 20)
    return image, ref, truth_ref


def test_explain_this_error_on_a_torch_model_scores_the_contrast(store, session, torch_adapter, loaded):
    image, ref, truth_ref = loaded
    predicted, truth = errors.truth_maps(store, session, ref, truth_ref)
    np.testing.assert_array_equal(truth, np.asarray(Image.open(SAMPLES_DIR / "ground_truth" / SAMPLE)))
    choice = errors.error_choices(predicted, truth, CLASS_NAMES)[0]["value"]
    question = errors.explain_error_question(predicted, truth, choice, CLASS_NAMES)
    region = analysis.ingest_region(store, session, ref["key"], question.region, "error", label=question.label)
    asked = {"image": ref["key"], "region": region["key"], "target": question.target, "contrast": question.contrast,
             "label": question.label}  # fmt: skip
    summaries = analysis.compute(torch_adapter, store, session, asked, ["gradcam", "saliency"])
    expected = torch_adapter.score(image[None], question.region, question.target, contrast=question.contrast)[0]
    for summary in summaries.values():
        np.testing.assert_allclose(summary["score"], expected, rtol=1e-5, atol=1e-6)
    assert analysis.engine_question(store, session, asked) == question


def test_every_class_overview_on_a_torch_model_equals_explain_per_class(store, session, torch_adapter, loaded):
    image, ref, _ = loaded
    entries = overview.compute_overview(torch_adapter, store, session, ref, "gradcam")
    labels = torch_adapter.predict(image).argmax(-1)
    assert [q["target"] for q, _ in entries] == sorted(int(c) for c in np.unique(labels))
    torch_adapter.clear_cache()
    for question, summary in entries:
        target = question["target"]
        alone = explain(torch_adapter, image, labels == target, target, methods=["gradcam"])["gradcam"]
        scale = float(np.abs(alone.heatmap).max()) or 1.0
        # Stored maps are compact (float16 over the map's largest magnitude): equal to 2^-11 of it.
        stored = np.asarray(analysis.heatmap_of(summary), dtype=np.float64)
        np.testing.assert_allclose(stored, alone.heatmap, rtol=0, atol=scale * 2**-10)
