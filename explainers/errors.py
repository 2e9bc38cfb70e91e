"""The model's errors against a ground-truth label map, and the questions that explain them.

From a predicted label map and a ground-truth label map (both (H, W) integer class indices):

- the confusion matrix and the per-class intersection over union, IoU_c = TP_c / (TP_c + FP_c + FN_c) (the
  Jaccard index, as in the PASCAL VOC segmentation benchmark; NaN for a class absent from both maps);
- per class, the **false positives** (predicted c, truly another class) and **false negatives** (truly c, predicted
  another class) as boolean masks the user can select;
- `error_question`: "explain this error" as a `Question`. For the false positives of c: why are these pixels c rather
  than the class they truly are? (region = the FP pixels, target c, contrast = the majority true class there). For
  the false negatives of c: why are these pixels predicted c' rather than c? (region = the FN pixels, target = the
  majority predicted class there, contrast c).

Ground-truth pixels equal to `ignore` (e.g. 255, the "void" label of PASCAL VOC) take part in nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explainers.question import Question

ERROR_KINDS = ("false_positive", "false_negative")


def _pair(predicted: np.ndarray, truth: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    for name, labels in (("predicted", predicted), ("ground-truth", truth)):
        if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"The {name} label map must be a 2-D integer (H, W) array; got {labels.dtype} {labels.shape}."
            )
    if predicted.shape != truth.shape:
        raise ValueError(f"The ground truth is {truth.shape} but the prediction is {predicted.shape}; they must match.")
    if predicted.size and (predicted.min() < 0 or predicted.max() >= num_classes):
        raise ValueError(f"The predicted label map has class indices outside 0-{num_classes - 1}.")
    return predicted, truth


def _valid(truth: np.ndarray, num_classes: int, ignore: int | None) -> np.ndarray:
    valid = np.ones(truth.shape, dtype=bool) if ignore is None else truth != int(ignore)
    outside = valid & ((truth < 0) | (truth >= num_classes))
    if outside.any():
        values = sorted({int(v) for v in np.unique(truth[outside])})[:5]
        raise ValueError(
            f"The ground truth has class indices {values} outside the model's classes 0-{num_classes - 1}."
        )
    return valid


def confusion_matrix(
    predicted: np.ndarray, truth: np.ndarray, num_classes: int, ignore: int | None = None
) -> np.ndarray:
    """(C, C) int64 pixel counts: entry [t, p] counts pixels of true class t predicted as p."""
    predicted, truth = _pair(predicted, truth, num_classes)
    valid = _valid(truth, num_classes, ignore)
    pairs = truth[valid].astype(np.int64) * num_classes + predicted[valid].astype(np.int64)
    return np.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_iou(predicted: np.ndarray, truth: np.ndarray, num_classes: int, ignore: int | None = None) -> np.ndarray:
    """(C,) float64 IoU per class; NaN where a class is in neither map."""
    matrix = confusion_matrix(predicted, truth, num_classes, ignore)
    hits = np.diag(matrix).astype(np.float64)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, hits / np.maximum(union, 1), np.nan)


def false_positives(
    predicted: np.ndarray, truth: np.ndarray, target: int, num_classes: int, ignore: int | None = None
) -> np.ndarray:
    """Pixels predicted as `target` whose true class is another one."""
    predicted, truth = _pair(predicted, truth, num_classes)
    return _valid(truth, num_classes, ignore) & (predicted == int(target)) & (truth != int(target))


def false_negatives(
    predicted: np.ndarray, truth: np.ndarray, target: int, num_classes: int, ignore: int | None = None
) -> np.ndarray:
    """Pixels truly of class `target` predicted as another class."""
    predicted, truth = _pair(predicted, truth, num_classes)
    return _valid(truth, num_classes, ignore) & (truth == int(target)) & (predicted != int(target))


@dataclass(frozen=True)
class ClassErrors:
    """One class's agreement with the ground truth: IoU and the pixel counts of its errors."""

    index: int
    iou: float  # NaN when the class is in neither map
    true_positives: int
    false_positives: int
    false_negatives: int


def class_errors(
    predicted: np.ndarray, truth: np.ndarray, num_classes: int, ignore: int | None = None
) -> list[ClassErrors]:
    """One `ClassErrors` per class, from one confusion matrix."""
    matrix = confusion_matrix(predicted, truth, num_classes, ignore)
    iou = per_class_iou(predicted, truth, num_classes, ignore)
    hits = np.diag(matrix)
    return [
        ClassErrors(
            index=c,
            iou=float(iou[c]),
            true_positives=int(hits[c]),
            false_positives=int(matrix[:, c].sum() - hits[c]),
            false_negatives=int(matrix[c, :].sum() - hits[c]),
        )
        for c in range(num_classes)
    ]


def error_question(
    predicted: np.ndarray,
    truth: np.ndarray,
    target: int,
    num_classes: int,
    kind: str = "false_positive",
    ignore: int | None = None,
) -> Question:
    """ "Explain this error" as a question (see the module docstring); ValueError when the class has no such error.

    The majority class is the most frequent one in the error region (the lowest index on ties).
    """
    if kind not in ERROR_KINDS:
        raise ValueError(f"Unknown error kind {kind!r}; choose one of {', '.join(ERROR_KINDS)}.")
    target = int(target)
    if not 0 <= target < num_classes:
        raise ValueError(f"Class {target} is out of range: the model has classes 0-{num_classes - 1}.")
    predicted, truth = _pair(predicted, truth, num_classes)
    if kind == "false_positive":
        region = false_positives(predicted, truth, target, num_classes, ignore)
        if not region.any():
            raise ValueError(f"Class {target} has no false positives: every pixel predicted as it is it in the truth.")
        other = int(np.argmax(np.bincount(truth[region].astype(np.int64), minlength=num_classes)))
        return Question(region, target, contrast=other, label=f"false-positive({target})")
    region = false_negatives(predicted, truth, target, num_classes, ignore)
    if not region.any():
        raise ValueError(f"Class {target} has no false negatives: every pixel of it in the truth is predicted as it.")
    other = int(np.argmax(np.bincount(predicted[region].astype(np.int64), minlength=num_classes)))
    return Question(region, other, contrast=target, label=f"false-negative({target})")
