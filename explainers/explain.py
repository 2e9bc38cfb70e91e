"""`explain`: run several attribution methods for the same question (image, region, target, contrast)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from explainers import registry
from explainers.adapter import SegmentationAdapter
from explainers.attribution import Attribution
from explainers.base import Progress, no_progress
from explainers.question import Question

DEFAULT_METHODS = ("gradcam", "saliency", "shap")


def explain(
    adapter: SegmentationAdapter,
    image: np.ndarray,
    region: np.ndarray | Question,
    target: int | None = None,
    methods: Iterable[str] = DEFAULT_METHODS,
    params: dict[str, dict[str, Any]] | None = None,
    progress: Progress | None = None,
    *,
    contrast: int | None = None,
) -> dict[str, Attribution]:
    """Attribute the question's score with each method; returns {method name: Attribution} in the given order.

    The score is S_target(image; region), the target's mean logit over the region, or with a `contrast` class c'
    the mean of z_target - z_c' ("why target rather than c'?"). A `Question` may be given in place of `region`.

    Args:
        adapter: the adapted segmentation model.
        image: (H, W, 3) uint8.
        region: (H, W) boolean mask of the pixels whose mean class logit is explained, or a `Question`.
        target: class index (not with a Question).
        methods: registry names (see `registry.available()`).
        params: per-method parameters, e.g. {"integrated_gradients": {"steps": 128}}.
        progress: callable(fraction in [0, 1], message) for the whole run.
        contrast: None, or the class the target is contrasted with (not with a Question).

    Raises:
        ValueError: with a human-readable message for a bad image, an empty or misshapen region, a target out of
            range, a contrast equal to the target, an unknown method or an unknown parameter. Inputs are checked before
            any method runs.
        GradientsUnavailable: (a ValueError) a method needs gradients that the model (a black box) does not give.
    """
    methods = list(dict.fromkeys(methods))
    if not methods:
        raise ValueError("Choose at least one attribution method.")
    explainers = [registry.get(name) for name in methods]
    params = params or {}
    unknown = set(params) - set(methods)
    if unknown:
        raise ValueError(f"Parameters given for method(s) not asked for: {sorted(unknown)}.")
    resolved = {ex.name: ex.resolve_params(params.get(ex.name)) for ex in explainers}
    for explainer in explainers:
        explainer.check_available(adapter)
    image = adapter.validate_image(image)
    question = adapter.question(region, target, contrast, image.shape[:2])
    report = progress or no_progress
    results: dict[str, Attribution] = {}
    # The CAM methods run first: their one forward+backward pass (every conv layer) also gives dS/dx, which the adapter
    # keeps, so saliency and gradient x input asked for with them cost no second pass.
    for index, explainer in enumerate(sorted(explainers, key=lambda explainer: not explainer.is_cam)):

        def method_progress(fraction: float, message: str, index: int = index) -> None:
            report((index + min(max(fraction, 0.0), 1.0)) / len(explainers), message)

        # validated above, once for every method: run, not explain (which would check it all again)
        results[explainer.name] = explainer.run(adapter, image, question, resolved[explainer.name], method_progress)
        report((index + 1) / len(explainers), f"{explainer.label}: done")
    return {name: results[name] for name in methods}
