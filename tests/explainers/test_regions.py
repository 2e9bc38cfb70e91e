"""Border rings, insides and objects on hand-made masks with answers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from explainers.regions import (
    border_label,
    border_region,
    component_at,
    inner_border,
    inside,
    objects_touched,
    outer_border,
)


def _grid(text: str) -> np.ndarray:
    """A mask or label map from rows of digits ("." is 0)."""
    return np.array([[0 if ch == "." else int(ch) for ch in row] for row in text.split()], dtype=np.int64)


SQUARE = _grid("""
.......
.11111.
.11111.
.11111.
.11111.
.11111.
.......
""").astype(bool)


RING_1 = _grid("""
.......
.11111.
.1...1.
.1...1.
.1...1.
.11111.
.......
""").astype(bool)

CORE_1 = _grid("""
.......
.......
..111..
..111..
..111..
.......
.......
""").astype(bool)

# A dot at (1, 1) of a 5x5 image and the pixels within chessboard distance 2 of it (cut by the image edge).
DOT_OUTER_2 = _grid("""
1111.
1.11.
1111.
1111.
.....
""").astype(bool)


def test_inner_ring_of_a_5x5_square():
    np.testing.assert_array_equal(inner_border(SQUARE, 1), RING_1)
    centre_only = np.zeros_like(SQUARE)
    centre_only[3, 3] = True
    np.testing.assert_array_equal(inner_border(SQUARE, 2), SQUARE & ~centre_only)


def test_inside_is_the_square_without_its_ring():
    np.testing.assert_array_equal(inside(SQUARE, 1), CORE_1)
    assert inside(SQUARE, 2).sum() == 1 and inside(SQUARE, 2)[3, 3]
    np.testing.assert_array_equal(inside(SQUARE, 2) | inner_border(SQUARE, 2), SQUARE)


def test_outer_ring_is_chessboard_distance_and_stops_at_the_image_edge():
    np.testing.assert_array_equal(outer_border(SQUARE, 1), ~SQUARE)  # the 1-pixel frame around the square
    dot = np.zeros((5, 5), bool)
    dot[1, 1] = True
    np.testing.assert_array_equal(outer_border(dot, 2), DOT_OUTER_2)


def test_the_image_frame_is_not_a_border():
    left_half = np.zeros((4, 6), bool)
    left_half[:, :3] = True
    expected = np.zeros((4, 6), bool)
    expected[:, 2] = True  # only the column facing the right half
    np.testing.assert_array_equal(inner_border(left_half, 1), expected)
    np.testing.assert_array_equal(inside(left_half, 1), left_half & ~expected)
    expected_outer = np.zeros((4, 6), bool)
    expected_outer[:, 3:5] = True
    np.testing.assert_array_equal(outer_border(left_half, 2), expected_outer)


def test_too_thin_or_whole_image_regions_are_value_errors_with_a_sentence():
    line = np.zeros((5, 5), bool)
    line[2, :] = True
    with pytest.raises(ValueError, match="thinner than the border width"):
        inside(line, 1)
    with pytest.raises(ValueError, match="thinner than the border width"):
        inside(SQUARE, 3)
    everything = np.ones((3, 3), bool)
    with pytest.raises(ValueError, match="no outer ring"):
        outer_border(everything)
    with pytest.raises(ValueError, match="no inner ring"):
        inner_border(everything)
    with pytest.raises(ValueError, match="region is empty"):
        inner_border(np.zeros((3, 3), bool))
    for width in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="border width"):
            inner_border(SQUARE, width)


def test_border_region_by_name():
    np.testing.assert_array_equal(border_region(SQUARE, "inner", 1), inner_border(SQUARE, 1))
    np.testing.assert_array_equal(border_region(SQUARE, "outer", 1), outer_border(SQUARE, 1))
    np.testing.assert_array_equal(border_region(SQUARE, "inside", 1), inside(SQUARE, 1))
    assert border_label("inner", 3) == "border-inner(3)"
    with pytest.raises(ValueError, match="Unknown border choice"):
        border_region(SQUARE, "middle", 1)


# Two objects of class 1 (one of them touches a class-2 object), a diagonal pair of class-3 pixels, background 0.
LABELS = _grid("""
11..11.
11..12.
.....2.
3......
.3.....
""")


def test_component_of_a_clicked_pixel():
    left = np.zeros(LABELS.shape, bool)
    left[0:2, 0:2] = True
    np.testing.assert_array_equal(component_at(LABELS, (1, 0)), left)
    right = np.zeros(LABELS.shape, bool)
    right[0, 4:6] = right[1, 4] = True
    np.testing.assert_array_equal(component_at(LABELS, (0, 5), target=1), right)
    diagonal = LABELS == 3
    np.testing.assert_array_equal(component_at(LABELS, (3, 0)), diagonal)  # 8-connected by default
    only = np.zeros(LABELS.shape, bool)
    only[3, 0] = True
    np.testing.assert_array_equal(component_at(LABELS, (3, 0), connectivity=1), only)


def test_component_errors():
    with pytest.raises(ValueError, match="background"):
        component_at(LABELS, (2, 2), background={0})
    with pytest.raises(ValueError, match="not class 2"):
        component_at(LABELS, (0, 0), target=2)
    with pytest.raises(ValueError, match="not predicted anywhere"):
        component_at(LABELS, (0, 0), target=4)
    with pytest.raises(ValueError, match="outside"):
        component_at(LABELS, (5, 0))
    with pytest.raises(ValueError, match="integer"):
        component_at(LABELS.astype(float), (0, 0))


def test_objects_touched_by_a_box():
    box = np.zeros(LABELS.shape, bool)
    box[1:3, 1:6] = True  # touches the left class-1 object, the right class-1 object and the class-2 object
    expected = np.zeros(LABELS.shape, bool)
    expected[0:2, 0:2] = True
    expected[0, 4:6] = expected[1, 4] = True
    expected[1:3, 5] = True
    np.testing.assert_array_equal(objects_touched(LABELS, box, background={0}), expected)
    only_class_2 = np.zeros(LABELS.shape, bool)
    only_class_2[1:3, 5] = True
    np.testing.assert_array_equal(objects_touched(LABELS, box, background={0}, classes={2}), only_class_2)
    with_background = objects_touched(LABELS, box)  # background is an object like any other when not excluded
    assert with_background[2, 2] and with_background[4, 6]


def test_objects_touched_errors():
    empty_corner = np.zeros(LABELS.shape, bool)
    empty_corner[4, 5:7] = True
    with pytest.raises(ValueError, match="touches no object"):
        objects_touched(LABELS, empty_corner, background={0})
    with pytest.raises(ValueError, match="must match"):
        objects_touched(LABELS, np.ones((2, 2), bool))
