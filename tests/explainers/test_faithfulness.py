"""Deletion/insertion curves checked on a model whose region score is a KNOWN linear function of the pixels.

The model is one 1x1 Conv2D with chosen weights and no activation, so S(x) = mean over the region of w . x / 255 + b.
Each pixel then contributes exactly c_p = w . (x_p - x'_p) / (255 |M|) inside the region and 0 outside, the curves
are computable in numpy without the engine, and ranking by c is optimal at EVERY step: it gives the lowest deletion
curve and the highest insertion curve of all orderings; the inverted ranking gives the worst.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from explainers import SegmentationAdapter, explain
from explainers.baselines import baseline_image
from explainers.faithfulness import (
    Curve,
    deletion_insertion,
    faithfulness,
    make_curve,
    pixel_ranks,
    region_share,
)
from tests.explainers.tiny_models import box_region, structured_image

SIZE = (24, 28)
WEIGHTS = np.array([0.5, -1.0, 2.0], dtype=np.float32)
BIAS = 0.3
STEPS = 12


@pytest.fixture(scope="module")
def linear_adapter() -> SegmentationAdapter:
    inputs = keras.Input((*SIZE, 3))
    conv = keras.layers.Conv2D(1, 1, name="linear")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([WEIGHTS.reshape(1, 1, 3, 1), np.array([BIAS], dtype=np.float32)])
    return SegmentationAdapter(model)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return structured_image(SIZE, seed=3)


@pytest.fixture(scope="module")
def region() -> np.ndarray:
    return box_region(SIZE, 4, 5, 18, 20)


def numpy_score(pixels: np.ndarray, region: np.ndarray) -> float:
    """S for the linear model, straight from its definition."""
    return float(((pixels.astype(np.float64) / 255.0) @ WEIGHTS.astype(np.float64) + BIAS)[region].mean())


def numpy_curves(image, reference, region, order_values) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion scores for pixels removed in descending `order_values` (ties irrelevant: see below)."""
    order = np.argsort(-order_values.ravel(), kind="stable")
    counts = np.rint(np.linspace(0, 1, STEPS + 1) * order.size).astype(int)
    deletion, insertion = [], []
    for n in counts:
        chosen = np.zeros(order.size, dtype=bool)
        chosen[order[:n]] = True
        chosen = chosen.reshape(SIZE)[..., None]
        deletion.append(numpy_score(np.where(chosen, reference, image), region))
        insertion.append(numpy_score(np.where(chosen, image, reference), region))
    return np.array(deletion), np.array(insertion)


def exact_contributions(image, reference, region) -> np.ndarray:
    contribution = ((image.astype(np.float64) - reference) / 255.0) @ WEIGHTS.astype(np.float64) / region.sum()
    return np.where(region, contribution, 0.0)


