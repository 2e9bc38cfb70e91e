"""End-to-end tests in real headless Chromium (dash_duo; run with `pytest --headless`).

They drive the real app on the demo model: pick a sample, drag a box / lasso on the mask figure, watch heatmaps of
several methods appear, move the layer slider, zoom, upload a PNG, run SHAP as a background job with progress and
cancel, and check that the browser console stays free of errors.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.helpers import (
    box_select_and_time,
    card_methods,
    drag,
    drag_area,
    open_app,
    overlay_sources,
    photos,
    pick_sample,
    ranges,
    settle_and_check_console,
    tick_method,
    wait_for,
)


def test_box_selection_shows_heatmaps_and_the_layer_slider_swaps_cam_maps(dash_duo, segx_app):
    open_app(dash_duo, segx_app)
    pick_sample(dash_duo, 1)
    first = box_select_and_time(dash_duo)
    methods = card_methods(dash_duo, "#fast-grid")
    assert len(methods) >= 3 and "gradcam" in methods and "saliency" in methods
    assert dash_duo.find_element("#region-info").text.startswith("Box ·")
    second = box_select_and_time(dash_duo, start=(-30, -10), size=(70, 60))
    print(f"\nbox selection -> heatmaps visible ({len(methods)} methods): first {first:.0f} ms, second {second:.0f} ms")
    drawn = photos(dash_duo)  # one photo URL under every figure, drawn and served as a PNG
    assert set(methods) | {"mask"} <= set(drawn)
    assert len({url for url, _, _ in drawn.values()}) == 1 and not drawn["mask"][0].startswith("data:")
    assert all(status == 200 and kind == "image/png" for _, status, kind in drawn.values()), drawn

    before = overlay_sources(dash_duo)
    subtitle = dash_duo.find_element('[id*="heatmap-subtitle"][id*="gradcam"]').text
    thumb = dash_duo.find_element("#layer-slider .dash-slider-thumb")
    thumb.click()
    thumb.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    wait_for(lambda: overlay_sources(dash_duo)["gradcam"] != before["gradcam"], message="Grad-CAM at another layer")
    after = overlay_sources(dash_duo)
    assert after["saliency"] == before["saliency"]  # not a CAM: unchanged
    assert dash_duo.find_element('[id*="heatmap-subtitle"][id*="gradcam"]').text != subtitle
    settle_and_check_console(dash_duo)


def test_lasso_selection_drawn_with_the_lasso_tool(dash_duo, segx_app):
    open_app(dash_duo, segx_app)
    pick_sample(dash_duo, 2)
    area = drag_area(dash_duo)
    dash_duo.driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('mousemove', {bubbles: true}))", area)
    dash_duo.find_element("#mask-graph .modebar-btn[data-val=lasso]").click()
    drag(dash_duo, area, (-70, -60), [(50, -5), (60, 25), (10, 60), (-40, 50), (-70, -20), (-10, -90)])
    wait_for(lambda: dash_duo.find_element("#region-info").text.startswith("Lasso ·"), message="lasso region")
    wait_for(lambda: len(card_methods(dash_duo, "#fast-grid")) >= 3, message="heatmaps of the lasso region")
    shapes = dash_duo.driver.execute_script(
        "return document.querySelector('#mask-graph .js-plotly-plot').layout.shapes"
    )
    assert len(shapes) >= 2  # the region outline (halo + line)
    settle_and_check_console(dash_duo)


def test_click_and_whole_class_selections(dash_duo, segx_app):
    open_app(dash_duo, segx_app)
    pick_sample(dash_duo, 0)
    drag(dash_duo, drag_area(dash_duo), (5, 5), [])  # a click without a drag: one pixel
    wait_for(lambda: dash_duo.find_element("#region-info").text.startswith("Pixel · 1 px"), message="pixel region")
    wait_for(lambda: len(card_methods(dash_duo, "#fast-grid")) >= 3, message="heatmaps of the pixel")
    picker = dash_duo.find_element("#class-picker")

    def open_picker() -> bool:  # scrolled again on each try: a message opening above it moves the page
        dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", picker)
        picker.click()
        return True

    wait_for(open_picker, message="a clickable class picker")
    option = wait_for(lambda: [o for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]")
                               if "%" in o.text], message="class options")  # fmt: skip
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'nearest'});", option[-1])
    wait_for(lambda: option[-1].click() or True, message="a clickable class option")  # retried while covered
    wait_for(lambda: dash_duo.find_element("#region-info").text.startswith("Class ·"), message="class region")
    settle_and_check_console(dash_duo)


def test_zoom_and_pan_are_linked_across_all_figures(dash_duo, segx_app):
    open_app(dash_duo, segx_app)
    pick_sample(dash_duo, 3)
    box_select_and_time(dash_duo)
    wait_for(lambda: len(ranges(dash_duo)) >= 4, message="heatmap figures")
    full = ranges(dash_duo)["saliency"]
    drag(dash_duo, drag_area(dash_duo, '[data-method="saliency"]'), (-40, -40), [(30, 30), (30, 30)])

    def linked() -> bool:
        current = ranges(dash_duo)
        zoomed = current["saliency"]
        width, centre = zoomed[1] - zoomed[0], (zoomed[0] + zoomed[1]) / 2
        # Same centre and about the same extent everywhere: Plotly keeps each figure's pixel aspect ratio, so a zoom
        # box resolves to slightly different x ranges on plot areas of different shapes.
        return width < 0.8 * (full[1] - full[0]) and all(
            abs((r[0] + r[1]) / 2 - centre) < 1 and abs((r[1] - r[0]) / width - 1) < 0.5 for r in current.values()
        )

    try:
        wait_for(linked, message="the same zoom on every figure")
    except AssertionError:
        print("ranges before:", full, "after:", ranges(dash_duo))
        raise
    settle_and_check_console(dash_duo)


def test_upload_a_png_and_a_broken_file(dash_duo, segx_app, tmp_path):
    open_app(dash_duo, segx_app)
    rng = np.random.default_rng(0)
    photo = tmp_path / "my photo.png"
    Image.fromarray(rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)).save(photo)
    upload = dash_duo.find_element("#image-upload input[type=file]")
    upload.send_keys(str(photo))
    wait_for(lambda: dash_duo.find_element("#image-info").text.startswith("my photo.png"), message="uploaded image")
    assert "centre crop" in dash_duo.find_element("#image-info").text

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not an image")
    dash_duo.find_element("#image-upload input[type=file]").send_keys(str(broken))
    wait_for(lambda: "broken.png" in dash_duo.find_element("#message").text, message="upload error message")
    assert "not a PNG, JPEG" in dash_duo.find_element("#message").text
    assert dash_duo.find_element("#image-info").text.startswith("my photo.png")  # nothing lost

    box_select_and_time(dash_duo)  # the app keeps working
    settle_and_check_console(dash_duo)


def test_shap_runs_as_a_background_job_with_progress(dash_duo, segx_app):
    open_app(dash_duo, segx_app)
    pick_sample(dash_duo, 4)
    box_select_and_time(dash_duo)
    fast_before = card_methods(dash_duo, "#fast-grid")
    tick_method(dash_duo, "SHAP (Partition")
    wait_for(lambda: dash_duo.find_element("#slow-panel").is_displayed(), message="job panel")
    wait_for(lambda: dash_duo.find_elements('#slow-grid [data-method="shap"]'), message="SHAP placeholder")
    seen = set()

    def finished() -> bool:
        seen.add(dash_duo.find_element("#slow-progress-text").text)
        return bool(dash_duo.find_elements('#slow-grid [data-method="shap"] .hm-graph .js-plotly-plot'))

    wait_for(finished, timeout=240, message="SHAP result")
    assert card_methods(dash_duo, "#fast-grid") == fast_before  # fast maps stayed on screen
    assert any(text for text in seen), "no progress message was shown"
    print(f"\nSHAP job progress messages seen: {sorted(seen)}")
    wait_for(lambda: not dash_duo.find_element("#slow-panel").is_displayed(), message="panel hidden")
    note = dash_duo.find_element('[data-method="shap"] .hm-note').text
    assert "Σ" in note  # additivity: the map sums to S - S0
    settle_and_check_console(dash_duo)


def test_cancel_a_background_job(dash_duo, segx_app):
    open_app(dash_duo, segx_app)
    pick_sample(dash_duo, 5)
    box_select_and_time(dash_duo)
    tick_method(dash_duo, "SHAP (Partition")
    cancel = wait_for(lambda: dash_duo.find_element("#slow-cancel").is_enabled() and dash_duo.find_element(
        "#slow-cancel"), message="cancel button")  # fmt: skip
    cancel.click()
    wait_for(lambda: "Cancelled" in dash_duo.find_element("#slow-grid").text, message="cancelled placeholder")
    wait_for(lambda: not dash_duo.find_element("#slow-panel").is_displayed(), message="panel hidden")
    box_select_and_time(dash_duo, start=(-20, -20), size=(60, 60))  # still responsive
    settle_and_check_console(dash_duo)


def test_two_browser_sessions_are_independent(dash_duo, segx_app):
    open_app(dash_duo, segx_app)
    first_name = pick_sample(dash_duo, 0)
    box_select_and_time(dash_duo)
    driver = dash_duo.driver
    first_tab = driver.current_window_handle
    driver.execute_script("window.open(arguments[0], '_blank');", dash_duo.server_url)
    second_tab = next(handle for handle in driver.window_handles if handle != first_tab)
    driver.switch_to.window(second_tab)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".sample-thumb"), message="second session")
    assert driver.find_element(By.ID, "image-info").text == ""  # a fresh session: nothing loaded
    second_name = pick_sample(dash_duo, 6)
    box_select_and_time(dash_duo, start=(-20, -30), size=(60, 50))
    driver.switch_to.window(first_tab)
    assert driver.find_element(By.ID, "image-info").text.startswith(first_name) and first_name != second_name
    box_select_and_time(dash_duo, start=(-10, -10), size=(50, 40))  # the first session still works on its image
    assert driver.find_element(By.ID, "image-info").text.startswith(first_name)
    settle_and_check_console(dash_duo)
