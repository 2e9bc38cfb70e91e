"""Per-class IoU, false-positive / false-negative masks and error questions on hand-made label maps."""

from __future__ import annotations

import numpy as np
import pytest

from explainers.errors import (
    class_errors,
    confusion_matrix,
    error_question,
    false_negatives,
    false_positives,
    per_class_iou,
)

# Classes 0, 1, 2 and an absent class 3.
TRUTH = np.array(
    [
        [0, 0, 1, 1],
        [0, 1, 1, 1],
        [2, 2, 1, 1],
    ]
)
PRED = np.array(
    [
        [0, 1, 1, 1],  # (0, 1): a false positive of 1 (truly 0)
        [0, 1, 1, 0],  # (1, 3): a false negative of 1 (predicted 0)
        [1, 2, 1, 1],  # (2, 0): a false positive of 1 (truly 2)
    ]
)


def test_confusion_matrix_by_hand():
    expected = np.zeros((4, 4), int)
    expected[0, 0], expected[0, 1] = 2, 1
    expected[1, 1], expected[1, 0] = 6, 1
    expected[2, 2], expected[2, 1] = 1, 1
    np.testing.assert_array_equal(confusion_matrix(PRED, TRUTH, 4), expected)


def test_iou_by_hand():
    # class 0: TP 2, FP 1 (pixel (1, 3)), FN 1 (pixel (0, 1)) -> 2/4; class 1: TP 6, FP 2, FN 1 -> 6/9;
    # class 2: TP 1, FP 0, FN 1 -> 1/2; class 3: absent from both -> NaN.
    np.testing.assert_allclose(per_class_iou(PRED, TRUTH, 4), [2 / 4, 6 / 9, 1 / 2, np.nan])


def test_iou_equals_an_independent_numpy_computation_on_random_maps():
    rng = np.random.default_rng(3)
    truth, pred = rng.integers(0, 5, (40, 30)), rng.integers(0, 5, (40, 30))
    expected = [np.sum((pred == c) & (truth == c)) / np.sum((pred == c) | (truth == c)) for c in range(5)]
    np.testing.assert_allclose(per_class_iou(pred, truth, 5), expected)


def test_false_positive_and_negative_masks_are_exact():
    fp = np.zeros(TRUTH.shape, bool)
    fp[0, 1] = fp[2, 0] = True
    np.testing.assert_array_equal(false_positives(PRED, TRUTH, 1, 4), fp)
    fn = np.zeros(TRUTH.shape, bool)
    fn[1, 3] = True
    np.testing.assert_array_equal(false_negatives(PRED, TRUTH, 1, 4), fn)
    np.testing.assert_array_equal(false_negatives(PRED, TRUTH, 2, 4), fp & (TRUTH == 2))


def test_class_errors_counts():
    errors = class_errors(PRED, TRUTH, 4)
    assert [(e.true_positives, e.false_positives, e.false_negatives) for e in errors] == [
        (2, 1, 1),
        (6, 2, 1),
        (1, 0, 1),
        (0, 0, 0),
    ]
    assert errors[1].iou == pytest.approx(6 / 9) and np.isnan(errors[3].iou)


def test_ignored_ground_truth_pixels_count_nowhere():
    truth = TRUTH.copy()
    truth[0, 1] = 255  # the false positive of class 1 at (0, 1) becomes "void"
    np.testing.assert_allclose(per_class_iou(PRED, truth, 4, ignore=255)[:3], [2 / 3, 6 / 8, 1 / 2])
    assert not false_positives(PRED, truth, 1, 4, ignore=255)[0, 1]
    with pytest.raises(ValueError, match=r"class indices \[255\] outside"):
        per_class_iou(PRED, truth, 4)


def test_explain_a_false_positive_contrasts_with_the_majority_true_class():
    truth = np.array([[0, 0, 2, 1], [0, 1, 1, 1]])
    pred = np.array([[1, 1, 1, 1], [0, 1, 1, 1]])  # FP of 1 at (0,0), (0,1) truly 0 and (0,2) truly 2
    question = error_question(pred, truth, 1, 3)
    expected = np.zeros(truth.shape, bool)
    expected[0, :3] = True
    np.testing.assert_array_equal(question.region, expected)
    assert (question.target, question.contrast, question.label) == (1, 0, "false-positive(1)")


def test_explain_a_false_negative_targets_the_predicted_class():
    question = error_question(PRED, TRUTH, 2, 4, kind="false_negative")
    expected = np.zeros(TRUTH.shape, bool)
    expected[2, 0] = True
    np.testing.assert_array_equal(question.region, expected)
    assert (question.target, question.contrast) == (1, 2)


def test_error_question_errors():
    with pytest.raises(ValueError, match="no false positives"):
        error_question(PRED, TRUTH, 2, 4)
    with pytest.raises(ValueError, match="no false negatives"):
        error_question(PRED, TRUTH, 3, 4, kind="false_negative")
    with pytest.raises(ValueError, match="Unknown error kind"):
        error_question(PRED, TRUTH, 1, 4, kind="both")
    with pytest.raises(ValueError, match="must match"):
        per_class_iou(PRED, TRUTH[:2], 4)
    with pytest.raises(ValueError, match="predicted label map has class indices"):
        per_class_iou(PRED, TRUTH, 2)
