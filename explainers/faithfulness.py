"""Faithfulness of an attribution map to the region score: deletion and insertion curves, and the inside share.

Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box Models", BMVC 2018, define two
causal metrics. *Deletion* removes pixels from the image in the order the map ranks them (most important first) and
follows the model's score as they go: a faithful map makes the score fall fast, so a LOW area under the curve is
good. *Insertion* starts from a baseline image with no signal and inserts the image's pixels in the same order: a
faithful map makes the score rise fast, so a HIGH area is good. Here the score is the adapter's region score S (the
mean class logit over the region, see `explainers.adapter`), so the curves ask "which pixels does the network need to
call THIS region THIS class".

Conventions used throughout (the tests check them against an independent numpy computation):

- Pixel order: by attribution value, descending. Ties (e.g. the zeros of a ReLU'd CAM) are broken by a fixed random
  permutation drawn from `seed`, the same permutation that gives the random-order curves, so a constant map
  reproduces the random-order curve exactly and no image corner is favoured.
- "Remove" replaces a pixel (all three channels) with the same pixel of the baseline image
  (`explainers.baselines.baseline_image`: "blur" by default, as RISE does for insertion, or "black"/"mean").
- `steps` K: the curves have K+1 points at fractions 0, 1/K, ..., 1 of the image's pixels; at fraction f the first
  round(f * H * W) pixels of the order are removed (deletion) or inserted (insertion). Deletion starts at S(x) and
  ends at S(x'); insertion starts at S(x') and ends at S(x). Every image of both curves is scored in ONE batched
  `adapter.score` call (2 (K+1) images).
- `Curve.auc`: trapezoid area under the RAW scores over the fractions, in the score's units (logits).
- `Curve.normalized_auc`: the same area after mapping the scores affinely so that the image scores 1 and the
  baseline 0: `(scores - S(x')) / (S(x) - S(x'))`. It is free of the logit scale and offset, so it can be averaged
  over images and regions: deletion falls from 1 to 0 (lower is better), insertion rises from 0 to 1 (higher is
  better). It is NaN when |S(x) - S(x')| < 1e-6 (the baseline already scores like the image: nothing to explain).
- `Faithfulness.deletion_gap` / `insertion_gap`: the normalised AUC's margin over random order, signed so that
  POSITIVE means better than random (random - method for deletion, method - random for insertion).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from explainers.adapter import SegmentationAdapter
from explainers.attribution import Attribution
from explainers.baselines import baseline_image
from explainers.question import Question

MIN_SPAN = 1e-6  # |S(x) - S(x')| below this: normalised AUCs are NaN


@dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve: scores at fractions of pixels removed/inserted (see the module docstring)."""

    fractions: np.ndarray  # (K+1,) from 0 to 1
    scores: np.ndarray  # (K+1,) raw region scores S
    auc: float  # trapezoid area under `scores` over `fractions`, score units
    normalized_auc: float  # trapezoid area after mapping S(image) -> 1, S(baseline) -> 0; NaN if they coincide
    image_score: float  # S(x)
    baseline_score: float  # S(x'), the fully removed image

    @property
    def normalized_scores(self) -> np.ndarray:
        """The scores mapped so that S(image) = 1 and S(baseline) = 0 (NaN if they coincide)."""
        return _normalise(self.scores, self.image_score, self.baseline_score)


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion curves of one method, the shared random-order curves, and the inside share."""

    method: str
    deletion: Curve
    insertion: Curve
    random_deletion: Curve
    random_insertion: Curve
    inside_share: float  # share of the positive attribution that lies inside the region, 0..1 (NaN if none)

    @property
    def deletion_gap(self) -> float:
        """Random-order minus method normalised deletion AUC: > 0 means the map beats random order."""
        return self.random_deletion.normalized_auc - self.deletion.normalized_auc

    @property
    def insertion_gap(self) -> float:
        """Method minus random-order normalised insertion AUC: > 0 means the map beats random order."""
        return self.insertion.normalized_auc - self.random_insertion.normalized_auc


def _normalise(scores: np.ndarray, image_score: float, baseline_score: float) -> np.ndarray:
    span = image_score - baseline_score
    if abs(span) < MIN_SPAN:
        return np.full(np.shape(scores), np.nan)
    return (np.asarray(scores, dtype=np.float64) - baseline_score) / span


def make_curve(fractions: np.ndarray, scores: np.ndarray, image_score: float, baseline_score: float) -> Curve:
    """A `Curve` with its raw and normalised trapezoid AUCs."""
    fractions = np.asarray(fractions, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    normalised = _normalise(scores, image_score, baseline_score)
    return Curve(
        fractions=fractions,
        scores=scores,
        auc=float(np.trapezoid(scores, fractions)),
        normalized_auc=float(np.trapezoid(normalised, fractions)),
        image_score=float(image_score),
        baseline_score=float(baseline_score),
    )


def tie_break_order(shape: tuple[int, int], seed: int) -> np.ndarray:
    """The fixed random permutation of pixel indices (raveled) used for random order and to break ties."""
    return np.random.default_rng(seed).permutation(int(np.prod(shape)))


def pixel_ranks(heatmap: np.ndarray | None, shape: tuple[int, int], seed: int) -> np.ndarray:
    """(H, W) int rank of every pixel in the removal order (0 = first), by value descending, ties by `seed`.

    `heatmap=None` gives the random order itself.
    """
    permutation = tie_break_order(shape, seed)
    if heatmap is None:
        order = permutation
    else:
        values = np.asarray(heatmap, dtype=np.float64).ravel()
        # lexsort: last key is primary. Primary: value descending; secondary: position in the random permutation.
        position = np.empty_like(permutation)
        position[permutation] = np.arange(permutation.size)
        order = np.lexsort((position, -values))
    ranks = np.empty(order.size, dtype=np.int64)
    ranks[order] = np.arange(order.size)
    return ranks.reshape(shape)


def step_counts(num_pixels: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Fractions (K+1,) from 0 to 1 and the number of pixels removed at each, round(f * num_pixels)."""
    fractions = np.linspace(0.0, 1.0, steps + 1)
    return fractions, np.rint(fractions * num_pixels).astype(np.int64)


