"""Compact stored maps (dashboard.state.records): float16 over the map's largest magnitude, to 2^-11 of it."""

from __future__ import annotations

import pickle
import zlib

import numpy as np
import pytest

from dashboard.state.records import LayerMapsRecord, PackedMap, compact, expand


@pytest.mark.parametrize("magnitude", [1e-9, 1e-3, 1.0, 5e5])
def test_a_map_keeps_its_relative_precision_at_any_magnitude(magnitude):
    rng = np.random.default_rng(0)
    values = (rng.standard_normal((64, 48)) * magnitude).astype(np.float32)
    stored, scale = compact(values)
    assert stored.dtype == np.float16 and scale == pytest.approx(np.abs(values).max())
    np.testing.assert_allclose(expand(stored, scale), values, rtol=0, atol=np.abs(values).max() * 2.0**-11)
    if magnitude < 1e-6:
        plain = values.astype(np.float16).astype(np.float32)  # what plain float16 would keep
        assert np.count_nonzero(plain) < values.size / 2  # flushed to zero: why the scale is there


def test_zero_and_non_finite_maps_survive():
    zeros, scale = compact(np.zeros((4, 4)))
    assert scale == 1.0 and not expand(zeros, scale).any()
    with_nan = np.array([[1.0, np.nan], [-2.0, 0.5]], dtype=np.float32)
    back = expand(*compact(with_nan))
    assert np.isnan(back[0, 1]) and back[1, 0] == pytest.approx(-2.0)


def test_layer_records_store_half_the_bytes_and_read_back_the_maps():
    rng = np.random.default_rng(1)
    per_layer = {f"conv{i}": rng.random((128 >> i, 128 >> i)).astype(np.float32) * 1e-4 for i in range(4)}
    record = LayerMapsRecord.of(per_layer, (128, 128))
    full = sum(array.nbytes for array in per_layer.values())
    assert sum(array.nbytes for array in record.native.values()) <= full // 2  # dense maps: float16, little to pack
    assert len(pickle.dumps(record)) < 0.6 * len(pickle.dumps(per_layer))
    for name, array in per_layer.items():
        np.testing.assert_allclose(record.native_map(name), array, rtol=0, atol=array.max() * 2.0**-11)
    assert record.at("conv0").shape == (128, 128) and record.at("conv3").dtype == np.float32


def test_layer_maps_are_packed_losslessly_and_a_relu_d_map_shrinks():
    """What a ReLU'd CAM stores: its zeros pack away; every layer reads back exactly its compact float16 values."""
    rng = np.random.default_rng(2)
    cam = np.maximum(rng.normal(size=(128, 128)), 1.5).astype(np.float32) - 1.5  # ~93% exact zeros, as CAMs are
    dense = rng.normal(size=(32, 32)).astype(np.float32)
    record = LayerMapsRecord.of({"relu": cam, "dense": dense}, (128, 128))
    assert record.native["relu"].nbytes < 0.25 * cam.size * 2  # well under the float16 bytes
    for name, array in (("relu", cam), ("dense", dense)):
        values, scale = compact(array)
        np.testing.assert_array_equal(record.native[name].unpack(), values)
        np.testing.assert_array_equal(record.native_map(name), expand(values, scale))
    old_style = LayerMapsRecord((128, 128), {"dense": compact(dense)[0]}, {"dense": compact(dense)[1]})
    np.testing.assert_array_equal(old_style.native_map("dense"), record.native_map("dense"))  # unpacked records read


def test_a_zlib_packed_map_pickled_before_the_codec_field_still_reads():
    """Records stored before maps were packed with Zstandard (a PackedMap of shape and zlib data only) read back."""
    values = compact(np.linspace(-1.0, 1.0, 64, dtype=np.float32).reshape(8, 8))[0]
    old = PackedMap.__new__(PackedMap)
    object.__setattr__(old, "__dict__", {"shape": (8, 8), "data": zlib.compress(values.tobytes(), 1)})
    restored = pickle.loads(pickle.dumps(old))
    assert "codec" not in vars(restored) and restored.codec == "zlib"
    np.testing.assert_array_equal(restored.unpack(), values)
    new = PackedMap.of(values)
    assert new.codec == "zstd" and new.data != old.data
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(new)).unpack(), values)
