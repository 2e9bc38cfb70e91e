"""How long a method will take, estimated before it starts from the model's measured throughput.

Each method says how many model evaluations of each kind its parameters cost (`Explainer.evaluations`: forward-only
images and forward+backward "gradient" images; e.g. Integrated Gradients with 64 steps at least 65 gradient images,
SHAP Partition with 300 evaluations 301 forward images). The adapter measures the seconds per image of every model
call it makes (`SegmentationAdapter.throughput`, explainers.memory.Throughput); an estimate multiplies the two. Before
any gradient call was timed at this size, a gradient image is taken to cost GRADIENT_OVER_FORWARD forward images (a
backward pass costs about two forward passes). With nothing measured yet, there is no estimate (None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from explainers import registry

if TYPE_CHECKING:
    from explainers.adapter import SegmentationAdapter

GRADIENT_OVER_FORWARD = 3.0


def estimated_seconds(
    adapter: SegmentationAdapter, method: str, params: Mapping[str, Any] | None, size: tuple[int, int]
) -> float | None:
    """Estimated wall time of `method` with `params` on an image of `size` (H, W); None before any model call at
    that size was measured. Raises ValueError for an unknown method or parameter."""
    explainer = registry.get(method)
    costs = explainer.evaluations(explainer.resolve_params(dict(params or {})))
    forward = adapter.throughput.seconds_per_image("forward", size)
    gradient = adapter.throughput.seconds_per_image("gradient", size)
    if gradient is None and forward is not None:
        gradient = GRADIENT_OVER_FORWARD * forward
    if forward is None and gradient is not None:
        forward = gradient / GRADIENT_OVER_FORWARD
    if forward is None or gradient is None:
        return None
    return costs.get("forward", 0) * forward + costs.get("gradient", 0) * gradient


def describe_seconds(seconds: float | None) -> str:
    """"about 4 s", "about 3 min", or "" for no estimate."""
    if seconds is None:
        return ""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    return f"about {round(seconds / 60)} min"
