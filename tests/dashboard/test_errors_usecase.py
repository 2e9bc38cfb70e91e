"""The errors use case: a ground truth uploaded for the shown image, IoU and error counts against numpy, the error
regions exact, "explain this error" as the engine's question, and the refusals."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from dashboard.usecases import analysis, errors

NAMES = ("background", "cap", "stem")


def data_uri(labels: np.ndarray, mode: str = "L") -> str:
    """An indexed (greyscale) PNG of class indices as a dcc.Upload data URI."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(labels, dtype=np.uint8), mode=mode).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def wrong_truth(predicted: np.ndarray) -> np.ndarray:
    """The prediction with two blocks relabelled: known false positives and negatives of several classes."""
    truth = predicted.copy()
    truth[2:10, 3:12] = (predicted[2:10, 3:12] + 1) % len(NAMES)
    truth[20:28, 18:30] = (predicted[20:28, 18:30] + 2) % len(NAMES)
    return truth


@pytest.fixture()
def loaded(store, session, adapter, image):
    ref = analysis.ingest_image(store, session, adapter, image, name="tiny")
    predicted = np.asarray(store.get(session, "labels", ref["key"])).astype(np.int64)
    return ref, predicted


def test_uploaded_truth_gives_iou_and_error_counts_equal_to_numpy(store, session, loaded):
    ref, predicted = loaded
    truth = wrong_truth(predicted)
    truth_ref = errors.ingest_truth(store, session, ref, data_uri(truth), "gt.png", NAMES, max_bytes=1 << 20)
    assert truth_ref["image"] == ref["key"] and truth_ref["form"] == "indexed" and truth_ref["void"] == 0
    got_predicted, got_truth = errors.truth_maps(store, session, ref, truth_ref)
    np.testing.assert_array_equal(got_truth, truth)
    rows = errors.error_rows(got_predicted, got_truth, NAMES)
    for row in rows:
        c = row["class"]
        tp = int(((predicted == c) & (truth == c)).sum())
        fp = int(((predicted == c) & (truth != c)).sum())
        fn = int(((predicted != c) & (truth == c)).sum())
        assert (row["tp"], row["fp"], row["fn"], row["name"]) == (tp, fp, fn, NAMES[c])
        assert row["iou"] == pytest.approx(tp / (tp + fp + fn))
    present = set(np.unique(predicted)) | set(np.unique(truth))
    assert {row["class"] for row in rows} == present


def test_error_regions_are_exact_and_listed_largest_first(loaded):
    _, predicted = loaded
    truth = wrong_truth(predicted)
    options = errors.error_choices(predicted, truth, NAMES)
    sizes = [int(option["label"].rsplit("(", 1)[1].split()[0]) for option in options]
    assert sizes == sorted(sizes, reverse=True) and all(sizes)
    for option in options:
        kind, c = errors.parse_choice(option["value"], len(NAMES))
        mask, label = errors.error_region(predicted, truth, option["value"], NAMES)
        expected = (predicted == c) & (truth != c) if kind == "false_positive" else (truth == c) & (predicted != c)
        np.testing.assert_array_equal(mask, expected)
        assert int(mask.sum()) == sizes[options.index(option)] and label == f"{kind.replace('_', '-')}({c})"
        assert option["label"].startswith(f"{errors.KIND_TEXT[kind]} of {NAMES[c]} (")


def test_explain_this_error_is_the_engine_s_error_question(loaded):
    _, predicted = loaded
    truth = wrong_truth(predicted)
    for option in errors.error_choices(predicted, truth, NAMES):
        kind, c = errors.parse_choice(option["value"], len(NAMES))
        question = errors.explain_error_question(predicted, truth, option["value"], NAMES)
        region = errors.error_region(predicted, truth, option["value"], NAMES)[0]
        np.testing.assert_array_equal(question.region, region)
        if kind == "false_positive":
            majority = np.bincount(truth[region], minlength=len(NAMES)).argmax()
            assert (question.target, question.contrast) == (c, majority)
        else:
            majority = np.bincount(predicted[region], minlength=len(NAMES)).argmax()
            assert (question.target, question.contrast) == (majority, c)


def test_bad_ground_truths_and_empty_errors_are_refused_with_a_reason(store, session, loaded):
    ref, predicted = loaded
    with pytest.raises(ValueError, match="another shape"):
        errors.ingest_truth(store, session, ref, data_uri(predicted[:, :20]), "gt.png", NAMES, max_bytes=1 << 20)
    painted = np.zeros((*predicted.shape, 3), dtype=np.uint8)
    painted[0, 0] = (1, 2, 3)
    with pytest.raises(ValueError, match="not class colours"):
        errors.ingest_truth(store, session, ref, data_uri(painted, "RGB"), "gt.png", NAMES, max_bytes=1 << 20)
    with pytest.raises(ValueError, match="class indices 7"):
        errors.ingest_truth(store, session, ref, data_uri(np.full_like(predicted, 7)), "gt", NAMES, max_bytes=1 << 20)
    with pytest.raises(ValueError, match="Load an image first"):
        errors.ingest_truth(store, session, None, data_uri(predicted), "gt.png", NAMES, max_bytes=1 << 20)
    with pytest.raises(ValueError, match="Upload the ground truth"):
        errors.truth_maps(store, session, ref, {"key": "x", "image": "another image"})
    right = predicted.copy()
    c = int(predicted[0, 0])
    with pytest.raises(ValueError, match="has no false positives in this image: nothing to select"):
        errors.error_region(predicted, right, errors.choice_value("false_positive", c), NAMES)
    with pytest.raises(ValueError, match="nothing to explain"):
        errors.explain_error_question(predicted, right, errors.choice_value("false_negative", c), NAMES)
    with pytest.raises(ValueError, match="Pick one of the listed"):
        errors.error_region(predicted, right, None, NAMES)
    assert errors.error_choices(predicted, right, NAMES) == []
