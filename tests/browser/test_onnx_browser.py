"""The app end to end in headless Chromium on ONNX models (`python app.py --model file.onnx`).

- The demo U-Net's torch twin exported to ONNX, served through onnx2torch: upload an image, drag a box, see the CAM and
  gradient heatmaps, move the layer slider, run every trust metric (the sanity check on the converted module's clone).
- The same network followed by a GridSample warp (an operator onnx2torch cannot convert), served by onnxruntime as a
  black box: SHAP Partition explains it and the trust metrics measure SHAP; the sanity check and the gradient-method
  cards say why they cannot run.

Each test ends on a clean browser console."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.keys import Keys

from dashboard.config import AppConfig
from tests.browser.helpers import (
    card_methods,
    drag,
    drag_area,
    open_app,
    overlay_sources,
    pick_sample,
    run_trust,
    settle_and_check_console,
    tick_method,
    wait_for,
)


def _export(tmp_path, name: str, warp: bool) -> str:
    torch = pytest.importorskip("torch")
    from torch.nn import functional as F

    from models.torch_unet import TORCH_WEIGHTS_PATH, TorchUNet
    from tests.explainers.onnx_exports import export

    network = TorchUNet()
    network.load_state_dict(torch.load(TORCH_WEIGHTS_PATH, weights_only=True))
    if warp:
        network.probabilities = torch.nn.Identity()  # the warp goes between the logits and the softmax

    class Warped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network
            identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
            self.register_buffer("grid", F.affine_grid(identity, (1, 1, 128, 128), align_corners=False))

        def forward(self, x):
            z = self.network(x)
            return torch.softmax(F.grid_sample(z, self.grid.expand(x.shape[0], -1, -1, -1), align_corners=False), 1)

    path = tmp_path / name
    path.write_bytes(export(Warped() if warp else network, (128, 128)).SerializeToString())
    return str(path)


def _app(tmp_path_factory, warp: bool):
    from dashboard.factory import create_app, default_samples_dir

    folder = tmp_path_factory.mktemp("onnx-browser")
    model = _export(folder, "warped.onnx" if warp else "unet.onnx", warp)
    config = AppConfig(model_path=model, state_dir=str(folder / "state"), samples_dir=default_samples_dir(None),
                       class_names=("background", "cap", "gills", "ring", "stem", "volva"))  # fmt: skip
    return create_app(config=config)


def _box(dash_duo) -> None:
    drag(dash_duo, drag_area(dash_duo), (-60, -50), [(55, 45), (55, 45)])
    wait_for(lambda: dash_duo.find_element("#region-info").text.startswith("Box ·"), message="box region")


def test_an_onnx_model_is_explained_through_onnx2torch_in_the_browser(dash_duo, tmp_path_factory):
    from dashboard.factory import default_samples_dir

    open_app(dash_duo, _app(tmp_path_factory, warp=False))
    photo = Path(default_samples_dir(None)) / "mushroom_03.png"
    dash_duo.find_element("#image-upload input[type=file]").send_keys(str(photo))  # an upload, not a sample pick
    wait_for(lambda: dash_duo.find_element("#image-info").text.startswith("mushroom_03.png"), message="uploaded image")
    _box(dash_duo)
    wait_for(lambda: {"gradcam", "saliency"} <= set(card_methods(dash_duo, "#fast-grid")), message="heatmaps")
    before = overlay_sources(dash_duo)
    thumb = dash_duo.find_element("#layer-slider .dash-slider-thumb")
    thumb.click()
    thumb.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    wait_for(lambda: overlay_sources(dash_duo)["gradcam"] != before["gradcam"], message="Grad-CAM at another layer")
    run_trust(dash_duo, card_methods(dash_duo, "#fast-grid"))  # the converted module's clone takes the sanity check
    settle_and_check_console(dash_duo)


def test_a_black_box_onnx_model_is_explained_by_shap_and_says_why_gradient_methods_cannot_run(dash_duo,
                                                                                              tmp_path_factory):
    open_app(dash_duo, _app(tmp_path_factory, warp=True))
    pick_sample(dash_duo, 1)
    _box(dash_duo)
    # No fast method can run on a black box, so SHAP (Partition: forward passes only) is ticked on page load; its card
    # arrives from the background job, and the trust metrics measure it through onnxruntime. The sanity check would
    # re-initialise weights, which a black box cannot do: it is refused with the reason.
    wait_for(lambda: "shap" in card_methods(dash_duo, "#slow-grid"), timeout=240, message="the SHAP card")
    assert card_methods(dash_duo, "#fast-grid") == []
    run_trust(dash_duo, ["shap"], sanity=False, done="Sanity check failed")
    status = dash_duo.find_element("#trust-status").text
    assert "needs a model whose weights can be copied" in status and "GridSample" in status, status

    tick_method(dash_duo, "Grad-CAM")
    tick_method(dash_duo, "Saliency")

    def unavailable() -> bool:
        card = dash_duo.find_element('#fast-grid .hm-card[data-method="gradcam"]')
        return "Unavailable for this model" in card.text and "GridSample" in card.text

    wait_for(unavailable, message="the Grad-CAM card's reason")
    saliency = dash_duo.find_element('#fast-grid .hm-card[data-method="saliency"]').text
    assert "needs the model's gradients" in saliency and "GridSample" in saliency
    settle_and_check_console(dash_duo)
