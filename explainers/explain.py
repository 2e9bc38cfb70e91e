"""`explain`: run several attribution methods for the same (image, region, target) question."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from explainers import registry
from explainers.adapter import SegmentationAdapter
from explainers.attribution import Attribution
from explainers.base import Progress, no_progress

DEFAULT_METHODS = ("gradcam", "saliency", "shap")


def explain(
    adapter: SegmentationAdapter,
    image: np.ndarray,
    region: np.ndarray,
    target: int,
    methods: Iterable[str] = DEFAULT_METHODS,
    params: dict[str, dict[str, Any]] | None = None,
    progress: Progress | None = None,
) -> dict[str, Attribution]:
    """Attribute S_target(image; region) with each method; returns {method name: Attribution} in the given order.

    Args:
        adapter: the adapted segmentation model.
        image: (H, W, 3) uint8.
        region: (H, W) boolean mask of the pixels whose mean class logit is explained.
        target: class index.
        methods: registry names (see `registry.available()`).
        params: per-method parameters, e.g. {"integrated_gradients": {"steps": 128}}.
        progress: callable(fraction in [0, 1], message) for the whole run.

    Raises:
        ValueError: with a human-readable message for a bad image, an empty or misshapen region, a target out of
            range, an unknown method or an unknown parameter. Inputs are checked before any method runs.
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
    region = adapter.validate_region(region, image.shape[:2])
    target = adapter.validate_target(target)
    report = progress or no_progress
    results: dict[str, Attribution] = {}
    for index, explainer in enumerate(explainers):

        def method_progress(fraction: float, message: str, index: int = index) -> None:
            report((index + min(max(fraction, 0.0), 1.0)) / len(explainers), message)

        results[explainer.name] = explainer.explain(
            adapter, image, region, target, params=resolved[explainer.name], progress=method_progress
        )
        report((index + 1) / len(explainers), f"{explainer.label}: done")
    return results
