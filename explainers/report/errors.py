"""The batch report's errors section: how the model's prediction differs from the ground truth, and why.

Given the ground-truth label map of each image (a case source whose cases carry `truth`), it sums one confusion
matrix over the images (`explainers.errors`), giving per-class IoU (the Jaccard index of the PASCAL VOC segmentation
benchmark, over the whole set) and the false-positive / false-negative pixel counts of every class. Every wrong pixel
is a false positive of the class predicted there, so the largest false-positive region of any (image, class) is the
model's largest error; it is explained with the report's methods as "why are these pixels c rather than the class
they truly are?" (`explainers.errors.error_question`: region = the false positives of c, target c, contrast = their
majority true class), with the deletion/insertion curves of that contrast score. The question is recorded in full
(`Question.to_dict`), so the explanation can be reproduced from results.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explainers.adapter import SegmentationAdapter
from explainers.errors import confusion_matrix, error_question, false_positives
from explainers.explain import explain
from explainers.faithfulness import faithfulness


@dataclass(frozen=True)
class TruthImage:
    """One image with its ground truth and the model's prediction (both (H, W) class indices)."""

    image_id: str
    image: np.ndarray
    truth: np.ndarray
    predicted: np.ndarray


def truth_image(adapter: SegmentationAdapter, image_id: str, image: np.ndarray, truth: np.ndarray) -> TruthImage:
    """The image with its ground truth and the adapter's predicted label map; ValueError if the sizes differ."""
    predicted = adapter.predict(image).argmax(-1)
    truth = np.asarray(truth)
    if truth.shape != predicted.shape:
        raise ValueError(f"The ground truth of {image_id} is {truth.shape} but the image is {predicted.shape}.")
    return TruthImage(image_id, image, truth, predicted)


def error_counts(items: Sequence[TruthImage], num_classes: int, ignore: int | None = None) -> dict[str, Any]:
    """The confusion matrix summed over the images, with per-class IoU and FP / FN / TP pixel counts (JSON-able)."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for item in items:
        matrix += confusion_matrix(item.predicted, item.truth, num_classes, ignore)
    hits = np.diag(matrix)
    false_pos = matrix.sum(axis=0) - hits
    false_neg = matrix.sum(axis=1) - hits
    union = hits + false_pos + false_neg
    iou = [float(h / u) if u else float("nan") for h, u in zip(hits, union, strict=True)]
    present = [c for c in range(num_classes) if union[c]]
    return {
        "images": len(items),
        "confusion": matrix.tolist(),
        "iou": iou,
        "mean_iou": float(np.mean([iou[c] for c in present])) if present else float("nan"),
        "pixel_accuracy": float(hits.sum() / max(int(matrix.sum()), 1)),
        "true_positives": hits.tolist(),
        "false_positives": false_pos.tolist(),
        "false_negatives": false_neg.tolist(),
    }


def largest_false_positive(
    items: Sequence[TruthImage], num_classes: int, ignore: int | None = None
) -> tuple[TruthImage, int, int] | None:
    """(image, class, pixels) of the largest false-positive region over every image and class (first on ties);
    None when the prediction is right everywhere."""
    best: tuple[TruthImage, int, int] | None = None
    for item in items:
        for target in range(num_classes):
            pixels = int(false_positives(item.predicted, item.truth, target, num_classes, ignore).sum())
            if pixels and (best is None or pixels > best[2]):
                best = (item, target, pixels)
    return best


def explain_largest_error(
    adapter: SegmentationAdapter,
    items: Sequence[TruthImage],
    methods: Sequence[str],
    params: dict[str, dict[str, Any]],
    steps: int,
    baseline: str,
    ignore: int | None = None,
) -> dict[str, Any] | None:
    """The largest error explained with `methods` (score, deletion/insertion gaps, inside share per method), and its
    question in full; None without errors."""
    found = largest_false_positive(items, adapter.num_classes, ignore)
    if found is None:
        return None
    item, target, pixels = found
    question = error_question(item.predicted, item.truth, target, adapter.num_classes, ignore=ignore)
    attributions = explain(adapter, item.image, question, methods=methods, params=params)
    faith = faithfulness(adapter, item.image, question, None, attributions, steps=steps, baseline=baseline)
    curve = next(iter(faith.values())).deletion
    return {
        "image": item.image_id,
        "kind": "false_positive",
        "pixels": pixels,
        "image_score": curve.image_score,
        "baseline_score": curve.baseline_score,
        "question": question.to_dict(adapter.class_names),
        "description": question.describe(adapter.class_names),
        "methods": {
            name: {
                "score": attributions[name].score,
                "deletion_gap": faith[name].deletion_gap,
                "insertion_gap": faith[name].insertion_gap,
                "inside_share": faith[name].inside_share,
                "seconds": attributions[name].seconds,
            }
            for name in methods
        },
    }


def errors_section(
    adapter: SegmentationAdapter,
    items: Sequence[TruthImage],
    methods: Sequence[str],
    params: dict[str, dict[str, Any]],
    steps: int,
    baseline: str,
    ignore: int | None = None,
) -> dict[str, Any] | None:
    """The whole errors section (counts and the largest error explained); None without ground truth."""
    if not items:
        return None
    counts = error_counts(items, adapter.num_classes, ignore)
    counts["largest_error"] = explain_largest_error(adapter, items, methods, params, steps, baseline, ignore)
    return counts
