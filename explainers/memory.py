"""Batch sizes from a memory budget, and the measured throughput that time estimates come from.

Integrated Gradients, SmoothGrad, SHAP Partition and the deletion/insertion curves evaluate the model on many images.
A fixed batch size is wrong both ways: 32 images of 512x512 through a DeepLab-class network need gigabytes, while the
128x128 demo model could take hundreds. So the batch size comes from the model's **measured activation memory** at
the image size in use and a **memory budget**:

- `activation_bytes` (a `ModelBackend` member, measured once per input size and kept by the adapter): the bytes of the
  intermediate tensors one image's forward pass creates, counted by the framework itself. Keras: every tensor of the
  traced forward graph (TensorFlow's own shapes for that size, weights excluded). PyTorch: every tensor autograd saves
  for the backward pass in one forward with gradients on (`torch.autograd.graph.saved_tensors_hooks`), plus the
  logits. onnxruntime: every intermediate value of the shape-inferred graph at that size.
- A gradient batch (forward + backward) holds about the saved activations plus their gradients:
  `GRADIENT_FACTOR` x activation bytes per image (the counts are upper bounds already: TensorFlow fuses some of the
  tensors it counts). A forward-only batch frees tensors as it goes; `FORWARD_FACTOR` bounds it. The factors are
  checked against peak-RSS measurements (`python -m benchmarks.memory_budget`, which also checks
  that an Integrated Gradients run at 512x512 stays within the budget).
- The budget: `--memory-budget` (app) / `SEGX_MEMORY_BUDGET` (environment) / `SegmentationAdapter.memory_budget`
  (Python), in bytes or with a unit ("1.5GB", "800MB"). The default is a quarter of the machine's physical memory,
  at most 4 GiB: the server also keeps the model, other sessions and their stored results.

An explicit `batch_size` parameter of a method still wins; the budget only replaces the fixed defaults.

`Throughput` records how long the adapter's model calls took per image (forward and gradient batches, by image
size), so a slow method's time can be estimated before it starts (`explainers.estimate`).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator

GRADIENT_FACTOR = 1.5  # a forward+backward image: the saved activations plus the gradient buffers alive at once
FORWARD_FACTOR = 1.0  # a forward-only image: at most every intermediate tensor alive at once
MAX_BATCH = 256  # more images per call buys no speed on a CPU and only delays progress reports
DEFAULT_SHARE = 0.25
DEFAULT_CAP = 4 * 1024**3
KINDS = ("gradient", "forward")
# Batches where the activation memory is unknown (a backend that cannot count it): the sizes used before budgets.
FALLBACK_BATCH = {"gradient": 32, "forward": 64}

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}
_UNITS.update({"kib": 1024, "mib": 1024**2, "gib": 1024**3})


def parse_bytes(text: str | int | float) -> int:
    """A byte count from a number or a string with a unit ("1.5GB", "800 MB", "2GiB"; units are powers of 1024).

    Raises:
        ValueError: with the accepted forms, for anything else or a budget under 1 MB.
    """
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
        unit = match.group(2).lower() if match else None
        if not match or unit not in _UNITS:
            raise ValueError(f"Cannot read the memory budget {text!r}: give bytes or a number with a unit, "
                             "e.g. 2GB or 800MB.")  # fmt: skip
        value = float(match.group(1)) * _UNITS[unit]
    if value < 1024**2:
        raise ValueError(f"A memory budget of {int(value)} bytes is too small to run a model; give at least 1MB.")
    return int(value)


def physical_memory() -> int | None:
    """The machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def default_budget() -> int:
    """`SEGX_MEMORY_BUDGET` when set, else a quarter of physical memory capped at 4 GiB (1 GiB if unknown)."""
    configured = os.environ.get("SEGX_MEMORY_BUDGET")
    if configured:
        return parse_bytes(configured)
    memory = physical_memory()
    return int(min(DEFAULT_SHARE * memory, DEFAULT_CAP)) if memory else 1024**3


def per_image_bytes(activation_bytes: int, kind: str) -> float:
    """Estimated memory one image of a batch of `kind` ("gradient" or "forward") needs."""
    if kind not in KINDS:
        raise ValueError(f"Unknown batch kind {kind!r}; use one of {KINDS}.")
    return activation_bytes * (GRADIENT_FACTOR if kind == "gradient" else FORWARD_FACTOR)


def batch_size_for(activation_bytes: int | None, kind: str, budget: int, wanted: int, fallback: int) -> int:
    """How many of `wanted` images to run at once within `budget` bytes: at least 1 (one image must run whatever the
    budget), at most `wanted` and MAX_BATCH; `fallback` (capped by `wanted`) when the activation memory is unknown."""
    wanted = max(int(wanted), 1)
    if not activation_bytes:
        return max(1, min(int(fallback), wanted))
    fits = int(budget // max(per_image_bytes(activation_bytes, kind), 1.0))
    return max(1, min(fits, wanted, MAX_BATCH))


def describe(activation_bytes: int | None, kind: str, budget: int, batch: int) -> str:
    """One line for logs and the app: the batch chosen and why."""
    if not activation_bytes:
        return f"batch of {batch} (activation memory unknown for this model)"
    return (f"batch of {batch}: {per_image_bytes(activation_bytes, kind) / 1024**2:.0f} MB per {kind} image within a "
            f"{budget / 1024**3:.2f} GB budget")  # fmt: skip


class Throughput:
    """Seconds per image of the model calls made so far, per (kind, image size): an exponential moving average of
    each call's wall time divided by its images, thread-safe. The first call at a size usually pays for tracing, so
    it stands only until the second call replaces it."""

    SMOOTHING = 0.3  # weight of the newest call

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[tuple[str, tuple[int, int]], float] = {}
        self._calls: dict[tuple[str, tuple[int, int]], int] = {}

    @contextlib.contextmanager
    def timing(self, kind: str, size: tuple[int, ...], images: int) -> Iterator[None]:
        """Time the body as one call of `images` images of `size` (H, W); a call that raises is not recorded."""
        start = time.perf_counter()
        yield
        self.record(kind, size, images, time.perf_counter() - start)

    def record(self, kind: str, size: tuple[int, ...], images: int, seconds: float) -> None:
        """Count one call of `images` images of `size` that took `seconds`."""
        if kind not in KINDS or images < 1:
            return
        key = (kind, (int(size[0]), int(size[1])))
        per_image = seconds / images
        with self._lock:
            calls = self._calls[key] = self._calls.get(key, 0) + 1
            previous = self._seconds.get(key)
            self._seconds[key] = per_image if calls <= 2 else (
                self.SMOOTHING * per_image + (1 - self.SMOOTHING) * previous)  # fmt: skip

    def seconds_per_image(self, kind: str, size: tuple[int, ...]) -> float | None:
        """The measured seconds per image of `kind` at `size`, or None before any such call."""
        with self._lock:
            return self._seconds.get((kind, (int(size[0]), int(size[1]))))
