"""The question an explanation answers: a region, a target class, and optionally a contrast class.

Every attribution method explains one score of the adapted model (`explainers.adapter`). A `Question` fixes it:

    S(x) = (1 / |M'|) * sum_{p in M'} ( z_target(x)[p] - z_contrast(x)[p] )      (contrast given)
    S(x) = (1 / |M'|) * sum_{p in M'} z_target(x)[p]                              (no contrast)

so "why is this region c?" and "why is it c rather than c'?" are one code path: the class weight vector (C,) is
one-hot(c), or one-hot(c) - one-hot(c') (`Question.weights`). The contrast form is the "contrastive" question of
Grad-CAM's counterfactual explanations (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017) asked of a region's mean logit instead of an image label.

A question is an immutable value: its `key` (one content hash of region, target and contrast) keys the engine's and
the app's caches, and `to_dict` / `from_dict` write it to and read it from an export's settings.json exactly, so a
result can be reproduced from the file alone. `label` says how the region was made ("box", "class", "component",
"border-inner(3)", ...); it describes the question and is not part of its identity.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from explainers.keys import content_key
from explainers.regions import region_mask


def _class_index(value: Any, role: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"The {role} class must be an integer class index; got {value!r}.")
    if int(value) < 0:
        raise ValueError(f"The {role} class must be a class index (0 or more); got {int(value)}.")
    return int(value)


def _region_mask(region: Any) -> np.ndarray:
    mask = region_mask(region)
    mask = np.array(mask, dtype=bool, copy=True)
    mask.setflags(write=False)
    return mask


@dataclasses.dataclass(frozen=True, eq=False)
class Question:
    """Why is `region` predicted as `target` (rather than `contrast`)?

    Attributes:
        region: boolean (H, W) mask at image resolution (stored as a read-only copy).
        target: the class whose evidence is explained.
        contrast: None, or a second class: the score is then the target's logit minus this class's logit.
        label: how the region was made ("box", "lasso", "pixel", "class", "component", "border-inner(3)", ...).
    """

    region: np.ndarray
    target: int
    contrast: int | None = None
    label: str = "region"

    def __post_init__(self) -> None:
        object.__setattr__(self, "region", _region_mask(self.region))
        object.__setattr__(self, "target", _class_index(self.target, "target"))
        if self.contrast is not None:
            object.__setattr__(self, "contrast", _class_index(self.contrast, "contrast"))
            if self.contrast == self.target:
                raise ValueError(
                    f"The contrast class must differ from the target class (both are {self.target}): "
                    "“why c rather than c'” needs two different classes. Leave the contrast empty for “why c”."
                )
        object.__setattr__(self, "label", str(self.label))

    # ------------------------------------------------------------------------------------------------- identity
    @functools.cached_property
    def key(self) -> str:
        """One content hash of the region's pixels, the target and the contrast (the label is not part of it)."""
        return content_key("question", self.region, self.target, self.contrast)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Question):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def replace(self, **changes: Any) -> Question:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------------------------------------ the score
    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the region, which is the image's size."""
        return int(self.region.shape[0]), int(self.region.shape[1])

    def check(self, num_classes: int, size: tuple[int, int] | None = None) -> Question:
        """This question, if it fits a model with `num_classes` classes (and an image of `size`); ValueError if not."""
        for role, index in (("Target", self.target), ("Contrast", self.contrast)):
            if index is not None and index >= num_classes:
                raise ValueError(f"{role} class {index} is out of range: the model has classes 0-{num_classes - 1}.")
        if size is not None and self.size != (int(size[0]), int(size[1])):
            raise ValueError(f"The region mask is {self.size} but the image is {tuple(size)}; they must match.")
        return self

    def weights(self, num_classes: int) -> np.ndarray:
        """The class weight vector (C,) float32 of the score: one-hot(target), minus one-hot(contrast) if given."""
        self.check(num_classes)
        weights = np.zeros(num_classes, dtype=np.float32)
        weights[self.target] = 1.0
        if self.contrast is not None:
            weights[self.contrast] = -1.0
        return weights

    def describe(self, class_names: Sequence[str] | None = None) -> str:
        """A one-line human description, e.g. “why is this box “cap” rather than “gills”?”."""

        def name(index: int) -> str:
            known = class_names is not None and index < len(class_names)
            return f"“{class_names[index]}”" if known else f"class {index}"

        text = f"why is this {self.label} {name(self.target)}"
        if self.contrast is not None:
            text += f" rather than {name(self.contrast)}"
        return text + "?"

    # ------------------------------------------------------------------------------------------- serialisation
    def to_dict(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """A JSON-able dict that `from_dict` turns back into this exact question (region run-length encoded).

        With `class_names`, the class names are recorded too (for people reading settings.json; ignored on reading).
        """
        data: dict[str, Any] = {
            "target": self.target,
            "contrast": self.contrast,
            "label": self.label,
            "region": {"shape": list(self.size), "pixels": int(self.region.sum()), "rle": rle_encode(self.region)},
            "key": self.key,
        }
        if class_names is not None:
            data["target_name"] = str(class_names[self.target])
            data["contrast_name"] = None if self.contrast is None else str(class_names[self.contrast])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Question:
        """The question `to_dict` wrote; ValueError for a malformed dict or one whose region does not match its key."""
        try:
            region_data = data["region"]
            region = rle_decode(region_data["rle"], tuple(region_data["shape"]))
            question = cls(region, data["target"], data.get("contrast"), data.get("label", "region"))
        except (KeyError, TypeError) as error:
            raise ValueError(f"The question record is incomplete or malformed ({error!r}).") from None
        if "key" in data and data["key"] != question.key:
            raise ValueError("The question record does not match its key: its region, target or contrast was altered.")
        return question


def rle_encode(mask: np.ndarray) -> list[int]:
    """Run lengths of a boolean mask read in row-major order, alternating False/True runs, starting with False
    (a mask whose first pixel is True starts with a run of 0)."""
    flat = np.asarray(mask, dtype=bool).ravel()
    if flat.size == 0:
        return []
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    return ([0] if flat[0] else []) + [int(c) for c in counts]


def rle_decode(counts: Sequence[int], shape: tuple[int, ...]) -> np.ndarray:
    """The boolean mask of `shape` that `rle_encode` encoded as `counts`; ValueError when they do not fit."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError("The region's run lengths must be a list of non-negative integers.")
    if int(counts.sum()) != int(np.prod(shape)):
        raise ValueError(f"The region's run lengths cover {int(counts.sum())} pixels, not the {shape} mask's.")
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(shape)


def runner_up_class(probabilities: np.ndarray, region: np.ndarray, target: int) -> int:
    """The class other than `target` with the highest mean probability over the region: the natural contrast.

    `probabilities`: (H, W, C) class probabilities (`SegmentationAdapter.predict`); `region`: boolean (H, W).
    """
    probabilities = np.asarray(probabilities)
    mask = _region_mask(region)
    if probabilities.ndim != 3 or probabilities.shape[:2] != mask.shape:
        raise ValueError(f"Probabilities {probabilities.shape} do not match the region {mask.shape}.")
    if probabilities.shape[-1] < 2:
        raise ValueError("A contrast needs a model with at least two classes.")
    means = probabilities[mask].mean(axis=0).astype(np.float64)
    target = _class_index(target, "target")
    if target >= probabilities.shape[-1]:
        raise ValueError(f"Target class {target} is out of range: the model has {probabilities.shape[-1]} classes.")
    means[target] = -np.inf
    return int(np.argmax(means))
