"""Box, lasso, click and class selections -> boolean masks (pure helpers of dashboard.inputs.selection)."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.inputs import selection as sel
from dashboard.inputs.selection import SelectionError

SHAPE = (10, 12)  # H, W


def test_box_includes_pixels_whose_centres_are_inside():
    mask = sel.box_to_mask([1.6, 4.4], [2.0, 3.0], SHAPE)
    rows, cols = np.nonzero(mask)
    assert set(rows) == {2, 3} and set(cols) == {2, 3, 4}
    assert mask.sum() == 6


def test_box_order_of_corners_does_not_matter():
    a = sel.box_to_mask([4.4, 1.6], [3.0, 2.0], SHAPE)
    b = sel.box_to_mask([1.6, 4.4], [2.0, 3.0], SHAPE)
    np.testing.assert_array_equal(a, b)


def test_box_covering_the_image_edges_selects_edge_pixels():
    mask = sel.box_to_mask([-0.5, 11.5], [-0.5, 9.5], SHAPE)
    assert mask.all()
    corner = sel.box_to_mask([10.6, 11.5], [8.6, 9.5], SHAPE)
    assert np.argwhere(corner).tolist() == [[9, 11]]


def test_box_partly_outside_is_clipped():
    mask = sel.box_to_mask([-30, 1.2], [7.5, 40], SHAPE)
    rows, cols = np.nonzero(mask)
    assert set(cols) == {0, 1} and set(rows) == {8, 9}


def test_box_entirely_outside_is_an_error():
    with pytest.raises(SelectionError, match="outside the image"):
        sel.box_to_mask([13, 20], [1, 2], SHAPE)
    with pytest.raises(SelectionError, match="outside the image"):
        sel.box_to_mask([1, 2], [-9, -0.6], SHAPE)


def test_tiny_box_inside_one_pixel_selects_that_pixel():
    mask = sel.box_to_mask([3.1, 3.3], [5.6, 5.9], SHAPE)
    assert np.argwhere(mask).tolist() == [[6, 3]]


def test_lasso_triangle_matches_point_in_polygon_of_pixel_centres():
    xs, ys = [1.0, 9.0, 1.0], [1.0, 1.0, 8.0]
    mask = sel.lasso_to_mask(xs, ys, SHAPE)
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(float)
    # Signed distance-like margins to the three edges x = 1, y = 1 and the hypotenuse 7 (x - 1) + 8 (y - 1) = 56.
    margin = np.minimum.reduce([cols - 1, rows - 1, (56 - 7 * (cols - 1) - 8 * (rows - 1)) / np.hypot(7, 8)])
    clearly_in, clearly_out = margin > 1e-6, margin < -1e-6
    assert mask[clearly_in].all()
    assert not mask[clearly_out].any()
    assert mask[2, 2] and not mask[7, 8]


def test_lasso_with_points_outside_the_image_is_clipped():
    mask = sel.lasso_to_mask([-5, 20, 20, -5], [-5, -5, 3.2, 3.2], SHAPE)
    assert mask[:4].all() and not mask[4:].any()


def test_lasso_entirely_outside_is_an_error():
    with pytest.raises(SelectionError, match="outside the image"):
        sel.lasso_to_mask([20, 30, 25], [1, 1, 5], SHAPE)


def test_tiny_lasso_selects_the_pixel_under_its_centre():
    mask = sel.lasso_to_mask([4.1, 4.3, 4.2], [2.1, 2.1, 2.3], SHAPE)
    assert np.argwhere(mask).tolist() == [[2, 4]]


def test_lasso_rejects_empty_and_invalid_points():
    with pytest.raises(SelectionError):
        sel.lasso_to_mask([], [], SHAPE)
    with pytest.raises(SelectionError):
        sel.lasso_to_mask([1, np.nan, 3], [1, 2, 3], SHAPE)


def test_click_rounds_to_the_pixel_under_the_pointer():
    assert sel.click_to_pixel({"points": [{"x": 3.49, "y": 0.51}]}, SHAPE) == (1, 3)
    assert sel.click_to_pixel({"points": [{"x": 11.4, "y": 9.4}]}, SHAPE) == (9, 11)
    mask = sel.click_to_mask({"points": [{"x": 0, "y": 0}]}, SHAPE)
    assert mask.sum() == 1 and mask[0, 0]


@pytest.mark.parametrize("point", [{"x": 12.5, "y": 1}, {"x": -0.6, "y": 1}, {"x": 2, "y": 9.5}])
def test_click_outside_the_image_is_an_error(point):
    with pytest.raises(SelectionError, match="outside"):
        sel.click_to_pixel({"points": [point]}, SHAPE)


@pytest.mark.parametrize("click", [None, {}, {"points": []}, {"points": [{"curveNumber": 0}]}])
def test_missing_click_is_an_error(click):
    with pytest.raises(SelectionError):
        sel.click_to_pixel(click, SHAPE)


def test_class_mask_and_absent_class():
    labels = np.zeros(SHAPE, dtype=np.int16)
    labels[2:4, 5:9] = 2
    mask = sel.class_to_mask(labels, 2, ["bg", "a", "b"])
    assert mask.sum() == 8
    with pytest.raises(SelectionError, match="No pixel is predicted as “a”"):
        sel.class_to_mask(labels, 1, ["bg", "a", "b"])
    with pytest.raises(SelectionError):
        sel.class_to_mask(labels, 7, ["bg", "a", "b"])


def test_selection_to_mask_reads_box_lasso_and_other_axes():
    mask, kind = sel.selection_to_mask({"points": [], "range": {"x": [0.6, 2.4], "y": [0.6, 1.4]}}, SHAPE)
    assert kind == "box" and mask.sum() == 2
    mask, kind = sel.selection_to_mask({"lassoPoints": {"x2": [0, 5, 5, 0], "y2": [0, 0, 5, 5]}}, SHAPE)
    assert kind == "lasso" and mask[1:5, 1:5].all()


@pytest.mark.parametrize("data", [None, {}, {"points": []}])
def test_empty_selection_is_an_error(data):
    with pytest.raises(SelectionError, match="empty"):
        sel.selection_to_mask(data, SHAPE)


def test_majority_class_and_histogram():
    labels = np.array([[0, 1, 1], [2, 1, 0]])
    mask = np.array([[True, True, True], [True, False, False]])
    assert sel.class_histogram(labels, mask, 3).tolist() == [1, 2, 1]
    assert sel.majority_class(labels, mask, 3) == 1
    with pytest.raises(SelectionError):
        sel.majority_class(labels, np.zeros_like(mask), 3)


def _path_points(path: str) -> np.ndarray:
    return np.array([[float(v) for v in p.split(",")] for p in path.strip("MZ ").split(" L")])


def test_outline_of_a_box_follows_its_pixel_edges():
    mask = np.zeros(SHAPE, dtype=bool)
    mask[2:5, 3:7] = True
    (path,) = sel.outline_paths(mask)
    points = _path_points(path)
    assert points[:, 0].min() == pytest.approx(2.5) and points[:, 0].max() == pytest.approx(6.5)
    assert points[:, 1].min() == pytest.approx(1.5) and points[:, 1].max() == pytest.approx(4.5)
    assert len(points) == 8  # four edges, corners cut by a quarter pixel


def test_outline_of_edge_pixels_and_separate_parts():
    mask = np.zeros(SHAPE, dtype=bool)
    mask[0, 0] = True
    mask[9, 11] = True
    paths = sel.outline_paths(mask)
    assert len(paths) == 2
    all_points = np.vstack([_path_points(p) for p in paths])
    assert all_points.min() >= -0.5 - 1e-9 and all_points[:, 0].max() <= 11.5 + 1e-9
    assert sel.outline_paths(np.zeros(SHAPE, dtype=bool)) == []


def test_an_outline_moves_with_its_region():
    """The same shapes (a ring with a hole, a speck) drawn 7 rows lower and 13 columns to the right: the same paths,
    every point shifted by (13, 7), whatever part of the image the region covers."""
    shapes = np.zeros((12, 12), dtype=bool)
    shapes[1:9, 2:10] = True
    shapes[3:6, 4:7] = False
    shapes[10, 0] = True
    canvas = np.zeros((40, 40), dtype=bool)
    canvas[7:19, 13:25] = shapes
    here, there = sel.outline_paths(shapes), sel.outline_paths(canvas)
    assert len(here) == len(there) == 3
    for near, far in zip(here, there, strict=True):
        np.testing.assert_allclose(_path_points(far), _path_points(near) + np.array([13.0, 7.0]))


def test_outline_of_a_speckled_mask_stays_within_its_point_budget():
    rng = np.random.default_rng(0)
    mask = rng.random((128, 128)) > 0.5
    mask[20:60, 20:60] = True
    paths = sel.outline_paths(mask, max_points=2000)
    assert 0 < sum(len(_path_points(p)) for p in paths) <= 2000