def _check_heatmap(heatmap: np.ndarray, shape: tuple[int, int], name: str = "heatmap") -> np.ndarray:
    heatmap = np.asarray(heatmap)
    if heatmap.shape != tuple(shape):
        raise ValueError(f"The {name} is {heatmap.shape} but the image is {tuple(shape)}; they must match.")
    if not np.isfinite(heatmap).all():
        raise ValueError(f"The {name} has non-finite values (NaN or inf); it cannot rank the pixels.")
    return heatmap


def _curves_for_ranks(
    adapter: SegmentationAdapter,
    image: np.ndarray,
    reference: np.ndarray,
    question: Question,
    ranks: np.ndarray,
    steps: int,
) -> tuple[Curve, Curve]:
    fractions, counts = step_counts(ranks.size, steps)
    chosen = (ranks[None] < counts[:, None, None])[..., None]  # (K+1, H, W, 1): pixels removed / inserted so far
    pixels = image.astype(np.float32)[None]
    deleted = np.where(chosen, reference[None], pixels)
    inserted = np.where(chosen, pixels, reference[None])
    scores = adapter.score(np.concatenate([deleted, inserted]), question)
    deletion_scores, insertion_scores = scores[: steps + 1], scores[steps + 1 :]
    # Both curves share their end points' images (x and x'); take S(x), S(x') from the deletion curve.
    image_score, baseline_score = float(deletion_scores[0]), float(deletion_scores[-1])
    return (
        make_curve(fractions, deletion_scores, image_score, baseline_score),
        make_curve(fractions, insertion_scores, image_score, baseline_score),
    )


def _validate(
    adapter: SegmentationAdapter,
    image: np.ndarray,
    region: np.ndarray | Question,
    target: int | None,
    contrast: int | None,
    steps: int,
    baseline: str,
) -> tuple[np.ndarray, Question, np.ndarray]:
    image = adapter.validate_image(image)
    question = adapter.question(region, target, contrast, image.shape[:2])
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}.")
    reference = baseline_image(image, baseline)
    return image, question, reference


