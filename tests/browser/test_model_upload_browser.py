"""Model upload in real headless Chromium (app started with model upload allowed; run with `pytest --headless`):
a hostile archive is refused with a message, a benign U-Net then serves this page (title bar, prediction, heatmaps)
while a second tab keeps the demo model."""

from __future__ import annotations

from dataclasses import replace

import pytest
from selenium.webdriver.common.by import By

from tests import hostile_models as hostile
from tests.browser.helpers import box_select_and_time, open_app, pick_sample, settle_and_check_console, wait_for


@pytest.fixture()
def archives(tmp_path):
    """(marker, hostile path, benign path), built before the app: its warm-up thread imports TensorFlow, and two
    threads importing it at once fail."""
    marker = tmp_path / "PWNED"
    hostile_path, benign_path = tmp_path / "evil.keras", tmp_path / "my_unet.keras"
    hostile_path.write_bytes(hostile.lambda_archive(tmp_path, marker))
    benign_path.write_bytes(hostile.benign_unet_bytes(tmp_path))
    return marker, hostile_path, benign_path


@pytest.fixture()
def upload_app(browser_config, archives):
    from dashboard.factory import create_app

    return create_app(config=replace(browser_config, allow_model_upload=True))


def _status(dash_duo, text: str) -> str:
    def status() -> str | None:
        shown = dash_duo.find_element("#model-status").text
        return shown if text in shown else None

    return wait_for(status, timeout=240, message=f"model status '{text}'")


def test_model_upload_refuses_a_lambda_and_serves_a_benign_unet_for_this_page(dash_duo, upload_app, archives):
    marker, hostile_path, benign_path = archives

    open_app(dash_duo, upload_app)
    demo_facts = dash_duo.find_element("#model-facts").text
    dash_duo.find_element("#model-upload input[type=file]").send_keys(str(hostile_path))
    assert "Lambda layer" in _status(dash_duo, "refused")
    assert "evil.keras" in dash_duo.find_element("#message").text and not marker.exists()
    assert dash_duo.find_element("#model-facts").text == demo_facts

    dash_duo.find_element("#model-class-names").send_keys("sky, cap, stem")
    dash_duo.find_element("#model-upload input[type=file]").send_keys(str(benign_path))
    _status(dash_duo, "Serving “my_unet.keras”")
    wait_for(lambda: dash_duo.find_element("#model-facts").text.startswith("my_unet.keras · input 32"),
             message="title bar facts of the uploaded model")  # fmt: skip
    pick_sample(dash_duo, 2)
    assert "→ 32" in dash_duo.find_element("#image-info").text  # fitted to the uploaded model's input
    box_select_and_time(dash_duo)

    driver = dash_duo.driver
    first_tab = driver.current_window_handle
    driver.execute_script("window.open(arguments[0], '_blank');", dash_duo.server_url)
    driver.switch_to.window(next(handle for handle in driver.window_handles if handle != first_tab))
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".sample-thumb"), message="another session")
    assert driver.find_element(By.ID, "model-facts").text == demo_facts  # the other session keeps the demo model
    pick_sample(dash_duo, 2)
    box_select_and_time(dash_duo, start=(-20, -30), size=(60, 50))
    driver.switch_to.window(first_tab)
    assert driver.find_element(By.ID, "model-facts").text.startswith("my_unet.keras")
    settle_and_check_console(dash_duo)


def test_the_model_check_runs_as_a_job_whose_progress_the_page_shows(dash_duo, upload_app, archives):
    """The upload request returns at once; while the sandbox checks the model the Model card shows the stage on a
    progress bar, which goes away when the model serves the page."""
    _, _, benign_path = archives
    open_app(dash_duo, upload_app)
    dash_duo.find_element("#model-upload input[type=file]").send_keys(str(benign_path))

    def progress_shown() -> str | None:
        panel = dash_duo.find_element("#model-check-panel")
        text = dash_duo.find_element("#model-check-text").text
        return text if panel.is_displayed() and "sandboxed process" in text else None

    text = wait_for(progress_shown, timeout=120, message="the model check's progress")
    assert "my_unet.keras" in text
    assert "Serving" not in dash_duo.find_element("#model-status").text  # still checking
    _status(dash_duo, "Serving “my_unet.keras”")
    wait_for(lambda: not dash_duo.find_element("#model-check-panel").is_displayed(), message="progress hidden")
    settle_and_check_console(dash_duo)
