"""Hostile uploads in real headless Chromium: each gets a message, then a good upload and a selection still work, in
this session and in another tab (run with `pytest --headless`)."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from tests.browser.helpers import box_select_and_time, open_app, pick_sample, settle_and_check_console, wait_for
from tests.dashboard.test_upload_battery import SVG, decompression_bomb, exif_rotated, quadrants, saved


def _upload(dash_duo, path) -> None:
    dash_duo.find_element("#image-upload input[type=file]").send_keys(str(path))


def _message(dash_duo, name: str) -> str:
    return wait_for(lambda: name in dash_duo.find_element("#message").text and dash_duo.find_element("#message").text,
                    message=f"the message about {name}")  # fmt: skip


def test_hostile_uploads_get_messages_and_the_app_keeps_serving(dash_duo, segx_app, tmp_path):
    open_app(dash_duo, segx_app)
    files = {
        "bomb.png": (decompression_bomb(), "too many pixels"),
        "drawing.svg": (SVG, "SVG (vector) images are not supported"),
        "cut.jpg": (saved(quadrants(256, 256), "JPEG")[:600], "damaged or truncated"),
        "empty.png": (b"", "empty"),
        "paper.pdf": (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "PDF files are not supported"),
    }
    for name, (data, expected) in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        _upload(dash_duo, path)
        assert expected in _message(dash_duo, name)
        assert dash_duo.find_element("#image-info").text == ""  # nothing was loaded

    good = tmp_path / "phone.jpg"
    good.write_bytes(exif_rotated(6))
    _upload(dash_duo, good)
    wait_for(lambda: dash_duo.find_element("#image-info").text.startswith("phone.jpg"), message="the good upload")
    assert "turned upright" in _message(dash_duo, "phone.jpg")
    box_select_and_time(dash_duo)  # a selection gives heatmaps on the uploaded image

    driver = dash_duo.driver
    first_tab = driver.current_window_handle
    driver.execute_script("window.open(arguments[0], '_blank');", dash_duo.server_url)
    driver.switch_to.window(next(handle for handle in driver.window_handles if handle != first_tab))
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".sample-thumb"), message="another session")
    pick_sample(dash_duo, 3)
    box_select_and_time(dash_duo, start=(-20, -30), size=(60, 50))
    settle_and_check_console(dash_duo)


def test_a_file_over_the_size_cap_is_refused_with_a_message(dash_duo, segx_app, browser_config, tmp_path):
    """dcc.Upload's max_size refuses the file in the browser before any callback runs; it must still say why."""
    open_app(dash_duo, segx_app)
    huge = tmp_path / "microscope.png"
    with open(huge, "wb") as handle:  # sparse: the browser reads only its size before refusing it
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(int(browser_config.max_upload_bytes) + 5 * 1024 * 1024)
    _upload(dash_duo, huge)
    text = _message(dash_duo, "microscope.png")
    assert "was not uploaded" in text and "the limit is" in text
    assert dash_duo.find_element("#image-info").text == ""
    settle_and_check_console(dash_duo)
