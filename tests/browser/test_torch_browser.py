"""The app end to end in headless Chromium on a PyTorch model: the demo U-Net's torch twin, served as
`python app.py --torch models.torch_unet:TorchUNet --weights models/mushroom_unet.pt` serves it. Pick a sample, drag a
box, see the CAM and gradient heatmaps (computed by the torch backend), move the layer slider, run the trust metrics
(agreement, inside share, deletion/insertion curves and the sanity check on a clone of the torch module), clean
console."""

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
    run_trust,
    settle_and_check_console,
    wait_for,
)


@pytest.fixture(scope="module")
def torch_config(tmp_path_factory) -> AppConfig:
    pytest.importorskip("torch")
    from dashboard.factory import default_samples_dir
    from models.torch_unet import TORCH_WEIGHTS_PATH

    return AppConfig(torch_model="models.torch_unet:TorchUNet", torch_weights=str(TORCH_WEIGHTS_PATH),
                     state_dir=str(tmp_path_factory.mktemp("torch-browser-state")),
                     samples_dir=default_samples_dir(None))  # fmt: skip


@pytest.fixture(scope="module")
def torch_app(torch_config):
    from dashboard.factory import create_app

    return create_app(config=torch_config)


@pytest.fixture(scope="module")
def torch_layers(torch_config) -> tuple[str, list[str]]:
    """(default CAM layer, conv layers in forward order) of the served model, from the app's own adapter."""
    from dashboard.state.resources import get_adapter

    adapter = get_adapter(torch_config)
    return adapter.default_layer, list(adapter.conv_layers)


def test_a_torch_model_is_explained_in_the_browser(dash_duo, torch_app, torch_layers):
    open_app(dash_duo, torch_app)
    assert "models.torch_unet:TorchUNet" in dash_duo.find_element("body").text
    pick_sample(dash_duo, 1)
    box_select_and_time(dash_duo)
    methods = card_methods(dash_duo, "#fast-grid")
    assert {"gradcam", "saliency"} <= set(methods)
    assert dash_duo.find_element("#region-info").text.startswith("Box ·")
    before = overlay_sources(dash_duo)
    subtitle = dash_duo.find_element('[id*="heatmap-subtitle"][id*="gradcam"]').text
    default, layers = torch_layers
    assert subtitle.startswith(f"layer {default}")  # the default CAM layer rule: the last 3x3 conv before the head
    thumb = dash_duo.find_element("#layer-slider .dash-slider-thumb")
    thumb.click()
    thumb.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    wait_for(lambda: overlay_sources(dash_duo)["gradcam"] != before["gradcam"], message="Grad-CAM at another layer")
    assert overlay_sources(dash_duo)["saliency"] == before["saliency"]
    new_subtitle = dash_duo.find_element('[id*="heatmap-subtitle"][id*="gradcam"]').text
    # three conv modules before the default one, in forward order
    assert new_subtitle.startswith(f"layer {layers[layers.index(default) - 3]}")
    run_trust(dash_duo, methods)
    settle_and_check_console(dash_duo)