def deletion_insertion(
    adapter: SegmentationAdapter,
    image: np.ndarray,
    region: np.ndarray | Question,
    target: int | None,
    heatmap: np.ndarray | None,
    *,
    steps: int = 20,
    baseline: str = "blur",
    seed: int = 0,
    contrast: int | None = None,
) -> tuple[Curve, Curve]:
    """Deletion and insertion curves of the question's score (S_target(image; region), or with `contrast` the mean of
    z_target - z_contrast; a `Question` may replace region and target) for pixels ranked by `heatmap` (H, W).

    `heatmap=None` ranks pixels in random order (the `seed` permutation). One batched `adapter.score` call of
    2 (steps + 1) images. Raises ValueError for a bad image, region, target, heatmap, steps or baseline name.
    """
    image, question, reference = _validate(adapter, image, region, target, contrast, steps, baseline)
    if heatmap is not None:
        heatmap = _check_heatmap(heatmap, image.shape[:2])
    ranks = pixel_ranks(heatmap, image.shape[:2], seed)
    return _curves_for_ranks(adapter, image, reference, question, ranks, steps)


def region_share(heatmap: np.ndarray, region: np.ndarray) -> float:
    """Share of the positive attribution that falls inside the region: sum(max(h, 0)[region]) / sum(max(h, 0)).

    0..1; NaN when the map has no positive value at all. Negative values are ignored (they argue against the
    class, so they are not "attribution placed" anywhere).
    """
    heatmap = np.asarray(heatmap, dtype=np.float64)
    region = np.asarray(region, dtype=bool)
    if heatmap.shape != region.shape:
        raise ValueError(f"The heatmap is {heatmap.shape} but the region is {region.shape}; they must match.")
    positive = np.where(np.isfinite(heatmap), np.maximum(heatmap, 0.0), 0.0)
    total = positive.sum()
    if total <= 0:
        return float("nan")
    return float(positive[region].sum() / total)


def faithfulness(
    adapter: SegmentationAdapter,
    image: np.ndarray,
    region: np.ndarray | Question,
    target: int | None,
    attributions: Mapping[str, Attribution | np.ndarray],
    *,
    steps: int = 20,
    baseline: str = "blur",
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
    contrast: int | None = None,
) -> dict[str, Faithfulness]:
    """Deletion/insertion curves and inside share for each map; the random-order curves are computed once, and maps
    that rank the pixels identically (e.g. HiResCAM and LayerCAM at the logits layer) share one computation.

    Args:
        attributions: {method name: Attribution (its `heatmap` is used) or an (H, W) array}.
        steps, baseline, seed: see `deletion_insertion`.
        progress: callable(fraction in [0, 1]) after the random-order curves and after each method.

    Returns {method name: Faithfulness} in the given order.
    """
    if not attributions:
        raise ValueError("Give at least one attribution map to measure.")
    image, question, reference = _validate(adapter, image, region, target, contrast, steps, baseline)
    maps = {
        name: _check_heatmap(a.heatmap if isinstance(a, Attribution) else a, image.shape[:2], f"map of {name}")
        for name, a in attributions.items()
    }
    report = progress or (lambda fraction: None)
    total = len(maps) + 1
    random_ranks = pixel_ranks(None, image.shape[:2], seed)
    random_deletion, random_insertion = _curves_for_ranks(adapter, image, reference, question, random_ranks, steps)
    report(1 / total)
    results: dict[str, Faithfulness] = {}
    by_order: dict[bytes, tuple[Curve, Curve]] = {}  # maps that rank the pixels identically share their curves
    for index, (name, heatmap) in enumerate(maps.items(), start=2):
        ranks = pixel_ranks(heatmap, image.shape[:2], seed)
        key = ranks.tobytes()
        if key not in by_order:
            by_order[key] = _curves_for_ranks(adapter, image, reference, question, ranks, steps)
        deletion, insertion = by_order[key]
        results[name] = Faithfulness(
            method=name,
            deletion=deletion,
            insertion=insertion,
            random_deletion=random_deletion,
            random_insertion=random_insertion,
            inside_share=region_share(heatmap, question.region),
        )
        report(index / total)
    return results
