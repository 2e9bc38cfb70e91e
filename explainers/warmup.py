"""Prepare a model for an image size before a request needs it: trace and compile the fast pass off the request path.

The Keras backend runs the fast set (the four CAMs at every layer, saliency, gradient x input) as one XLA-compiled step
per image size; the first call at a size traces and compiles it, which costs seconds on a real-size model (about 8 s
for a 512x512 DeepLabV3+ on two cores). `prepare(adapter, size)` makes that call on a grey image, so the first real
selection at that size costs what a later one does. The app prepares in a background thread
(`prepare_in_background`): once at start-up for a fixed-size model, and when an image of a new size arrives for a
model of dynamic size. `preparing(adapter, size)` tells whether that is still under way, so the app can say
"preparing the model…" to a user who is faster. A step already traced is looked up without the backend's lock, so
preparing one size never blocks a request at another. Torch and onnxruntime have nothing to trace; preparing them
only runs one pass.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from explainers.adapter import SegmentationAdapter

log = logging.getLogger(__name__)
_PREPARED: dict[int, set[tuple[int, int]]] = {}  # adapter id -> sizes started (running or done)
_RUNNING: dict[int, set[tuple[int, int]]] = {}  # adapter id -> sizes still being prepared
_GUARD = threading.Lock()


def prepare(adapter: SegmentationAdapter, size: tuple[int, int]) -> None:
    """Run the prediction and the fast pass once at `size` (H, W) on a grey image (a box as the region, class 0)."""
    from explainers.cam import cam_explainers

    height, width = int(size[0]), int(size[1])
    image = np.full((height, width, 3), 127, dtype=np.uint8)
    adapter.predict(image)
    if not adapter.gradients or not adapter.conv_layers:
        return
    region = np.zeros((height, width), dtype=bool)
    region[height // 4 : max(height // 2, height // 4 + 1), width // 4 : max(width // 2, width // 4 + 1)] = True
    combiners = {name: explainer.combine for name, explainer in cam_explainers().items()}
    adapter.layer_maps(image, region, 0, combiners=combiners)


def prepare_in_background(adapter: SegmentationAdapter, size: tuple[int, int]) -> threading.Thread | None:
    """`prepare(adapter, size)` in a daemon thread, once per adapter and size; None when it was already started."""
    size = (int(size[0]), int(size[1]))
    with _GUARD:
        done = _PREPARED.setdefault(id(adapter), set())
        if size in done:
            return None
        done.add(size)
        _RUNNING.setdefault(id(adapter), set()).add(size)

    def run() -> None:
        try:
            prepare(adapter, size)
        except Exception:  # a warm-up only: the request that needs the step reports any real error itself
            log.exception("preparing the model for %s failed", size)
        finally:
            with _GUARD:
                _RUNNING.get(id(adapter), set()).discard(size)

    thread = threading.Thread(target=run, name=f"segx-prepare-{size[0]}x{size[1]}", daemon=True)
    thread.start()
    return thread


def preparing(adapter: SegmentationAdapter, size: tuple[int, int]) -> bool:
    """True while `prepare_in_background(adapter, size)` is still running."""
    with _GUARD:
        return (int(size[0]), int(size[1])) in _RUNNING.get(id(adapter), set())
