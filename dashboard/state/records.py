"""Plain records the state store keeps: the dashboard's own small dataclasses over numpy arrays, never engine objects.

What is pickled into the store must read back in any process of the deployment (a web worker that never loaded a
model, a Celery worker) without the engine's classes or a framework: moving the layer slider or drawing a card needs
no TensorFlow and no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from explainers.resize import bilinear_resize


@dataclass(frozen=True)
class LayerMapsRecord:
    """One CAM method's map for every conv layer, each at the layer's own resolution, and the image size they are
    shown at. `at(layer)` upsamples one of them (bilinear, half-pixel centres: the engine's own upsampling)."""

    size: tuple[int, int]
    native: dict[str, np.ndarray]

    @classmethod
    def of(cls, per_layer: Mapping[str, np.ndarray], size: tuple[int, int]) -> LayerMapsRecord:
        """From the engine's per-layer maps (their native resolution when it keeps one, else the maps as given)."""
        native_of = getattr(per_layer, "native", None)
        native = {
            name: np.array(native_of(name) if native_of else per_layer[name], dtype=np.float32) for name in per_layer
        }
        return cls((int(size[0]), int(size[1])), native)

    def __contains__(self, layer: object) -> bool:
        return layer in self.native

    @property
    def layers(self) -> list[str]:
        return list(self.native)

    def at(self, layer: str) -> np.ndarray:
        """The (H, W) float32 map of `layer` at image size."""
        native = self.native[layer]
        if native.shape == self.size:
            return native.astype(np.float32, copy=True)
        return bilinear_resize(native, self.size).astype(np.float32)
