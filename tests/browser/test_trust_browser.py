"""End to end in real headless Chromium: the Trust section on the demo model (run with `pytest --headless`).

Pick a sample, drag a box, run the trust metrics: the inside share and the agreement matrix come at once, the
deletion/insertion curves and the sanity check from a background job with progress; then export the zip and read the
downloaded file.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
from PIL import Image

from tests.browser.helpers import (
    box_select_and_time,
    card_methods,
    open_app,
    pick_sample,
    settle_and_check_console,
    wait_for,
)

FIGURE_JS = "const g = document.querySelector(arguments[0] + ' .js-plotly-plot'); return g && g.data ? g.data : null;"


def figure_data(dash_duo, graph_id: str):
    return dash_duo.driver.execute_script(FIGURE_JS, f"#{graph_id}")


def click(dash_duo, selector: str) -> None:
    element = dash_duo.find_element(selector)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    wait_for(lambda: element.is_enabled(), message=f"{selector} enabled")
    wait_for(lambda: element.click() or True, message=f"a clickable {selector}")  # retried while covered


def test_trust_metrics_and_export(dash_duo, segx_app):
    open_app(dash_duo, segx_app)
    pick_sample(dash_duo, 7)
    box_select_and_time(dash_duo)
    methods = card_methods(dash_duo, "#fast-grid")
    assert len(methods) >= 3

    click(dash_duo, "#trust-run")
    # Cheap metrics, from the stored maps within the request.
    agreement = wait_for(lambda: (d := figure_data(dash_duo, "trust-agreement")) and d[0]["type"] == "heatmap" and d,
                         message="agreement matrix")  # fmt: skip
    z = np.array(agreement[0]["z"], dtype=float)
    assert z.shape == (len(methods), len(methods)) and np.allclose(np.diag(z), 1)
    shares = wait_for(lambda: (d := figure_data(dash_duo, "trust-share")) and d[0]["type"] == "bar" and d,
                      message="inside share")  # fmt: skip
    assert len(shares[0]["x"]) == len(methods) and all(0 <= x <= 1 for x in shares[0]["x"])

    # The background job: progress shows, then the curves and the sanity check are drawn.
    seen = set()

    def curves_drawn():
        seen.add(dash_duo.find_element("#trust-progress-text").text)
        data = figure_data(dash_duo, "trust-curves")
        return data if data and len(data) >= 2 * (len(methods) + 1) else None

    curves = wait_for(curves_drawn, timeout=240, message="deletion/insertion curves")
    names = {trace["name"] for trace in curves}
    assert "random order" in names and len(names) == len(methods) + 1
    assert all(len(trace["x"]) == 21 for trace in curves)  # 20 steps (the default) -> 21 points
    sanity = wait_for(lambda: (d := figure_data(dash_duo, "trust-sanity")) and len(d) == 2 * len(methods) and d,
                      timeout=240, message="sanity-check curves")  # fmt: skip
    assert all(len(trace["x"]) >= 2 for trace in sanity)
    rows = dash_duo.find_elements("#trust-table tbody tr")
    assert sorted(r.get_attribute("data-method") for r in rows) == sorted(methods)
    wait_for(lambda: dash_duo.find_element("#trust-status").text.startswith("Trust metrics done"), message="done")
    print(f"\ntrust job progress messages seen: {sorted(t for t in seen if t)}")

    # Export: the zip lands in the browser's download folder.
    click(dash_duo, "#trust-export")
    folder = dash_duo.download_path
    path = wait_for(lambda: [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".zip")],
                    timeout=60, message="downloaded zip")[0]  # fmt: skip
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
