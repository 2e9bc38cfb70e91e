"""A battery of malformed and hostile image uploads, sent through the upload callback.

Every case is answered with a message (refused: the image in place is kept; accepted after a conversion: the message
says what was converted), and the server keeps serving: after each hostile upload a good upload still works in the
same session and in another one, and through the real Dash HTTP endpoint the app answers each hostile upload with a
200 and a message, then serves a good upload and a page load.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pytest
from dash import no_update
from PIL import Image

from dashboard import factory
from dashboard.callbacks import explain, upload
from dashboard.config import MiB
from dashboard.state.resources import methods
from dashboard.state.store import new_session_id
from dashboard.view import ids

RED, GREEN, BLUE, YELLOW = (230, 20, 20), (20, 200, 20), (20, 20, 230), (240, 230, 20)


# --- building hostile files ----------------------------------------------------------------------------------------
def uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def saved(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def quadrants(width: int = 48, height: int = 48) -> Image.Image:
    """Four flat colour quadrants: top-left red, top-right green, bottom-left blue, bottom-right yellow."""
    array = np.zeros((height, width, 3), dtype=np.uint8)
    h, w = height // 2, width // 2
    array[:h, :w], array[:h, w:], array[h:, :w], array[h:, w:] = RED, GREEN, BLUE, YELLOW
    return Image.fromarray(array)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: Callable[[], bytes] | bytes) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB, and a bomb must not be built in memory first)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    if isinstance(rows, bytes):
        idat = zlib.compress(rows, 9)
    else:
        compressor, parts = zlib.compressobj(9), []
        for _ in range(height):
            parts.append(compressor.compress(rows()))
        idat = b"".join(parts) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def decompression_bomb() -> bytes:
    """30000 x 30000 1-bit PNG: ~100 kB on the wire, 900 MP (2.7 GB as RGB) if decoded."""
    row = b"\x00" * (1 + 30000 // 8)
    return raw_png(30000, 30000, 1, 0, lambda: row)


def png16_rgb() -> bytes:
    """A 16-bit-per-channel RGB PNG of the quadrant image (each 8-bit value v stored as v * 257)."""
    pixels = np.asarray(quadrants(), dtype=">u2") * 257
    rows = b"".join(b"\x00" + pixels[y].tobytes() for y in range(pixels.shape[0]))
    return raw_png(pixels.shape[1], pixels.shape[0], 16, 2, rows)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims another size."""
    data = bytearray(saved(Image.new("RGB", (16, 16), RED), "JPEG"))
    start = data.find(b"\xff\xc0")
    data[start + 5 : start + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def noise_png(width: int = 64, height: int = 64) -> bytes:
    return saved(Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)), "PNG")


def exif_rotated(orientation: int) -> bytes:
    """A JPEG whose upright picture is `quadrants(48, 96)` (portrait), stored so that EXIF `orientation` restores it."""
    upright = quadrants(48, 96)
    inverse = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
               5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_270}  # fmt: skip
    exif = Image.Exif()
    exif[0x0112] = orientation
    return saved(upright.transpose(inverse[orientation]), "JPEG", quality=95, exif=exif.tobytes())


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (40, 40), colour) for colour in (RED, GREEN, BLUE)]
    return saved(frames[0], fmt, save_all=True, append_images=frames[1:])


def rgba() -> bytes:
    array = np.zeros((40, 40, 4), dtype=np.uint8)
    array[..., :3] = BLUE
    array[:, :20, 3] = 255  # left half opaque blue, right half fully transparent
    return saved(Image.fromarray(array), "PNG")


def text_bomb() -> bytes:
    """A valid little PNG carrying a zTXt chunk that inflates to 50 MB."""
    good = raw_png(16, 16, 8, 2, b"".join(b"\x00" + bytes(48) for _ in range(16)))
    ztxt = png_chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(b"a" * 50_000_000, 9))
    return good[:33] + ztxt + good[33:]


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" ' \
      b'height="64" fill="red"/></svg>'  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One upload: its data URI (built lazily), whether it is accepted, and what the message must say."""

    name: str
    contents: Callable[[], object]
    accepted: bool
    message: str  # regex the message must match (empty: no message expected)


