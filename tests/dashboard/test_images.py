"""Upload decoding and validation (dashboard.inputs.images): formats, limits, EXIF, modes, fitting to the model."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from dashboard.inputs import images
from dashboard.inputs.images import ImageError

LIMITS = dict(max_bytes=1024 * 1024, max_pixels=4_000_000)


def encode(image: Image.Image, fmt: str = "PNG", mime: str = "image/png", **save) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None, None]
    return Image.fromarray(np.broadcast_to(np.concatenate([np.broadcast_to(x, (height, width, 1)),
                                                           np.broadcast_to(y, (height, width, 1)),
                                                           np.full((height, width, 1), 90, np.uint8)], axis=2),
                                           (height, width, 3)).copy())  # fmt: skip


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"),
                                           ("TIFF", "image/tiff"), ("BMP", "image/bmp")])  # fmt: skip
def test_supported_formats_decode_to_model_size(fmt, mime):
    loaded = images.load_upload(encode(gradient(), fmt, mime), (32, 32), **LIMITS)
    assert loaded.array.shape == (32, 32, 3) and loaded.array.dtype == np.uint8
    assert loaded.original_size == (64, 48)
    assert "centre crop" in loaded.note


def test_same_aspect_resizes_without_crop():
    loaded = images.load_upload(encode(gradient(64, 64)), (32, 32), **LIMITS)
    assert "crop" not in loaded.note and loaded.array.shape == (32, 32, 3)


def test_centre_crop_keeps_the_middle():
    array = np.zeros((20, 60, 3), dtype=np.uint8)
    array[:, 20:40] = 255  # the middle third is white
    out, cropped = images.fit_to_model(Image.fromarray(array), (20, 20))
    assert cropped and out.min() == 255


def test_dynamic_models_get_a_size_fitted_and_rounded_to_32():
    assert images.target_size((1000, 700), None, 512) == (352, 512)
    assert images.target_size((40, 30), None, 512) == (32, 32)
    assert images.target_size((640, 480), (128, 96), 512) == (128, 96)


def test_exif_orientation_is_applied():
    image = gradient(64, 32)  # landscape pixels, EXIF says "rotate 90°" -> portrait
    exif = Image.Exif()
    exif[0x0112] = 6
    loaded = images.load_upload(encode(image, "JPEG", "image/jpeg", exif=exif.tobytes()), None,
                                max_bytes=LIMITS["max_bytes"], max_pixels=LIMITS["max_pixels"])  # fmt: skip
    assert loaded.original_size == (32, 64)


def test_transparency_is_composited_over_white_and_modes_convert():
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    out = images.load_upload(encode(rgba), (16, 16), **LIMITS).array
    assert (out == 255).all()
    for mode in ("L", "P", "1", "CMYK", "I;16", "LA"):
        image = gradient(16, 16).convert("L").convert(mode) if mode != "CMYK" else gradient(16, 16).convert(mode)
        fmt = "TIFF" if mode == "CMYK" else "PNG"
        out = images.load_upload(encode(image, fmt), (16, 16), **LIMITS).array
        assert out.shape == (16, 16, 3), mode


def test_too_many_bytes_is_refused_before_decoding():
    with pytest.raises(ImageError, match="too large"):
        images.load_upload(encode(gradient()), (32, 32), max_bytes=100, max_pixels=10**6)


def test_decompression_bomb_is_refused_from_the_header():
    bomb = Image.new("1", (8000, 8000))  # compresses to a few kB, 64 MP decoded
    contents = encode(bomb)
    assert len(contents) < 100_000
    with pytest.raises(ImageError, match="too large"):
        images.load_upload(contents, (32, 32), **LIMITS)


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ("not a data uri", "could not be read"),
        ("data:image/png;base64,@@@@", "not valid base64"),
        ("data:image/png,plain", "not base64"),
        ("data:image/png;base64," + base64.b64encode(b"hello world").decode(), "not a PNG"),
        ("data:image/png;base64,", "empty"),
    ],
)
def test_bad_uploads_have_clear_messages(contents, message):
    with pytest.raises(ImageError, match=message):
        images.load_upload(contents, (32, 32), **LIMITS)


def test_formats_outside_the_allowed_plugins_are_refused():
    with pytest.raises(ImageError, match="not a PNG, JPEG, WebP, TIFF, BMP or GIF image"):
        images.load_upload(encode(gradient(), "ICO", "image/x-icon"), (32, 32), **LIMITS)


def test_truncated_file_is_reported_as_damaged():
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, format="PNG")
    data = buffer.getvalue()[:2000]
    with pytest.raises(ImageError, match=r"damaged|truncated"):
        images.load_bytes(data, (32, 32), max_pixels=10**6)


def test_tiny_images_are_refused():
    with pytest.raises(ImageError, match="too small"):
        images.load_upload(encode(gradient(4, 30)), (32, 32), **LIMITS)


def test_load_file(tmp_path):
    path = tmp_path / "x.png"
    gradient().save(path)
    assert images.load_file(path, (16, 16)).array.shape == (16, 16, 3)
