"""Plain records the state store keeps: the dashboard's own small dataclasses over numpy arrays, never engine objects.

What is pickled into the store must read back in any process of the deployment (a web worker that never loaded a
model, a Celery worker) without the engine's classes or a framework: moving the layer slider or drawing a card needs
no TensorFlow and no torch.

Maps are stored compactly (`compact` / `expand`): float16 after dividing by the map's largest magnitude, with that
scale kept as a float. A map then keeps a relative precision of 2^-11 of its largest value wherever its values lie
(plain float16 would flush the 1e-8 gradients of a saliency map to zero), which is far finer than the 8-bit colour
scale the cards draw and than any ranking the trust metrics make; it halves what a question stores. The export
writes these stored values as float32.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import zstandard

from explainers.resize import bilinear_resize


def compact(array: np.ndarray) -> tuple[np.ndarray, float]:
    """(float16 array, scale) with array * scale == the map to 2^-11 of its largest magnitude (scale 1 for a zero or
    non-finite-free map of zeros)."""
    values = np.asarray(array, dtype=np.float32)
    finite = values[np.isfinite(values)]
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    scale = scale if scale > 0 else 1.0
    return (values / np.float32(scale)).astype(np.float16), scale


def expand(array: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The float32 map a `compact` pair stands for (a float32 array with scale 1 passes through as a copy)."""
    return np.asarray(array, dtype=np.float32) * np.float32(scale)


ZSTD_LEVEL = 1  # PackedMap's Zstandard level for new maps


@dataclass(frozen=True)
class PackedMap:
    """A float16 array compressed losslessly; `unpack()` gives it back bit for bit.

    New maps are compressed with Zstandard at level 1: on a 512x512 DeepLabV3+ question (352 CAM maps, 6.7 MB of
    float16) that takes 6 ms for 2.3 MB, where zlib level 1 took 51 ms for the same size, on the request path of every
    selection. `codec` is "zlib" in records stored before that (a pickle without the field reads as zlib)."""

    shape: tuple[int, ...]
    data: bytes
    codec: str = "zlib"

    @classmethod
    def of(cls, array: np.ndarray) -> PackedMap:
        values = np.ascontiguousarray(array, dtype=np.float16)
        return cls(tuple(int(n) for n in values.shape), zstandard.compress(values.tobytes(), ZSTD_LEVEL), "zstd")

    def unpack(self) -> np.ndarray:
        raw = zstandard.decompress(self.data) if self.codec == "zstd" else zlib.decompress(self.data)
        return np.frombuffer(raw, dtype=np.float16).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        """The bytes it stores."""
        return len(self.data)


@dataclass(frozen=True)
class LayerMapsRecord:
    """One CAM method's map for every conv layer, each at the layer's own resolution (compact: float16 with a scale
    per layer, each layer packed on its own), and the image size they are shown at. `at(layer)` upsamples one of them
    (bilinear, half-pixel centres: the engine's own upsampling); `native_map(layer)` gives it at its own resolution."""

    size: tuple[int, int]
    native: dict[str, PackedMap | np.ndarray]  # an ndarray in records stored before maps were packed
    scales: dict[str, float] | None = None

    @classmethod
    def of(cls, per_layer: Mapping[str, np.ndarray], size: tuple[int, int]) -> LayerMapsRecord:
        """From the engine's per-layer maps (their native resolution when it keeps one, else the maps as given)."""
        native_of = getattr(per_layer, "native", None)
        pairs = {name: compact(native_of(name) if native_of else per_layer[name]) for name in per_layer}
        return cls((int(size[0]), int(size[1])), {name: PackedMap.of(pair[0]) for name, pair in pairs.items()},
                   {name: pair[1] for name, pair in pairs.items()})  # fmt: skip

    def __contains__(self, layer: object) -> bool:
        return layer in self.native

    @property
    def layers(self) -> list[str]:
        return list(self.native)

    def native_map(self, layer: str) -> np.ndarray:
        """The float32 map of `layer` at the layer's own resolution."""
        stored = self.native[layer]
        values = stored.unpack() if isinstance(stored, PackedMap) else stored
        return expand(values, (self.scales or {}).get(layer, 1.0))

    def at(self, layer: str) -> np.ndarray:
        """The (H, W) float32 map of `layer` at image size."""
        native = self.native_map(layer)
        if native.shape == self.size:
            return native
        return bilinear_resize(native, self.size).astype(np.float32)