REFUSED = [
    Case("truncated.png", lambda: uri(noise_png()[:1500]), False, r"damaged or truncated"),
    Case(
        "truncated.jpg",
        lambda: uri(saved(quadrants(256, 256), "JPEG")[:600], "image/jpeg"),
        False,
        r"damaged or truncated",
    ),
    Case(
        "notes.txt.png",
        lambda: uri(b"Dear diary, this is not a picture.\n" * 20),
        False,
        r"not a PNG, JPEG, WebP, TIFF, BMP or GIF image",
    ),
    Case("empty.png", lambda: uri(b""), False, r"empty"),
    Case("pixel.png", lambda: uri(saved(Image.new("RGB", (1, 1), RED), "PNG")), False, r"too small \(1.1\)"),
    Case(
        "huge.png",
        lambda: uri(saved(Image.new("1", (10000, 10000)), "PNG")),
        False,
        r"too large \(10000.10000 = 100\.0 MP\); the limit is 40 MP",
    ),
    Case("bomb.png", lambda: uri(decompression_bomb()), False, r"too many pixels|too large \(30000.30000"),
    Case(
        "header-bomb.jpg", lambda: uri(jpeg_claiming(65000, 65000), "image/jpeg"), False, r"too many pixels|too large"
    ),
    Case("text-bomb.png", lambda: uri(text_bomb()), False, r"damaged.*too large"),
    Case(
        "oversized.png",
        lambda: uri(b"\x89PNG\r\n\x1a\n" + bytes(11 * MiB)),
        False,
        r"too large \(11\.0 MiB\); the limit is 10\.0 MiB",
    ),
    Case("drawing.svg", lambda: uri(SVG, "image/svg+xml"), False, r"SVG \(vector\) images are not supported"),
    Case(
        "paper.pdf",
        lambda: uri(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "application/pdf"),
        False,
        r"PDF files are not supported",
    ),
    Case("no-header.png", lambda: base64.b64encode(noise_png()).decode(), False, r"could not be read"),
    Case("not-base64.png", lambda: "data:image/png," + "x" * 40, False, r"not base64"),
    Case("bad-base64.png", lambda: "data:image/png;base64,iVBORw0KGgo*&^%$", False, r"not valid base64"),
    Case("no-comma.png", lambda: "data:image/png;base64", False, r"could not be read"),
    Case("list.png", lambda: ["data:image/png;base64,AAAA"], False, r"could not be read"),
]

ACCEPTED = [
    Case(
        "grey16.png",
        lambda: uri(saved(Image.fromarray(np.tile(np.arange(0, 48000, 1000, dtype=np.uint16), (48, 1))), "PNG")),
        True,
        r"16-bit greyscale converted to RGB",
    ),
    Case("rgb16.png", lambda: uri(png16_rgb()), True, r"16 bits per channel reduced to 8"),
    Case(
        "cmyk.jpg",
        lambda: uri(saved(quadrants().convert("CMYK"), "JPEG", quality=95), "image/jpeg"),
        True,
        r"CMYK converted to RGB",
    ),
    Case("rgba.png", lambda: uri(rgba()), True, r"RGBA converted to RGB, transparency composited over white"),
    Case("palette.png", lambda: uri(saved(quadrants().convert("P"), "PNG")), True, r"palette converted to RGB"),
    Case("grey.png", lambda: uri(saved(quadrants().convert("L"), "PNG")), True, r"greyscale converted to RGB"),
    Case("bilevel.png", lambda: uri(saved(quadrants().convert("1"), "PNG")), True, r"1-bit black and white"),
    Case(
        "float.tif",
        lambda: uri(
            saved(Image.fromarray(np.linspace(-1, 1, 48 * 48, dtype=np.float32).reshape(48, 48)), "TIFF"), "image/tiff"
        ),
        True,
        r"floating-point greyscale converted",
    ),
    Case("animated.gif", lambda: uri(animated("GIF"), "image/gif"), True, r"first frame used"),
    Case("pages.tif", lambda: uri(animated("TIFF"), "image/tiff"), True, r"first frame used"),
    Case("rotated.jpg", lambda: uri(exif_rotated(6), "image/jpeg"), True, r"turned upright \(EXIF orientation 6\)"),
    Case("wrong-mime.png", lambda: uri(noise_png(), "image/jpeg"), True, r""),
    Case("octet-stream.png", lambda: uri(noise_png(), "application/octet-stream"), True, r""),
    Case("sliver.png", lambda: uri(saved(quadrants(2000, 8), "PNG")), True, r""),
]


