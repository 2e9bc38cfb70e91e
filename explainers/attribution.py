"""The result of one attribution method for one (image, region, target) question."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Attribution:
    """An attribution map at image resolution, RAW (not normalised; signed where the method is).

    Attributes:
        method: registry name of the method that made it.
        heatmap: (H, W) float32 map; for CAM methods, the map of `layer`.
        score: S(x), the adapted model's score on the explained image.
        seconds: wall time of the computation.
        params: the method parameters actually used (defaults filled in).
        per_layer: CAM methods only: {conv layer name: (H, W) map} for every conv layer, from one backward pass.
        layer: CAM methods only: the layer `heatmap` comes from (the last conv layer).
        baseline_score: additive methods only: sum(heatmap) ~= score - baseline_score.
        diagnostics: numbers a method reports about its own run (e.g. Integrated Gradients' steps used and
            completeness error).
    """

    method: str
    heatmap: np.ndarray
    score: float
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)
    per_layer: Mapping[str, np.ndarray] | None = None
    layer: str | None = None
    baseline_score: float | None = None
    diagnostics: dict[str, float] = field(default_factory=dict)

    def for_layer(self, layer: str) -> np.ndarray:
        """The map of one conv layer (CAM methods), or the heatmap for methods without layers."""
        if self.per_layer is None:
            return self.heatmap
        if layer not in self.per_layer:
            raise KeyError(f"{self.method} has no map for layer {layer!r}; layers: {list(self.per_layer)}")
        return self.per_layer[layer]
