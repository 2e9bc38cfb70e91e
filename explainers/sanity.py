"""Sanity check of attribution methods by cascading model-parameter randomization.

Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018: if a map barely changes when the network's learned
weights are replaced by random ones, the map cannot be explaining what the network learned (it may be an edge
detector of the input). Cascading randomization re-initialises the weights from the logits toward the input, block
after block, and compares each method's map with the map of the trained network after every step.

How it is done here:

- The user's model is never touched: the model backend clones it once (its own weights, equal to the user's; Keras:
  `clone_model` + `set_weights`, torch: a deep copy), and an adapter is built on the clone
  (`SegmentationAdapter.with_backend`: same class names and preprocess). Each step only puts weights back into the
  clone (the backend's `snapshot` / `restore`), with no retracing.
- Weighted layers are taken in forward order from the logits toward the input, as the backend's randomization units:
  a normalisation layer (e.g. BatchNormalization) stays with the conv layer that feeds it. The logits unit is the
  first step on its own; the rest are split into contiguous blocks so that there are at most `max_depths` steps
  (default 8: on the demo U-Net each decoder level with its up-sampling, the bottleneck and each encoder level).
- Re-initialisation is the backend's, seeded: the network's state before training, as in the paper (Keras: each
  weight's own initializer from the layer; torch: each module's `reset_parameters`, BatchNorm running statistics
  included).
- Similarity: Spearman rank correlation of the RAW (signed) maps, and SSIM (skimage) of the raw maps each scaled by
  its max |value| into [-1, 1] (data range 2). The paper reports both the absolute-value and the signed rank
  correlation; we take the signed one because on a REGION score |gradient| is dominated by the distance to the
  region (the receptive field decays away from it, whatever the weights): on the demo U-Net, Spearman(|saliency|,
  -distance to the region's centre) is 0.93 for the trained AND for the fully randomized network, so |map| keeps a
  0.95 correlation after every weight is random, while the signed correlation falls to 0.0 (and |map| inside the
  region to 0.01). The absolute-value correlation is still reported, in `spearman_abs`. CAMs are non-negative, so
  both agree for them. A constant map (e.g. an all-zero ReLU'd CAM of a random layer) has no ranking: its Spearman
  is NaN.
- A method is flagged when its map still has Spearman >= `threshold` (default 0.5) with the original after the
  LAST step, i.e. with every block randomized: such a map does not depend on what the network learned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from skimage.metrics import structural_similarity

from explainers.adapter import SegmentationAdapter
from explainers.agreement import rank_correlation
from explainers.explain import explain
from explainers.question import Question

DEFAULT_THRESHOLD = 0.5
DEFAULT_DEPTHS = 8


@dataclass(frozen=True)
class SanityResult:
    """Per-method similarity of the map with the trained network's map after each cascading step.

    depths[i] is the layer randomized last at step i (logits first, toward the input); blocks[i] every layer
    randomized at that step. Arrays in `spearman` (raw maps), `spearman_abs` (|map|) and `ssim` have one value per
    depth; `maps[method]` holds the trained map (index 0) and the map after every step.
    """

    depths: list[str]
    spearman: dict[str, np.ndarray]
    ssim: dict[str, np.ndarray]
    flagged: dict[str, bool]
    threshold: float
    blocks: list[list[str]] = field(default_factory=list)
    spearman_abs: dict[str, np.ndarray] = field(default_factory=dict)
    maps: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (depths + 1, H, W); index 0 = trained
    seconds: float = 0.0


def cascade_steps(units: Sequence[Sequence[str]], max_depths: int | None = None) -> list[list[str]]:
    """The layers randomized at each cascading step, from a backend's randomization units (logits first): the logits
    unit first, the rest in contiguous blocks so that there are at most `max_depths` steps (None: DEFAULT_DEPTHS)."""
    depths = DEFAULT_DEPTHS if max_depths is None else int(max_depths)
    if depths < 1:
        raise ValueError(f"max_depths must be at least 1; got {max_depths!r}.")
    units = [list(unit) for unit in units]
    if not units:
        raise ValueError("The model has no weights to randomize.")
    if depths == 1:
        return [[name for unit in units for name in unit]]
    head, rest = units[0], units[1:]
    chunks = [chunk for chunk in np.array_split(np.arange(len(rest)), min(depths - 1, len(rest))) if len(chunk)]
    return [head] + [[name for i in chunk for name in rest[i]] for chunk in chunks]


def _scaled(heatmap: np.ndarray) -> np.ndarray:
    heatmap = np.asarray(heatmap, dtype=np.float64)
    peak = np.abs(heatmap).max()
    return heatmap / peak if peak > 0 else heatmap


def map_ssim(first: np.ndarray, second: np.ndarray) -> float:
    """SSIM of two raw maps after scaling each by its max |value| into [-1, 1] (data range 2)."""
    side = min(first.shape)
    win_size = min(7, side if side % 2 else side - 1)
    if win_size < 3:
        raise ValueError(f"Maps of shape {first.shape} are too small for SSIM (needs at least 3x3).")
    return float(structural_similarity(_scaled(first), _scaled(second), data_range=2.0, win_size=win_size))


class RandomizationCascade:
    """The clone of a model and its randomized weights for every cascading step, reusable across images.

    Building it clones the model and draws the random weights once; `run` then costs one `explain` per step (the
    clone's adapter is traced once, on the first run, and each step only re-assigns variables). Keep one per model
    to check many images. `run` holds a lock: the clone's weights are shared state.
    """

    def __init__(self, adapter: SegmentationAdapter, *, seed: int = 0, max_depths: int | None = None) -> None:
        self.adapter = adapter
        self.seed = seed
        if not adapter.gradients or not callable(getattr(adapter.backend, "clone", None)):
            why = adapter.why_no_gradients or "its backend cannot clone it"
            raise ValueError(f"The sanity check needs a model whose weights can be copied and re-initialised; this "
                             f"{adapter.framework} model cannot ({why}).")  # fmt: skip
        self.steps = cascade_steps(adapter.backend.randomization_units(), max_depths)
        self.depths = [block[-1] for block in self.steps]
        self._clone = adapter.backend.clone()
        self._trained = self._clone.snapshot()
        self._random: list[Any] = []
        for index, block in enumerate(self.steps):
            self._clone.reinitialise(block, seed=seed * 1000 + index)
            self._random.append(self._clone.snapshot(block))
        self._clone.restore(self._trained)
        self._randomized = adapter.with_backend(self._clone)
        self._lock = threading.Lock()

    def run(
        self,
        image: np.ndarray,
        region: np.ndarray | Question,
        target: int | None,
        methods: Sequence[str],
        *,
        params: dict[str, dict[str, Any]] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        progress: Callable[[float], None] | None = None,
        contrast: int | None = None,
    ) -> SanityResult:
        """See `cascading_randomization`."""
        start = time.perf_counter()
        methods = list(dict.fromkeys(methods))
        report = progress or (lambda fraction: None)
        parts = len(self.steps) + 1  # the trained maps, then one part per randomization depth

        def within(part: int) -> Callable[[float, str], None]:
            """Progress inside one part (between the methods' batches: a cancelled job stops there)."""
            return lambda fraction, message="": report((part + min(max(fraction, 0.0), 1.0)) / parts)

        question = self.adapter.question(region, target, contrast, np.asarray(image).shape[:2])
        original = explain(self.adapter, image, question, methods=methods, params=params, progress=within(0))
        report(1 / parts)
        maps = {name: [original[name].heatmap] for name in methods}
        with self._lock:
            try:
                for index, randomized in enumerate(self._random):
                    self._clone.restore(randomized)  # cumulative: blocks 0..index are random now
                    self._randomized.clear_cache()
                    results = explain(self._randomized, image, question, methods=methods, params=params,
                                      progress=within(index + 1))  # fmt: skip
                    for name in methods:
                        maps[name].append(results[name].heatmap)
                    report((index + 2) / parts)
            finally:
                self._clone.restore(self._trained)
                self._randomized.clear_cache()
        return compare_maps(maps, self.steps, threshold, time.perf_counter() - start)


def compare_maps(
    maps: dict[str, list[np.ndarray]], steps: list[list[str]], threshold: float, seconds: float = 0.0
) -> SanityResult:
    """The SanityResult for {method: [trained map, map after step 1, ...]}."""

    def per_depth(compare: Callable[[np.ndarray, np.ndarray], float], name: str) -> np.ndarray:
        return np.array([compare(maps[name][0], later) for later in maps[name][1:]])

    spearman = {name: per_depth(rank_correlation, name) for name in maps}
    absolute = {name: per_depth(lambda a, b: rank_correlation(np.abs(a), np.abs(b)), name) for name in maps}
    ssim = {name: per_depth(map_ssim, name) for name in maps}
    flagged = {name: bool(np.nan_to_num(spearman[name][-1], nan=-np.inf) >= threshold) for name in maps}
    return SanityResult(
        depths=[block[-1] for block in steps],
        spearman=spearman,
        ssim=ssim,
        flagged=flagged,
        threshold=float(threshold),
        blocks=steps,
        spearman_abs=absolute,
        maps={name: np.stack(stack).astype(np.float32) for name, stack in maps.items()},
        seconds=seconds,
    )


_SHARED_LOCK = threading.Lock()


def shared_cascade(adapter: SegmentationAdapter, *, seed: int = 0, max_depths: int | None = None
                   ) -> RandomizationCascade:  # fmt: skip
    """The one `RandomizationCascade` of `adapter` for (`seed`, `max_depths`), built on first use and kept with the
    adapter (so it lives as long as the adapter does): a server checking many questions clones and traces the model
    once, instead of a new clone per check that stays in memory. It snapshots the weights when built: for a model
    whose weights change afterwards, build a new `RandomizationCascade`."""
    with _SHARED_LOCK:
        cascades = adapter.__dict__.setdefault("_shared_sanity_cascades", {})
        key = (int(seed), max_depths)
        if key not in cascades:
            cascades[key] = RandomizationCascade(adapter, seed=seed, max_depths=max_depths)
        return cascades[key]


def cascading_randomization(
    adapter: SegmentationAdapter,
    image: np.ndarray,
    region: np.ndarray | Question,
    target: int | None,
    methods: Sequence[str],
    *,
    params: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
    max_depths: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    progress: Callable[[float], None] | None = None,
    contrast: int | None = None,
    reuse: bool = False,
) -> SanityResult:
    """Run `methods` on the trained model and after each cascading randomization step; compare the maps.

    Args:
        methods: registry names (leave slow ones out to keep it quick: the methods run once per step, plus once).
        params: per-method parameters, as for `explain` (e.g. a CAM layer).
        seed: seeds the re-initialisation.
        max_depths: at most this many steps (the layers are grouped into blocks; None: DEFAULT_DEPTHS).
        threshold: raw-map Spearman at the last step at or above which a method is flagged.
        progress: callable(fraction in [0, 1]), rising through the trained maps and every step, between the
            methods' batches too (a background job's cancellation points).
        contrast: explain "target rather than contrast" (or give a `Question` in place of region and target).
        reuse: use the adapter's `shared_cascade` (built on the first call, kept with the adapter) instead of a new
            cascade for this call.

    Builds a `RandomizationCascade` (clone + tracing, a few seconds on the demo model); to check many images, build
    one cascade and call its `run`.
    """
    cascade = (shared_cascade(adapter, seed=seed, max_depths=max_depths) if reuse
               else RandomizationCascade(adapter, seed=seed, max_depths=max_depths))  # fmt: skip
    return cascade.run(
        image, region, target, methods, params=params, threshold=threshold, progress=progress, contrast=contrast
    )