def good_upload() -> str:
    return uri(saved(quadrants(64, 64), "PNG"))


@pytest.fixture()
def ask(store, adapter, config):
    """Call the upload callback's handler for (contents, filename, session)."""

    def call(contents, filename, session):
        return upload.handle_upload(contents, filename, session, adapter, store, config)

    return call


def assert_good_upload_works(ask, store, adapter, session: str) -> None:
    ref, message = ask(good_upload(), "good.png", session)
    assert ref is not no_update and ref["height"] == ref["width"] == 32
    assert message[2] is False  # no message: the message area is closed
    image = store.get(session, "image", ref["key"])
    assert image[4, 4].tolist() == list(RED) and image[-4, -4].tolist() == list(YELLOW)
    # ... and a whole explanation request works on it.
    region = {"key": store.put_array(session, "region", np.ones((32, 32), bool)), "image": ref["key"], "kind": "box",
              "pixels": 1024}  # fmt: skip
    fast = [m.name for m in methods() if not m.slow][:2]
    out = explain.handle_explain(region, 0, fast, ref, session, None, 0.8, None, None, adapter=adapter, store=store,
                                 infos=methods())  # fmt: skip
    assert len(out[0]) == len(fast)


def test_the_battery_has_at_least_twenty_cases():
    assert len(REFUSED) + len(ACCEPTED) >= 20 and len({c.name for c in REFUSED + ACCEPTED}) == len(REFUSED + ACCEPTED)


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_refused_uploads_get_a_message_and_the_server_keeps_serving(case, ask, store, adapter, session):
    ref, (text, colour, is_open) = ask(case.contents(), case.name, session)
    assert ref is no_update  # the image in place stays
    assert is_open and colour == "danger"
    assert text.startswith(f"Could not use “{case.name}”")
    assert re.search(case.message, text), text
    assert "Traceback" not in text
    assert_good_upload_works(ask, store, adapter, session)
    assert_good_upload_works(ask, store, adapter, new_session_id())


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.name)
def test_accepted_uploads_are_converted_and_say_so(case, ask, store, adapter, session):
    ref, (text, colour, is_open) = ask(case.contents(), case.name, session)
    assert ref is not no_update, text
    image = store.get(session, "image", ref["key"])
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    if case.message:
        assert is_open and colour == "info" and re.search(case.message, text), text
        assert text.startswith(f"Loaded “{case.name}”")
    else:
        assert is_open is False
    assert_good_upload_works(ask, store, adapter, session)


