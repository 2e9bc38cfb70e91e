"""End to end in real headless Chromium: the Trust section on the demo model (run with `pytest --headless`).

Pick a sample, drag a box, run the trust metrics: the inside share and the agreement matrix come at once, the
deletion/insertion curves and the sanity check from a background job with progress; then export the zip and read the
downloaded file.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from PIL import Image

from tests.browser.helpers import (
    box_select_and_time,
    card_methods,
    export_zip,
    open_app,
    pick_sample,
    run_trust,
    settle_and_check_console,
)


def test_trust_metrics_and_export(dash_duo, segx_app):
    open_app(dash_duo, segx_app)
    pick_sample(dash_duo, 7)
    box_select_and_time(dash_duo)
    methods = card_methods(dash_duo, "#fast-grid")
    assert len(methods) >= 3

    run_trust(dash_duo, methods)

    # Export: the zip lands in the browser's download folder.
    path = export_zip(dash_duo)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert {"image.png", "region.png", "settings.json", "maps.npz", "metrics/deletion_insertion.csv",
                "metrics/sanity.csv", "metrics/agreement.csv"} <= names  # fmt: skip
        assert {f"heatmaps/{m}.png" for m in methods} <= names
        settings = json.loads(archive.read("settings.json"))
        assert settings["model"] == "demo" and list(settings["methods"]) == methods
        with np.load(io.BytesIO(archive.read("maps.npz"))) as npz:
            assert set(methods) <= set(npz.files)
            assert any("/layers/" in key for key in npz.files)
        with Image.open(io.BytesIO(archive.read("region.png"))) as region:
            assert np.asarray(region).max() == 255
    assert "Exported" in dash_duo.find_element("#trust-status").text
    settle_and_check_console(dash_duo)
