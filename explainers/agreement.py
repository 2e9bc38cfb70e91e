"""Agreement between attribution methods: the Spearman rank correlation of every pair of maps.

Two methods "agree" when they rank the pixels in the same order, whatever their scales (a CAM in activation units, a
saliency map in logit-per-pixel-value units). Spearman's rho is the Pearson correlation of the ranks (average ranks
for ties), as scipy.stats.spearmanr computes it. The raw, signed maps are ranked (a sign is part of what a signed
method says); the matrix is symmetric with ones on the diagonal.

A constant map (e.g. a ReLU'd CAM that is zero everywhere) has no ranking: its correlation with every OTHER map is
NaN (shown as a gap, left out of means), and its diagonal entry is still 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.stats import rankdata


def _pixels(maps: Mapping[str, np.ndarray], region: np.ndarray | None) -> tuple[list[str], np.ndarray]:
    names = list(maps)
    if not names:
        raise ValueError("Give at least one map to compare.")
    arrays = [np.asarray(maps[name], dtype=np.float64) for name in names]
    shape = arrays[0].shape
    for name, array in zip(names, arrays, strict=True):
        if array.shape != shape:
            raise ValueError(
                f"The map of {name} is {array.shape} but the map of {names[0]} is {shape}; they must match."
            )
        if not np.isfinite(array).all():
            raise ValueError(f"The map of {name} has non-finite values (NaN or inf).")
    if region is not None:
        region = np.asarray(region, dtype=bool)
        if region.shape != shape:
            raise ValueError(f"The region is {region.shape} but the maps are {shape}; they must match.")
        if region.sum() < 2:
            raise ValueError("The region needs at least two pixels to rank-correlate maps inside it.")
        return names, np.stack([array[region] for array in arrays])
    return names, np.stack([array.ravel() for array in arrays])


def agreement_matrix(
    maps: Mapping[str, np.ndarray], region: np.ndarray | None = None
) -> tuple[list[str], np.ndarray]:
    """Names and the (n, n) Spearman correlation matrix of the maps, over every pixel or only inside `region`.

    Symmetric, ones on the diagonal; NaN off the diagonal for any pair involving a constant map.
    """
    names, pixels = _pixels(maps, region)
    ranks = np.stack([rankdata(row) for row in pixels])
    centred = ranks - ranks.mean(axis=1, keepdims=True)
    norms = np.sqrt((centred**2).sum(axis=1))
    constant = norms == 0
    safe = np.where(constant, 1.0, norms)
    matrix = (centred @ centred.T) / np.outer(safe, safe)
    matrix = np.clip(matrix, -1.0, 1.0)
    matrix[constant, :] = np.nan
    matrix[:, constant] = np.nan
    np.fill_diagonal(matrix, 1.0)
    matrix = (matrix + matrix.T) / 2  # exact symmetry despite rounding
    return names, matrix


def rank_correlation(first: np.ndarray, second: np.ndarray, region: np.ndarray | None = None) -> float:
    """Spearman's rho between two maps (NaN if either is constant), as one entry of `agreement_matrix`."""
    return float(agreement_matrix({"first": first, "second": second}, region)[1][0, 1])
