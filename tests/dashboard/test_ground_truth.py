"""Ground-truth PNG uploads, built in the test: indexed and colour forms, fitting to the model's image, refusals."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from dashboard.inputs.ground_truth import VOID, GroundTruthError, hex_rgb, load_ground_truth, load_ground_truth_upload
from dashboard.inputs.images import TIMES, fit_to_model
from dashboard.view.figures import class_colours

NAMES = ["background", "cap", "gills", "stem"]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _indexed(labels: np.ndarray) -> bytes:
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette([v for k in range(256) for v in (k, 255 - k, 0)])
    return _png(image)


def _colour(labels: np.ndarray, names=NAMES) -> np.ndarray:
    lut = np.array([(0, 0, 0) if c.startswith("rgba") else hex_rgb(c) for c in class_colours(names)], np.uint8)
    return lut[labels]


LABELS = np.array([[0, 0, 1, 1], [0, 2, 2, 1], [3, 3, 2, 0]])


def test_indexed_palette_png_same_size():
    truth = load_ground_truth(_indexed(LABELS), NAMES, original_size=(4, 3), size_hw=(3, 4))
    np.testing.assert_array_equal(truth.labels, LABELS)
    assert truth.form == "indexed" and truth.note == f"4{TIMES}3 indexed PNG" and truth.labels.dtype == np.int32


def test_greyscale_png_and_void():
    labels = LABELS.copy()
    labels[0, 0] = 255
    truth = load_ground_truth(_png(Image.fromarray(labels.astype(np.uint8), mode="L")), NAMES, (4, 3), (3, 4))
    expected = LABELS.copy()
    expected[0, 0] = VOID
    np.testing.assert_array_equal(truth.labels, expected)
    assert truth.void_pixels == 1


def test_colour_png_in_the_class_colours_with_transparent_background():
    rgba = np.dstack([_colour(LABELS), np.full(LABELS.shape, 255, np.uint8)])
    rgba[2, 3] = (12, 34, 56, 0)  # fully transparent: background, whatever its colour
    truth = load_ground_truth(_png(Image.fromarray(rgba, mode="RGBA")), NAMES, (4, 3), (3, 4))
    np.testing.assert_array_equal(truth.labels, LABELS)
    assert truth.form == "colour"


def test_a_half_resolution_mask_is_resized_nearest_and_said_so():
    big = np.kron(LABELS, np.ones((2, 2), int))  # 8x6: each class cell doubled
    truth = load_ground_truth(_indexed(LABELS), NAMES, original_size=(8, 6), size_hw=(6, 8))
    np.testing.assert_array_equal(truth.labels, big)
    assert truth.note == f"4{TIMES}3 indexed PNG → 8{TIMES}6 (nearest)"


def test_the_image_crop_is_applied_to_the_mask():
    # A 6x3 (w x h) upload fitted to a square model: the image is centre-cropped to columns 1.5-4.5 -> 1..4.
    labels = np.array([[0, 1, 1, 2, 2, 3], [0, 1, 1, 2, 2, 3], [0, 1, 1, 2, 2, 3]])
    truth = load_ground_truth(_indexed(labels), NAMES, original_size=(6, 3), size_hw=(3, 3))
    photo = Image.fromarray(np.repeat(labels[..., None] * 60, 3, axis=2).astype(np.uint8))
    fitted_photo, cropped = fit_to_model(photo, (3, 3))
    assert cropped
    np.testing.assert_array_equal(truth.labels, labels[:, 1:4])  # the same columns the photo kept
    np.testing.assert_array_equal(fitted_photo[..., 0] // 60, labels[:, 1:4])
    assert "centre crop" in truth.note


def test_another_aspect_ratio_is_refused():
    with pytest.raises(GroundTruthError, match=f"4{TIMES}3 but the image was uploaded as 4{TIMES}4"):
        load_ground_truth(_indexed(LABELS), NAMES, original_size=(4, 4), size_hw=(4, 4))


def test_class_indices_out_of_range_are_named():
    labels = LABELS.copy()
    labels[1, 1] = 7
    with pytest.raises(GroundTruthError, match=r"class indices 7, but the model has only classes 0-3"):
        load_ground_truth(_indexed(labels), NAMES, (4, 3), (3, 4))


def test_unknown_colours_are_named_with_the_expected_legend():
    rgb = _colour(LABELS)
    rgb[0, 0] = (1, 2, 3)
    rgb[0, 1] = (1, 2, 3)
    with pytest.raises(GroundTruthError, match=r"#010203 \(2 px\).*cap #") as info:
        load_ground_truth(_png(Image.fromarray(rgb, mode="RGB")), NAMES, (4, 3), (3, 4))
    assert "background #000000" in str(info.value)


def test_not_a_png_and_ambiguous_colours():
    buffer = io.BytesIO()
    Image.fromarray(_colour(LABELS)).save(buffer, format="JPEG")
    with pytest.raises(GroundTruthError, match="must be a PNG"):
        load_ground_truth(buffer.getvalue(), NAMES, (4, 3), (3, 4))
    many = ["background"] + [f"c{i}" for i in range(17)]  # 17 non-background classes: the palette of 16 repeats
    with pytest.raises(GroundTruthError, match="share a colour"):
        load_ground_truth(_png(Image.fromarray(_colour(np.zeros((3, 4), int), many))), many, (4, 3), (3, 4))


def test_upload_data_uri():
    contents = "data:image/png;base64," + base64.b64encode(_indexed(LABELS)).decode()
    truth = load_ground_truth_upload(contents, NAMES, (4, 3), (3, 4), max_bytes=10_000)
    np.testing.assert_array_equal(truth.labels, LABELS)
    with pytest.raises(GroundTruthError, match="too large"):
        load_ground_truth_upload(contents, NAMES, (4, 3), (3, 4), max_bytes=10)
