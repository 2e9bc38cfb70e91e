"""The app end to end in headless Chromium on a PyTorch model: the demo U-Net's torch twin, served as
`python app.py --torch models.torch_unet:TorchUNet --weights models/mushroom_unet.pt` serves it. Pick a sample, drag a
box, see the CAM and gradient heatmaps (computed by the torch backend), move the layer slider, clean console."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.keys import Keys

from dashboard.config import AppConfig
from tests.browser.helpers import (
    box_select_and_time,
    card_methods,
    open_app,
    overlay_sources,
    pick_sample,
    settle_and_check_console,
    wait_for,
)


@pytest.fixture(scope="module")
def torch_app(tmp_path_factory):
    pytest.importorskip("torch")
    from dashboard.factory import create_app, default_samples_dir
    from models.torch_unet import TORCH_WEIGHTS_PATH

    config = AppConfig(torch_model="models.torch_unet:TorchUNet", torch_weights=str(TORCH_WEIGHTS_PATH),
                       state_dir=str(tmp_path_factory.mktemp("torch-browser-state")),
                       samples_dir=default_samples_dir(None))  # fmt: skip
    return create_app(config=config)


def test_a_torch_model_is_explained_in_the_browser(dash_duo, torch_app):
    open_app(dash_duo, torch_app)
    assert "models.torch_unet:TorchUNet" in dash_duo.find_element("body").text
    pick_sample(dash_duo, 1)
    box_select_and_time(dash_duo)
    methods = card_methods(dash_duo, "#fast-grid")
    assert {"gradcam", "saliency"} <= set(methods)
    assert dash_duo.find_element("#region-info").text.startswith("Box ·")
    before = overlay_sources(dash_duo)
    subtitle = dash_duo.find_element('[id*="heatmap-subtitle"][id*="gradcam"]').text
    assert subtitle.startswith("layer logits")  # the default CAM layer: the last conv module of the torch model
    thumb = dash_duo.find_element("#layer-slider .dash-slider-thumb")
    thumb.click()
    thumb.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    wait_for(lambda: overlay_sources(dash_duo)["gradcam"] != before["gradcam"], message="Grad-CAM at another layer")
    assert overlay_sources(dash_duo)["saliency"] == before["saliency"]
    new_subtitle = dash_duo.find_element('[id*="heatmap-subtitle"][id*="gradcam"]').text
    assert new_subtitle.startswith("layer up1")  # three conv modules before the logits, in forward order
    settle_and_check_console(dash_duo)
