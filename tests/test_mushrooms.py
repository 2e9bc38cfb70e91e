"""Tests of the procedural mushroom generator (models.mushrooms): determinism, shapes, class coverage, poses."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from models.mushrooms import CLASS_NAMES, POSES, generate_dataset, generate_sample

GILLS, CAP = CLASS_NAMES.index("gills"), CLASS_NAMES.index("cap")


@pytest.fixture(scope="module")
def dataset():
    return generate_dataset(60, seed=123)


def test_class_order():
    assert CLASS_NAMES == ("background", "cap", "gills", "ring", "stem", "volva")


def test_sample_shapes_and_dtypes():
    image, mask = generate_sample(np.random.default_rng(0))
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert mask.shape == (128, 128) and mask.dtype == np.uint8
    assert mask.max() < len(CLASS_NAMES)
    image, mask = generate_sample(np.random.default_rng(0), size=96)
    assert image.shape == (96, 96, 3) and mask.shape == (96, 96)


def test_generator_is_deterministic():
    a = generate_sample(np.random.default_rng(42))
    b = generate_sample(np.random.default_rng(42))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    x1, y1 = generate_dataset(5, seed=9)
    x2, y2 = generate_dataset(5, seed=9)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    # sample i depends on (seed, i) only, so a prefix does not depend on n
    x3, y3 = generate_dataset(3, seed=9)
    np.testing.assert_array_equal(x1[:3], x3)
    np.testing.assert_array_equal(y1[:3], y3)
    x4, _ = generate_dataset(3, seed=10)
    assert not np.array_equal(x1[:3], x4)


def test_dataset_shapes(dataset):
    images, masks = dataset
    assert images.shape == (60, 128, 128, 3) and images.dtype == np.uint8
    assert masks.shape == (60, 128, 128) and masks.dtype == np.uint8


def test_every_class_appears(dataset):
    _, masks = dataset
    present = np.unique(masks)
    assert set(present.tolist()) == set(range(len(CLASS_NAMES)))
    # and the mushroom is never missing
    assert all((m == CAP).any() for m in masks)


def test_some_samples_hide_the_gills(dataset):
    _, masks = dataset
    has_gills = np.array([(m == GILLS).any() for m in masks])
    assert has_gills.any() and (~has_gills).sum() >= 10


@pytest.mark.parametrize("pose", POSES)
def test_forced_pose(pose):
    _, mask = generate_sample(np.random.default_rng(3), pose=pose)
    present = set(np.unique(mask).tolist())
    assert CAP in present
    if pose != "below":
        assert GILLS not in present
    if pose == "top":
        assert present == {0, CAP}


def test_bad_pose():
    with pytest.raises(ValueError, match="pose"):
        generate_sample(np.random.default_rng(0), pose="sideways")


def test_images_are_not_trivial(dataset):
    images, masks = dataset
    # the background is textured, not a flat colour, and classes differ in appearance but not trivially by colour
    assert images[masks == 0].std() > 10
    assert images.std(axis=(1, 2)).min() > 5


def test_import_models_does_not_import_tensorflow():
    code = "import sys, models; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