def quadrant_colours(image: np.ndarray) -> list[list[int]]:
    """Mean colour at the centre of each quadrant: TL, TR, BL, BR."""
    h, w = image.shape[:2]
    centres = [(h // 4, w // 4), (h // 4, 3 * w // 4), (3 * h // 4, w // 4), (3 * h // 4, 3 * w // 4)]
    return [image[y - 2 : y + 2, x - 2 : x + 2].reshape(-1, 3).mean(axis=0).round().astype(int).tolist()
            for y, x in centres]  # fmt: skip


def assert_colours(actual: list[list[int]], expected: list[tuple[int, int, int]], tolerance: int = 40) -> None:
    assert np.abs(np.asarray(actual) - np.asarray(expected)).max() <= tolerance, (actual, expected)


@pytest.mark.parametrize("orientation", range(2, 9))
def test_exif_rotated_jpeg_comes_out_upright(orientation, ask, store, session):
    """Pixel content, not only the shape: the quadrants land where they are in the upright picture."""
    ref, message = ask(uri(exif_rotated(orientation), "image/jpeg"), "phone.jpg", session)
    assert f"EXIF orientation {orientation}" in message[0]
    image = store.get(session, "image", ref["key"])  # 48x96 upright, centre-cropped to a square: quadrants intact
    assert_colours(quadrant_colours(image), [RED, GREEN, BLUE, YELLOW])


def test_converted_pixels_are_right(ask, store, session):
    def uploaded(case_name: str) -> np.ndarray:
        case = next(c for c in ACCEPTED if c.name == case_name)
        ref, _ = ask(case.contents(), case.name, session)
        return store.get(session, "image", ref["key"])

    expected = [RED, GREEN, BLUE, YELLOW]
    for name in ("rgb16.png", "cmyk.jpg", "palette.png"):
        assert_colours(quadrant_colours(uploaded(name)), expected)
    grey = uploaded("grey.png")
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    grey16 = uploaded("grey16.png")[16, :, 0].astype(int)
    assert grey16[0] < 10 and grey16[-1] > 240 and (np.diff(grey16) >= 0).all()  # the ramp survives, left to right
    rgba_image = uploaded("rgba.png")
    assert_colours([rgba_image[16, 4].tolist(), rgba_image[16, 28].tolist()], [BLUE, (255, 255, 255)], tolerance=2)
    assert_colours([uploaded("animated.gif")[16, 16].tolist(), uploaded("pages.tif")[16, 16].tolist()], [RED, RED], 2)


# --- through the real HTTP endpoint ---------------------------------------------------------------------------------
def _upload_dependency(client) -> dict:
    deps = client.get("/_dash-dependencies").get_json()
    return next(d for d in deps if any(i["id"] == ids.UPLOAD and i["property"] == "contents" for i in d["inputs"]))


def _post_upload(client, dep: dict, contents, filename: str, session: str) -> dict:
    outputs = []
    for part in dep["output"].strip(".").split("..."):
        component, prop = part.split("@")[0].rsplit(".", 1)
        outputs.append({"id": component, "property": prop})
    body = {
        "output": dep["output"],
        "outputs": outputs,
        "inputs": [{"id": ids.UPLOAD, "property": "contents", "value": contents}],
        "changedPropIds": [f"{ids.UPLOAD}.contents"],
        "state": [{"id": ids.UPLOAD, "property": "filename", "value": filename},
                  {"id": ids.SESSION, "property": "data", "value": session}],
    }  # fmt: skip
    response = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_json()["response"]


def test_hostile_uploads_through_the_dash_endpoint_leave_the_app_serving(config, tmp_path):
    cfg = replace(config, state_dir=str(tmp_path))
    dash_app = factory.create_app(config=cfg, manager_factory=lambda c: None, warmup=False)
    client = dash_app.server.test_client()
    dep = _upload_dependency(client)
    session = new_session_id()
    for case in REFUSED:
        response = _post_upload(client, dep, case.contents(), case.name, session)
        assert ids.event(ids.IMAGE, "upload") not in response  # no image event: the image in place is kept
        message = response[ids.event(ids.MESSAGE, "upload")]["data"]["set"]  # the upload's message event
        assert message["is_open"] is True and case.name in message["children"]
    for other in (session, new_session_id()):
        response = _post_upload(client, dep, good_upload(), "good.png", other)
        assert response[ids.event(ids.IMAGE, "upload")]["data"]["set"]["data"]["height"] == 32
    assert client.get("/_dash-layout").status_code == 200
