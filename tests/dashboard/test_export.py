"""The export zip (dashboard.usecases.export): a round trip through zipfile, Pillow, np.load, json and csv."""

from __future__ import annotations

import base64
import csv
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from dashboard.usecases import export
from dashboard.view.render import heatmap_uri


def read_png(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    with Image.open(io.BytesIO(archive.read(name))) as img:
        return np.asarray(img)


@pytest.fixture()
def inputs():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    region = np.zeros((24, 32), dtype=bool)
    region[5:12, 8:20] = True
    heatmaps = {"gradcam": rng.random((24, 32)).astype(np.float32),
                "gradcam++": rng.random((24, 32)).astype(np.float32),
                "saliency": rng.normal(size=(24, 32)).astype(np.float32)}  # fmt: skip
    per_layer = {"gradcam": {"enc_conv": rng.random((24, 32)).astype(np.float32),
                             "dec_conv": rng.random((24, 32)).astype(np.float32)}}  # fmt: skip
    signed = {"gradcam": False, "gradcam++": False, "saliency": True}
    settings = {"model": "demo", "class": {"name": "cap", "index": 1}, "layer": "dec_conv",
                "methods": {"saliency": {"absolute": False}, "gradcam": {}},
                "packages": export.package_versions(), "seed": np.int64(3)}  # fmt: skip
    return image, region, heatmaps, per_layer, signed, settings


def faithfulness_plain():
    fractions = [0.0, 0.5, 1.0]
    curve = {"fractions": fractions, "scores": [2.0, 1.0, 0.5], "auc": 1.125, "normalized_auc": 0.5}
    return {
        "gradcam": {"deletion": curve, "insertion": {**curve, "scores": [0.5, 1.5, 2.0], "auc": 1.375},
                    "random_deletion": {**curve, "auc": 1.2}, "random_insertion": {**curve, "auc": 1.3},
                    "inside_share": 0.75},
        "saliency": {"deletion": curve, "insertion": curve, "inside_share": 0.25},
    }  # fmt: skip


def test_round_trip(inputs):
    image, region, heatmaps, per_layer, signed, settings = inputs
    maps = export.flatten_maps(heatmaps, per_layer)
    overlays = {m: export.overlay_rgba(h, signed[m]) for m, h in heatmaps.items()}
    sanity = {"depths": ["logits", "dec_conv"], "spearman": {"gradcam": [0.9, 0.2], "saliency": [0.99, 0.98]},
              "ssim": {"gradcam": [0.8, 0.1], "saliency": [0.97, 0.95]}, "flagged": {"saliency": True},
              "spearman_abs": {"saliency": [0.5, 0.25]}}  # fmt: skip
    tables = {
        "deletion_insertion.csv": export.curves_csv(faithfulness_plain()),
        "auc.csv": export.auc_csv(faithfulness_plain()),
        "sanity.csv": export.sanity_csv(sanity),
        "agreement.csv": export.agreement_csv(["gradcam", "saliency"], np.array([[1.0, 0.3], [0.3, 1.0]])),
    }
    data = export.build_zip(image=image, region=region, settings=settings, maps=maps, overlays=overlays,
                            opacity=0.5, tables=tables)  # fmt: skip

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        names = set(archive.namelist())
        np.testing.assert_array_equal(read_png(archive, "image.png"), image)
        np.testing.assert_array_equal(read_png(archive, "region.png") == 255, region)
        assert set(np.unique(read_png(archive, "region.png"))) == {0, 255}
        parsed = json.loads(archive.read("settings.json"))
        assert parsed["class"] == {"name": "cap", "index": 1} and parsed["layer"] == "dec_conv"
        assert parsed["seed"] == 3 and parsed["packages"]["numpy"] == np.__version__
        assert set(parsed["packages"]) == set(export.PACKAGES)
        with np.load(io.BytesIO(archive.read("maps.npz"))) as npz:
            assert set(npz.files) == {"gradcam", "gradcam++", "saliency", "gradcam/layers/enc_conv",
                                      "gradcam/layers/dec_conv"}  # fmt: skip
            for method, heatmap in heatmaps.items():
                np.testing.assert_array_equal(npz[method], heatmap)
                assert npz[method].dtype == np.float32
            for layer, heatmap in per_layer["gradcam"].items():
                np.testing.assert_array_equal(npz[f"gradcam/layers/{layer}"], heatmap)
        for method in heatmaps:
            name = export.safe_name(method)
            assert {f"heatmaps/{name}.png", f"heatmaps/{name}_on_image.png"} <= names
            np.testing.assert_array_equal(read_png(archive, f"heatmaps/{name}.png"), overlays[method])
            on_image = read_png(archive, f"heatmaps/{name}_on_image.png")
            assert on_image.shape == image.shape
        rows = list(csv.DictReader(io.StringIO(archive.read("metrics/deletion_insertion.csv").decode())))
        gradcam_insertion = [r for r in rows if r["method"] == "gradcam" and r["curve"] == "insertion"]
        assert [float(r["score"]) for r in gradcam_insertion] == [0.5, 1.5, 2.0]
        assert {r["curve"] for r in rows if r["method"] == "saliency"} == {"deletion", "insertion"}
        aucs = {r["method"]: r for r in csv.DictReader(io.StringIO(archive.read("metrics/auc.csv").decode()))}
        assert float(aucs["gradcam"]["insertion_auc"]) == 1.375 and float(aucs["gradcam"]["inside_share"]) == 0.75
        assert aucs["saliency"]["random_deletion_auc"] == ""
        assert float(aucs["saliency"]["deletion_normalized_auc"]) == 0.5
        sanity_rows = list(csv.DictReader(io.StringIO(archive.read("metrics/sanity.csv").decode())))
        assert len(sanity_rows) == 4 and sanity_rows[1]["depth"] == "dec_conv"
        assert float(sanity_rows[1]["ssim"]) == 0.1 and sanity_rows[2]["flagged"] == "True"
        assert sanity_rows[1]["spearman_abs"] == "" and float(sanity_rows[3]["spearman_abs"]) == 0.25
        agreement = list(csv.reader(io.StringIO(archive.read("metrics/agreement.csv").decode())))
        assert agreement[0] == ["method", "gradcam", "saliency"] and float(agreement[1][2]) == 0.3


def test_overlay_png_is_the_cards_rendering(inputs):
    _, _, heatmaps, _, signed, _ = inputs
    for method, heatmap in heatmaps.items():
        uri, _ = heatmap_uri(heatmap, signed[method])
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as card:
            card_pixels = np.asarray(card.convert("RGBA"))  # a palette PNG, as the browser decodes it
        with Image.open(io.BytesIO(export.png_bytes(export.overlay_rgba(heatmap, signed[method])))) as exported:
            np.testing.assert_array_equal(np.asarray(exported), card_pixels)


def test_composite_blends_by_alpha_and_opacity():
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    overlay = np.zeros((2, 2, 4), dtype=np.uint8)
    overlay[..., 0] = 255
    overlay[0, 0, 3] = 255  # opaque red
    out = export.composite(image, overlay, opacity=0.5)
    np.testing.assert_array_equal(out[0, 0], [178, 50, 50])  # half way between 100 and (255, 0, 0), rounded
    np.testing.assert_array_equal(out[1, 1], [100, 100, 100])  # transparent: the image
    np.testing.assert_array_equal(export.composite(image, overlay, opacity=1.0)[0, 0], [255, 0, 0])


def test_without_metrics_or_overlays_the_zip_still_has_image_region_settings_and_maps(inputs):
    image, region, heatmaps, _, _, settings = inputs
    data = export.build_zip(image=image, region=region, settings=settings, maps=export.flatten_maps(heatmaps))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert set(archive.namelist()) == {"image.png", "region.png", "settings.json", "maps.npz"}
        kinds = {info.filename: info.compress_type for info in archive.infolist()}
        # compressed formats are stored as they are (deflating them again costs time and saves nothing); text deflated
        assert kinds == {"image.png": zipfile.ZIP_STORED, "region.png": zipfile.ZIP_STORED,
                         "maps.npz": zipfile.ZIP_STORED, "settings.json": zipfile.ZIP_DEFLATED}  # fmt: skip
        with np.load(io.BytesIO(archive.read("maps.npz"))) as stored:
            for key, value in export.flatten_maps(heatmaps).items():
                np.testing.assert_array_equal(stored[key], value)


def test_mismatched_region_is_refused(inputs):
    image, _, _, _, _, settings = inputs
    with pytest.raises(ValueError, match="do not match"):
        export.build_zip(image=image, region=np.ones((5, 5), bool), settings=settings, maps={})


def test_safe_names_and_versions():
    assert export.safe_name("gradcam++") == "gradcam++"
    assert export.safe_name("../etc/passwd") == "etc_passwd"
    assert export.safe_name("a b/c") == "a_b_c"
    versions = export.package_versions(("numpy", "surely-not-installed-pkg"))
    assert versions == {"numpy": np.__version__, "surely-not-installed-pkg": None}
    assert export.package_versions(("tensorflow",))["tensorflow"] is not None  # installed as tensorflow-cpu
