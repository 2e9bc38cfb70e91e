"""The explainer base class: one pipeline that every attribution method plugs into.

Following pytorch-grad-cam's BaseCAM and xplique's single `explain` interface, the *target* (the adapted region
score, see `explainers.adapter`) is separate from the *method*: a method only says how to turn the adapted model into
a map, and the base class handles parameters, timing and the `Attribution` it returns.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, ClassVar

import numpy as np

from explainers.adapter import SegmentationAdapter
from explainers.attribution import Attribution
from explainers.backends.base import GradientsUnavailable
from explainers.backends.tf_isolation import GRADIENT_LOCK
from explainers.progress import Progress, no_progress
from explainers.question import Question


class Explainer:
    """Base of every attribution method.

    Subclasses set the class attributes and implement `compute`, returning the fields of an `Attribution` other than
    method, seconds and params (at least `heatmap` and `score`).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    family: ClassVar[str]  # "cam" | "gradient" | "shap"
    paper: ClassVar[str] = ""
    slow: ClassVar[bool] = False  # True: too slow for a request; the app runs it as a background job
    signed: ClassVar[bool] = True  # False: maps are non-negative (ReLU'd CAMs)
    additive: ClassVar[bool] = False  # True: sum(heatmap) ~= score - baseline_score
    defaults: ClassVar[dict[str, Any]] = {}
    # True: the method needs the model's gradients (CAMs, gradient methods, DeepSHAP); a black-box backend refuses it
    # with the reason before any work. False for perturbation methods that only call `adapter.score`.
    requires_gradients: ClassVar[bool] = True
    # True: the method takes the TensorFlow gradient lock exclusively itself (DeepSHAP patches TensorFlow's gradient
    # registry while it runs); every other method holds it shared while it computes.
    exclusive_gradients: ClassVar[bool] = False

    def unavailable_reason(self, adapter: SegmentationAdapter) -> str | None:
        """Why this method cannot run on `adapter`'s model (None: it can)."""
        if self.requires_gradients and not adapter.gradients:
            why = adapter.why_no_gradients
            return f"{self.label} needs the model's gradients, which this model does not give: {why}"
        return None

    def check_available(self, adapter: SegmentationAdapter) -> None:
        """Raise GradientsUnavailable with the reason if this method cannot run on `adapter`'s model."""
        if (reason := self.unavailable_reason(adapter)) is not None:
            raise GradientsUnavailable(reason)

    @property
    def is_cam(self) -> bool:
        """True for methods that give one map per conv layer."""
        return self.family == "cam"

    def evaluations(self, params: dict[str, Any]) -> dict[str, int]:
        """Model evaluations one run with these (resolved) parameters costs: {"forward": images, "gradient": images}
        (forward+backward), for time estimates (explainers.estimate). One pass by default."""
        return {"gradient": 1} if self.requires_gradients else {"forward": 1}

    def resolve_params(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """The defaults updated with `params`; unknown names raise ValueError."""
        params = dict(params or {})
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(f"{self.name} has no parameter(s) {sorted(unknown)}; it takes {sorted(self.defaults)}.")
        return {**self.defaults, **params}

    def explain(
        self,
        adapter: SegmentationAdapter,
        image: np.ndarray,
        region: np.ndarray | Question,
        target: int | None = None,
        params: dict[str, Any] | None = None,
        progress: Progress | None = None,
        *,
        contrast: int | None = None,
    ) -> Attribution:
        """Attribute the question's score S(image) to the image's pixels (or, for CAMs, to every conv layer).

        The question is a region with its `target` (and optionally a `contrast` class: the score is then the target's
        mean logit minus the contrast's), or a `Question` in place of `region`.

        Raises GradientsUnavailable (a ValueError) before any work if the method needs gradients the model lacks."""
        resolved = self.resolve_params(params)
        self.check_available(adapter)
        image = adapter.validate_image(image)
        question = adapter.question(region, target, contrast, image.shape[:2])
        return self.run(adapter, image, question, resolved, progress or no_progress)

    def run(
        self,
        adapter: SegmentationAdapter,
        image: np.ndarray,
        question: Question,
        params: dict[str, Any],
        progress: Progress,
    ) -> Attribution:
        """`explain` after its one validation pass: `image`, `question` and the resolved `params` are already checked
        (by `explain` here or by `explainers.explain` for several methods at once), so nothing is checked twice."""
        resolved = params
        start = time.perf_counter()
        section = contextlib.nullcontext() if self.exclusive_gradients else GRADIENT_LOCK.shared()
        with section:
            fields = self.compute(adapter, image, question, resolved, progress)
        seconds = time.perf_counter() - start
        heatmap = np.asarray(fields.pop("heatmap"), dtype=np.float32)
        return Attribution(method=self.name, heatmap=heatmap, seconds=seconds, params=resolved, **fields)

    def compute(
        self,
        adapter: SegmentationAdapter,
        image: np.ndarray,
        question: Question,
        params: dict[str, Any],
        progress: Progress,
    ) -> dict[str, Any]:
        """Return {"heatmap": (H, W), "score": float, ...other Attribution fields}. Inputs are already validated (the
        question against the model and the image); pass `question` on to the adapter's methods."""
        raise NotImplementedError
