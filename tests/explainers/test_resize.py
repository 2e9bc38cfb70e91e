"""The numpy bilinear resize used for maps and probabilities matches tf.image.resize (bilinear, half-pixel centres)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from explainers.resize import bilinear_resize


@pytest.mark.parametrize(
    ("source", "size"),
    [((4, 4), (32, 32)), ((8, 5), (32, 24)), ((16, 16), (16, 16)), ((9, 13), (5, 4)), ((1, 3), (7, 7))],
)
@pytest.mark.parametrize("channels", [None, 3])
def test_matches_tensorflow_bilinear_half_pixel(source, size, channels):
    rng = np.random.default_rng(0)
    array = rng.normal(size=source if channels is None else (*source, channels)).astype(np.float32)
    batch = array[None, ..., None] if channels is None else array[None]
    expected = tf.image.resize(batch, size, method="bilinear").numpy()[0]
    expected = expected[..., 0] if channels is None else expected
    ours = bilinear_resize(array, size)
    assert ours.shape == expected.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)


def test_rejects_arrays_that_are_not_maps():
    with pytest.raises(ValueError, match="bilinear_resize"):
        bilinear_resize(np.zeros((2, 2, 2, 2)), (4, 4))
