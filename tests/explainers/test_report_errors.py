"""The batch report's errors section: counts against numpy, the largest error found, explained and recorded in full."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explainers.errors import error_question
from explainers.question import Question
from explainers.report import Case, CaseSource, run_report
from explainers.report.cli import parser
from explainers.report.errors import TruthImage, error_counts, largest_false_positive
from tests.explainers.tiny_models import structured_image

NUM_CLASSES = 4


def _item(name: str, predicted: np.ndarray, truth: np.ndarray) -> TruthImage:
    return TruthImage(name, np.zeros((*truth.shape, 3), np.uint8), truth, predicted)


def _random_pair(seed: int, shape: tuple[int, int] = (9, 11)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, NUM_CLASSES, shape)
    predicted = np.where(rng.random(shape) < 0.7, truth, rng.integers(0, NUM_CLASSES, shape))
    return predicted, truth


def test_error_counts_over_several_images_equal_a_numpy_count():
    pairs = [_random_pair(seed) for seed in range(3)]
    counts = error_counts([_item(str(i), p, t) for i, (p, t) in enumerate(pairs)], NUM_CLASSES)
    predicted = np.concatenate([p.ravel() for p, _ in pairs])
    truth = np.concatenate([t.ravel() for _, t in pairs])
    for c in range(NUM_CLASSES):
        tp = int(((predicted == c) & (truth == c)).sum())
        fp = int(((predicted == c) & (truth != c)).sum())
        fn = int(((predicted != c) & (truth == c)).sum())
        assert (counts["true_positives"][c], counts["false_positives"][c], counts["false_negatives"][c]) == (tp, fp, fn)
        assert counts["iou"][c] == pytest.approx(tp / (tp + fp + fn))
    assert counts["pixel_accuracy"] == pytest.approx((predicted == truth).mean())
    assert counts["mean_iou"] == pytest.approx(np.mean(counts["iou"]))
    assert counts["images"] == 3 and np.asarray(counts["confusion"]).sum() == predicted.size


def test_the_largest_false_positive_region_is_found_over_images_and_classes():
    truth = np.zeros((6, 6), dtype=np.int64)
    small = truth.copy()
    small[0, :2] = 1  # 2 px predicted 1, truly 0
    big = truth.copy()
    big[2:5, 2:5] = 3  # 9 px predicted 3, truly 0
    big[0, 0] = 2
    found = largest_false_positive([_item("a", small, truth), _item("b", big, truth)], NUM_CLASSES)
    assert found is not None
    item, target, pixels = found
    assert (item.image_id, target, pixels) == ("b", 3, 9)
    assert largest_false_positive([_item("c", truth, truth)], NUM_CLASSES) is None


def _truth_cases(adapter):
    """Two tiny images whose 'ground truth' is the prediction with a block relabelled: known errors."""
    for seed in (0, 1):
        image = structured_image((32, 32), seed=seed)
        predicted = adapter.predict(image).argmax(-1)
        truth = predicted.copy()
        truth[4:12, 4:14] = (predicted[4:12, 4:14] + 1 + seed) % NUM_CLASSES  # every pixel there is now an error
        for target in np.unique(truth):
            region = truth == target
            if region.sum() >= 4:
                yield Case(f"img{seed}", image, region, int(target), "ground truth", truth=truth)


def test_report_with_ground_truth_has_an_errors_section_that_reproduces(adapter, tmp_path):
    args = parser("test", folder_required=False).parse_args(
        ["--out", str(tmp_path), "--methods", "gradcam", "saliency", "--steps", "4", "--no-sanity", "--limit", "6"]
    )
    source = CaseSource(_truth_cases(adapter), "tiny images", "ground-truth parts")
    result = run_report(adapter, "tiny", source, args, "test")
    errors = result["summary"]["errors"]
    images = {case["image"] for case in result["cases"]}
    truths = {c.image_id: c.truth for c in _truth_cases(adapter) if c.image_id in images}
    predicted = {name: adapter.predict(structured_image((32, 32), seed=int(name[-1]))).argmax(-1) for name in truths}
    wrong = sum(int((predicted[n] != truths[n]).sum()) for n in truths)
    assert errors["images"] == len(truths) and sum(errors["false_positives"]) == wrong

    report = (tmp_path / "report.md").read_text()
    assert "## The model's errors" in report and "### The largest error, explained" in report
    for name in adapter.class_names:
        assert f"| {name} |" in report

    saved = json.loads((tmp_path / "results.json").read_text())
    largest = saved["summary"]["errors"]["largest_error"]
    question = Question.from_dict(largest["question"])
    name = largest["image"]
    expected = error_question(predicted[name], truths[name], question.target, NUM_CLASSES)
    assert question == expected and question.contrast is not None
    assert largest["pixels"] == int(question.region.sum())
    image = structured_image((32, 32), seed=int(name[-1]))
    score = adapter.score(image[None], question.region, question.target, contrast=question.contrast)[0]
    for values in largest["methods"].values():
        assert values["score"] == pytest.approx(score, rel=1e-4, abs=1e-5)
    for case, original in zip(saved["cases"], _truth_cases(adapter), strict=False):
        assert Question.from_dict(case["question"]) == Question(original.region, original.target)
