"""The model's errors and every class at once in real headless Chromium: upload an image and its ground truth, see
per-class IoU, pick an error region, explain it (with the true class as the contrast), see the heatmaps, export and
find the question in settings.json; then the every-class overview grid with the linked zoom."""

from __future__ import annotations

import json
import time
import zipfile

import numpy as np
from PIL import Image

from dashboard.state.resources import get_adapter
from models import CLASS_NAMES, SAMPLES_DIR
from tests.browser.helpers import (
    card_methods,
    click,
    drag,
    export_zip,
    open_app,
    ranges,
    settle_and_check_console,
    wait_for,
)
from tests.browser.test_question_browser import choose

SAMPLE = "mushroom_02.png"


def _upload(dash_duo, selector: str, path) -> None:
    dash_duo.find_element(f"{selector} input[type=file]").send_keys(str(path))


def _overview_ranges(dash_duo) -> list[list[float]]:
    return dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#overview-grid .ov-card .js-plotly-plot'))"
        ".map(g => g._fullLayout.xaxis.range.slice());"
    )


def test_upload_ground_truth_explain_an_error_export_and_overview(dash_duo, segx_app, browser_config):
    open_app(dash_duo, segx_app)
    _upload(dash_duo, "#image-upload", SAMPLES_DIR / SAMPLE)
    wait_for(lambda: dash_duo.find_element("#image-info").text.startswith(SAMPLE), message="the uploaded image")
    _upload(dash_duo, "#truth-upload", SAMPLES_DIR / "ground_truth" / SAMPLE)
    wait_for(lambda: dash_duo.find_element("#truth-info").text.startswith(f"Ground truth: {SAMPLE}"),
             message="the ground truth")  # fmt: skip
    truth = np.asarray(Image.open(SAMPLES_DIR / "ground_truth" / SAMPLE))
    rows = wait_for(lambda: dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#errors-table tbody tr')).map(r => "
        "Array.from(r.cells).map(c => c.textContent));"), message="the IoU table")  # fmt: skip
    assert {row[0] for row in rows} >= {CLASS_NAMES[c] for c in np.unique(truth)}
    assert all(0.0 <= float(row[1]) <= 1.0 for row in rows if row[1] != "n/a")

    # The errors card grows when its table arrives: let the layout settle before opening the picker.
    element = dash_duo.find_element("#error-region")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    time.sleep(0.5)
    choose(dash_duo, "#error-region", "false positives of stem")
    picked = "Error region (false positives of stem)"
    info = wait_for(lambda: (t := dash_duo.find_element("#region-info").text) and t.startswith(picked) and t,
                    message="the error region")  # fmt: skip
    pixels = int(info.split("·")[1].split("px")[0])
    click(dash_duo, "#explain-error")
    text = wait_for(lambda: (t := dash_duo.find_element("#question-text").text) and "rather than" in t and t,
                    message="the error question")  # fmt: skip
    assert "“stem” rather than “" in text
    contrast_name = text.split("rather than “")[1].rstrip("”?")
    wait_for(lambda: len(card_methods(dash_duo, "#fast-grid")) >= 3, timeout=300, message="heatmaps of the error")

    path = export_zip(dash_duo)
    with zipfile.ZipFile(path) as archive:
        question = json.loads(archive.read("settings.json"))["question"]
    assert question["target_name"] == "stem" and question["contrast_name"] == contrast_name
    assert question["label"].startswith("false-positive(") and question["region"]["pixels"] == pixels

    choose(dash_duo, "#overview-method", "Grad-CAM")
    wait_for(lambda: len(_overview_ranges(dash_duo)) >= 3, timeout=120, message="the overview grid")
    shown = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#overview-grid .ov-card')).map(c => c.dataset.class);")
    image = np.asarray(Image.open(SAMPLES_DIR / SAMPLE).convert("RGB"))
    predicted = get_adapter(browser_config).predict(image).argmax(-1)
    assert [int(c) for c in shown] == sorted(int(c) for c in np.unique(predicted))

    # The linked zoom: a zoom box on one overview card zooms the mask figure, the heatmaps and every other card.
    before = _overview_ranges(dash_duo)[0]
    card = dash_duo.find_element("#overview-grid .ov-card .nsewdrag")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", card)
    drag(dash_duo, card, (-40, -40), [(30, 30), (30, 30)])
    zoomed = wait_for(lambda: (r := _overview_ranges(dash_duo)[0]) != before and r, message="a zoomed overview card")

    def linked() -> bool:
        # Same centre and about the same extent everywhere: Plotly keeps each figure's pixel aspect ratio, so one
        # zoom resolves to slightly different x ranges on plot areas of different shapes.
        width, centre = zoomed[1] - zoomed[0], (zoomed[0] + zoomed[1]) / 2
        everywhere = [*_overview_ranges(dash_duo), *ranges(dash_duo).values()]
        return len(everywhere) > 4 and all(
            abs((r[0] + r[1]) / 2 - centre) < 1 and abs((r[1] - r[0]) / width - 1) < 0.5 for r in everywhere
        )

    wait_for(linked, message="the same zoom on every figure")
    settle_and_check_console(dash_duo)