@pytest.mark.parametrize("baseline", ["black", "blur"])
def test_curves_equal_an_independent_numpy_computation(linear_adapter, image, region, baseline):
    reference = baseline_image(image, baseline).astype(np.float64)
    exact = exact_contributions(image, reference, region)
    deletion, insertion = deletion_insertion(
        linear_adapter, image, region, 0, exact, steps=STEPS, baseline=baseline, seed=5
    )
    # Pixels tied in `exact` contribute equally, so the tie order cannot change these curves.
    expected_deletion, expected_insertion = numpy_curves(image, reference, region, exact)
    np.testing.assert_allclose(deletion.scores, expected_deletion, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(insertion.scores, expected_insertion, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(deletion.fractions, np.linspace(0, 1, STEPS + 1))
    assert deletion.auc == pytest.approx(np.trapezoid(expected_deletion, deletion.fractions), rel=1e-5)
    # End points: the image and the baseline.
    assert deletion.scores[0] == pytest.approx(numpy_score(image, region), rel=1e-5)
    assert deletion.scores[-1] == pytest.approx(numpy_score(reference, region), rel=1e-5)
    assert insertion.scores[0] == pytest.approx(deletion.scores[-1]) and insertion.scores[-1] == pytest.approx(
        deletion.scores[0]
    )


def test_exact_attribution_beats_random_which_beats_inverted(linear_adapter, image, region):
    # With a black baseline the exact contribution is gradient x input, taken from the registry.
    gxi = explain(linear_adapter, image, region, 0, methods=["gradient_x_input"])["gradient_x_input"]
    reference = np.zeros(image.shape)
    np.testing.assert_allclose(gxi.heatmap, exact_contributions(image, reference, region), rtol=1e-4, atol=1e-7)
    results = faithfulness(
        linear_adapter,
        image,
        region,
        0,
        {"exact": gxi, "inverted": -gxi.heatmap},
        steps=STEPS,
        baseline="black",
    )
    exact, inverted = results["exact"], results["inverted"]
    random_deletion, random_insertion = exact.random_deletion, exact.random_insertion
    assert exact.deletion.auc < random_deletion.auc < inverted.deletion.auc
    assert exact.insertion.auc > random_insertion.auc > inverted.insertion.auc
    # Optimal at every step, not only in area.
    assert np.all(exact.deletion.scores <= random_deletion.scores + 1e-6)
    assert np.all(exact.insertion.scores >= random_insertion.scores - 1e-6)
    assert np.all(inverted.deletion.scores >= exact.deletion.scores - 1e-6)
    assert exact.deletion_gap > 0 and exact.insertion_gap > 0
    assert inverted.deletion_gap < 0 and inverted.insertion_gap < 0
    assert exact.inside_share == pytest.approx(1.0)


def test_normalised_auc_is_the_area_of_the_rescaled_scores(linear_adapter, image, region):
    deletion, insertion = deletion_insertion(linear_adapter, image, region, 0, None, steps=STEPS, baseline="black")
    s_x, s_b = numpy_score(image, region), numpy_score(np.zeros(image.shape), region)
    for curve in (deletion, insertion):
        rescaled = (curve.scores - s_b) / (s_x - s_b)
        np.testing.assert_allclose(curve.normalized_scores, rescaled, rtol=1e-4, atol=1e-6)
        assert curve.normalized_auc == pytest.approx(np.trapezoid(rescaled, curve.fractions), rel=1e-4, abs=1e-6)
    assert deletion.normalized_scores[0] == pytest.approx(1) and deletion.normalized_scores[-1] == pytest.approx(0)


def test_normalised_auc_is_nan_when_the_baseline_scores_like_the_image():
    curve = make_curve(np.linspace(0, 1, 3), np.array([2.0, 2.0, 2.0]), 2.0, 2.0)
    assert isinstance(curve, Curve) and curve.auc == pytest.approx(2.0) and np.isnan(curve.normalized_auc)


def test_constant_map_reproduces_the_random_order_and_random_curves_are_shared(linear_adapter, image, region):
    fractions = []
    results = faithfulness(
        linear_adapter,
        image,
        region,
        0,
        {"flat": np.zeros(SIZE), "other": np.ones(SIZE)},
        steps=STEPS,
        seed=7,
        progress=fractions.append,
    )
    flat = results["flat"]
    np.testing.assert_array_equal(flat.deletion.scores, flat.random_deletion.scores)
    np.testing.assert_array_equal(flat.insertion.scores, flat.random_insertion.scores)
    assert results["other"].random_deletion is flat.random_deletion
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0) and len(fractions) == 3
    assert np.isnan(flat.inside_share)


def test_one_batched_score_call_per_map(linear_adapter, image, region, monkeypatch):
    calls = []
    original = linear_adapter.score

    def spy(images, *args, **kwargs):
        calls.append(len(images))
        return original(images, *args, **kwargs)

    monkeypatch.setattr(linear_adapter, "score", spy)
    heatmap = np.random.default_rng(0).random(SIZE)
    results = faithfulness(linear_adapter, image, region, 0, {"a": heatmap, "same order": 3 * heatmap}, steps=STEPS)
    assert calls == [2 * (STEPS + 1), 2 * (STEPS + 1)]  # random order, then the map (the rescaled one ranks alike)
    np.testing.assert_array_equal(results["a"].deletion.scores, results["same order"].deletion.scores)


def test_ranks_descending_with_seeded_tie_breaks():
    heatmap = np.array([[0.0, 3.0], [1.0, 0.0]])
    ranks = pixel_ranks(heatmap, (2, 2), seed=0)
    assert ranks[0, 1] == 0 and ranks[1, 0] == 1 and sorted(ranks[[0, 1], [0, 1]]) == [2, 3]
    np.testing.assert_array_equal(ranks, pixel_ranks(heatmap, (2, 2), seed=0))
    assert sorted(pixel_ranks(None, (3, 3), seed=1).ravel()) == list(range(9))


def test_region_share_on_hand_made_arrays():
    heatmap = np.array([[1.0, -5.0], [3.0, 0.0]])
    region = np.array([[True, True], [False, False]])
    assert region_share(heatmap, region) == pytest.approx(1 / 4)  # negatives ignored
    assert region_share(heatmap, ~region) == pytest.approx(3 / 4)
    assert region_share(heatmap, np.ones((2, 2), bool)) == pytest.approx(1.0)
    assert np.isnan(region_share(-np.abs(heatmap), region))
    with pytest.raises(ValueError, match="must match"):
        region_share(heatmap, np.ones((3, 3), bool))


def test_bad_input_raises_clear_errors(linear_adapter, image, region):
    with pytest.raises(ValueError, match="steps"):
        deletion_insertion(linear_adapter, image, region, 0, None, steps=0)
    with pytest.raises(ValueError, match="must match"):
        deletion_insertion(linear_adapter, image, region, 0, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        deletion_insertion(linear_adapter, image, region, 0, np.full(SIZE, np.nan))
    with pytest.raises(ValueError, match="baseline"):
        deletion_insertion(linear_adapter, image, region, 0, None, baseline="noise")
    with pytest.raises(ValueError, match="at least one"):
        faithfulness(linear_adapter, image, region, 0, {})
