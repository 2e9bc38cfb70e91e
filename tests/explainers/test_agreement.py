"""The agreement matrix against scipy.stats.spearmanr, pair by pair, and its edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from explainers.agreement import agreement_matrix


@pytest.fixture
def maps() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(12, 10))
    return {
        "a": base,
        "b": base + rng.normal(scale=0.5, size=base.shape),
        "c": rng.normal(size=base.shape),
        "ties": np.round(base),  # many tied values
    }


def test_symmetric_unit_diagonal_and_equal_to_scipy_pairwise(maps):
    names, matrix = agreement_matrix(maps)
    assert names == list(maps)
    np.testing.assert_array_equal(matrix, matrix.T)
    np.testing.assert_array_equal(np.diag(matrix), np.ones(len(maps)))
    for i, first in enumerate(names):
        for j, second in enumerate(names):
            expected = spearmanr(maps[first].ravel(), maps[second].ravel()).statistic
            assert matrix[i, j] == pytest.approx(expected, abs=1e-12)
    assert matrix[0, 1] > 0.5 > abs(matrix[0, 2])


def test_identical_maps_give_one_and_reversed_minus_one(maps):
    a = maps["a"]
    _, matrix = agreement_matrix({"x": a, "same": a.copy(), "scaled": 3 * a + 1, "reversed": -a})
    np.testing.assert_allclose(matrix[0, 1:3], [1.0, 1.0])
    assert matrix[0, 3] == pytest.approx(-1.0)


def test_region_restricts_the_pixels(maps):
    region = np.zeros((12, 10), dtype=bool)
    region[2:8, 3:9] = True
    _, matrix = agreement_matrix({"a": maps["a"], "c": maps["c"]}, region)
    assert matrix[0, 1] == pytest.approx(spearmanr(maps["a"][region], maps["c"][region]).statistic, abs=1e-12)


def test_constant_map_gives_nan_off_the_diagonal(maps):
    _, matrix = agreement_matrix({"a": maps["a"], "zero": np.zeros((12, 10)), "b": maps["b"]})
    assert np.isnan(matrix[0, 1]) and np.isnan(matrix[1, 2]) and np.isnan(matrix[1, 0])
    assert matrix[1, 1] == 1.0 and np.isfinite(matrix[0, 2])


def test_bad_input_raises_clear_errors(maps):
    with pytest.raises(ValueError, match="at least one"):
        agreement_matrix({})
    with pytest.raises(ValueError, match="must match"):
        agreement_matrix({"a": maps["a"], "small": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="non-finite"):
        agreement_matrix({"a": np.full((2, 2), np.nan)})
    with pytest.raises(ValueError, match="two pixels"):
        agreement_matrix({"a": maps["a"]}, np.zeros((12, 10), bool))
