"""The model's errors on the shown image: a ground truth uploaded with it, per-class IoU, error regions, questions.

- `ingest_truth`: decode an uploaded ground-truth PNG for the current image (`dashboard.inputs.ground_truth`: indexed
  or class-colour PNG, the image's aspect ratio, the same centre crop), store its label map, return a small ref.
- `error_rows`: per class, IoU and the true-positive / false-positive / false-negative pixel counts
  (`explainers.errors`; void pixels count nowhere).
- `error_choices`: the non-empty error regions as picker options, "false positives of cap (312 px)".
- `error_region`: one of them as a mask and a region label; `explain_error_question`: "explain this error" as the
  engine's `Question` (`explainers.errors.error_question`: for the false positives of c, region = those pixels,
  target c, contrast = their majority true class; for its false negatives, target = the majority predicted class
  there, contrast c).

Every refusal is a ValueError whose message is meant for the user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np

from dashboard.inputs.ground_truth import VOID, load_ground_truth_upload
from dashboard.state.store import StateStore
from dashboard.usecases.analysis import EXPIRED_MESSAGE, image_data
from explainers.errors import ERROR_KINDS, class_errors, error_question, false_negatives, false_positives
from explainers.question import Question

KIND_TEXT = {"false_positive": "false positives", "false_negative": "false negatives"}
NO_TRUTH_MESSAGE = "Upload the ground truth of this image first (an indexed PNG, or a PNG in the class colours)."


class TruthRef(TypedDict):
    """The TRUTH store: the stored ground truth of one image (keys and small facts only)."""

    key: str
    image: str
    name: str
    form: str  # "indexed" | "colour"
    note: str
    void: int  # void (unlabelled) pixels


def ingest_truth(
    store: StateStore,
    session: str,
    image_ref: Mapping[str, Any] | None,
    contents: str,
    filename: str | None,
    class_names: Sequence[str],
    max_bytes: int,
) -> TruthRef:
    """Decode and store the ground truth uploaded for the image of `image_ref`; ValueError (GroundTruthError) with the
    reason for a bad file or when no image is loaded."""
    if not image_ref:
        raise ValueError("Load an image first, then upload its ground truth.")
    image, _, _ = image_data(store, session, image_ref["key"])
    size = (int(image.shape[0]), int(image.shape[1]))
    original = image_ref.get("original_size") or (size[1], size[0])
    truth = load_ground_truth_upload(contents, class_names, (int(original[0]), int(original[1])), size,
                                     max_bytes=max_bytes)  # fmt: skip
    key = store.put_array(session, "truth", truth.labels)
    return TruthRef(key=key, image=str(image_ref["key"]), name=filename or "ground truth", form=truth.form,
                    note=truth.note, void=truth.void_pixels)  # fmt: skip


def truth_maps(
    store: StateStore, session: str, image_ref: Mapping[str, Any] | None, truth_ref: Mapping[str, Any] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(predicted labels, ground truth) of the shown image; ValueError without a ground truth for it."""
    if not image_ref or not truth_ref or truth_ref.get("image") != image_ref.get("key"):
        raise ValueError(NO_TRUTH_MESSAGE)
    _, labels, _ = image_data(store, session, image_ref["key"])
    truth = store.get(session, "truth", truth_ref["key"])
    if truth is None:
        raise ValueError(EXPIRED_MESSAGE)
    return np.asarray(labels).astype(np.int64), np.asarray(truth).astype(np.int64)


def error_rows(predicted: np.ndarray, truth: np.ndarray, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per class present in the prediction or the truth: name, IoU, TP, FP and FN pixels."""
    rows = []
    for entry in class_errors(predicted, truth, len(class_names), ignore=VOID):
        if entry.true_positives + entry.false_positives + entry.false_negatives == 0:
            continue
        rows.append({"class": int(entry.index), "name": str(class_names[entry.index]), "iou": entry.iou,
                     "tp": entry.true_positives, "fp": entry.false_positives, "fn": entry.false_negatives})  # fmt: skip
    return rows


def choice_value(kind: str, target: int) -> str:
    """The picker value of the `kind` errors of class `target`, e.g. "false_positive:1"."""
    return f"{kind}:{int(target)}"


def parse_choice(value: Any, num_classes: int) -> tuple[str, int]:
    """(kind, class) of a picker value; ValueError for anything else."""
    kind, _, index = str(value or "").partition(":")
    if kind not in ERROR_KINDS or not index.isdigit() or not 0 <= int(index) < num_classes:
        raise ValueError("Pick one of the listed error regions first.")
    return kind, int(index)


def error_choices(predicted: np.ndarray, truth: np.ndarray, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Picker options of every non-empty error region, "false positives of cap (312 px)", largest first."""
    options = []
    for entry in class_errors(predicted, truth, len(class_names), ignore=VOID):
        for kind, pixels in (("false_positive", entry.false_positives), ("false_negative", entry.false_negatives)):
            if pixels:
                label = f"{KIND_TEXT[kind]} of {class_names[entry.index]} ({pixels} px)"
                options.append({"label": label, "value": choice_value(kind, entry.index), "pixels": pixels})
    options.sort(key=lambda option: -option["pixels"])
    return [{"label": o["label"], "value": o["value"]} for o in options]


def error_region(
    predicted: np.ndarray, truth: np.ndarray, value: Any, class_names: Sequence[str]
) -> tuple[np.ndarray, str]:
    """(mask, region label) of the chosen error region; ValueError when it is empty or the choice is unknown."""
    kind, target = parse_choice(value, len(class_names))
    select = false_positives if kind == "false_positive" else false_negatives
    mask = select(predicted, truth, target, len(class_names), ignore=VOID)
    if not mask.any():
        raise ValueError(f"“{class_names[target]}” has no {KIND_TEXT[kind]} in this image: nothing to select.")
    return mask, f"{kind.replace('_', '-')}({target})"


def explain_error_question(
    predicted: np.ndarray, truth: np.ndarray, value: Any, class_names: Sequence[str]
) -> Question:
    """"Explain this error" for the chosen error region, as the engine's Question; ValueError when it is empty."""
    kind, target = parse_choice(value, len(class_names))
    try:
        return error_question(predicted, truth, target, len(class_names), kind=kind, ignore=VOID)
    except ValueError:
        name = class_names[target]
        raise ValueError(f"“{name}” has no {KIND_TEXT[kind]} in this image: nothing to explain.") from None
