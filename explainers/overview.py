"""Every class at once: one explanation per predicted class of an image, from one request.

The question for class c is its whole predicted region, "why is everything predicted c, c?" (region = the pixels
whose most probable class is c, target c). Asking it for every class gives the per-class overview of Seg-Grad-CAM
(Vinogradova, Dibrov & Myers, "Towards Interpretable Semantic Segmentation via Gradient-weighted Class Activation
Mapping", AAAI 2020, Figure 2).

For the CAM methods the K questions share ONE forward pass: the backend keeps the layer activations and runs the K
backward passes from it (torch: one vmapped `autograd.grad`; Keras: K gradients from one persistent tape, in one
traced function); `python -m benchmarks.overview` measures that against K separate explanations. Other methods
(saliency, SHAP, ...) are explained class by class with `explain`, so every method gives an overview. Either way each
class's `Attribution` equals `explain` on that class's question.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from explainers import registry
from explainers.adapter import SegmentationAdapter
from explainers.attribution import Attribution
from explainers.backends.tf_isolation import GRADIENT_LOCK
from explainers.base import Progress, no_progress
from explainers.cam import CAMExplainer
from explainers.question import Question


def class_questions(
    adapter: SegmentationAdapter,
    image: np.ndarray,
    classes: Iterable[int] | None = None,
    labels: np.ndarray | None = None,
) -> dict[int, Question]:
    """{class: the question of its whole predicted region}, for the predicted classes of `image` in index order
    (or for `classes`, each of which must be predicted somewhere). `labels`: the (H, W) predicted label map, if
    already known (default: the argmax of `adapter.predict`)."""
    image = adapter.validate_image(image)
    labels = adapter.predict(image).argmax(-1) if labels is None else np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"The label map is {labels.shape} but the image is {image.shape[:2]}; they must match.")
    present = [int(c) for c in np.unique(labels)]
    chosen = present if classes is None else [adapter.validate_target(c) for c in dict.fromkeys(classes)]
    absent = [c for c in chosen if c not in present]
    if absent:
        names = ", ".join(f"“{adapter.class_names[c]}”" for c in absent)
        raise ValueError(f"No pixel of the image is predicted as {names}: there is no region to explain.")
    return {c: Question(labels == c, c, label="class") for c in chosen}


def explain_classes(
    adapter: SegmentationAdapter,
    image: np.ndarray,
    method: str = "gradcam",
    layer: str | None = None,
    classes: Iterable[int] | None = None,
    params: dict[str, Any] | None = None,
    progress: Progress | None = None,
    *,
    labels: np.ndarray | None = None,
) -> dict[int, Attribution]:
    """{class: Attribution} for every predicted class (or `classes`), each for its whole predicted region.

    Args:
        adapter: the adapted segmentation model.
        image: (H, W, 3) uint8.
        method: a registry name; for a CAM method the backward passes share one forward pass.
        layer: CAM methods: the conv layer shown (default: the adapter's default layer); also settable in `params`.
        classes: the classes to explain (default: every class predicted somewhere in the image).
        params: the method's parameters, as for `explain` (e.g. {"all_layers": False} to stop the backward passes at
            `layer`).
        progress: callable(fraction, message).
        labels: the predicted label map, if already known.

    A CAM attribution's `seconds` is its share of the one shared computation (total / number of classes).
    """
    explainer = registry.get(method)
    params = dict(params or {})
    if layer is not None:
        if not explainer.is_cam:
            raise ValueError(f"{explainer.label} has no layers; a layer applies to the CAM methods only.")
        params["layer"] = layer
    resolved = explainer.resolve_params(params)
    explainer.check_available(adapter)
    image = adapter.validate_image(image)
    questions = class_questions(adapter, image, classes, labels)
    report = progress or no_progress
    if not isinstance(explainer, CAMExplainer):
        results: dict[int, Attribution] = {}
        for index, (target, question) in enumerate(questions.items()):
            results[target] = explainer.explain(adapter, image, question, params=resolved)
            report((index + 1) / len(questions), f"{explainer.label}: {adapter.class_names[target]} done")
        return results
    start = time.perf_counter()
    section = contextlib.nullcontext() if explainer.exclusive_gradients else GRADIENT_LOCK.shared()
    with section:
        fields = explainer.compute_many(adapter, image, list(questions.values()), resolved)
    share = (time.perf_counter() - start) / len(questions)
    report(1.0, f"{explainer.label}: every class done")
    return {
        target: Attribution(
            method=explainer.name,
            heatmap=np.asarray(entry.pop("heatmap"), dtype=np.float32),
            seconds=share,
            params=resolved,
            **entry,
        )
        for target, entry in zip(questions, fields, strict=True)
    }
