"""The app end to end in headless Chromium on a DeepLab-class model: `benchmarks.deeplab`'s DeepLabV3+ on ResNet50
(random weights, built here; 128x128 and 32 ASPP/decoder filters to keep the test short, still ~90 listed CAM
layers), served as `--model deeplab.keras` serves it. Pick a sample, see the mask, drag a box, see every fast heatmap,
move the layer slider one step with the keyboard: the CAM cards show the stored maps of the next layer, drawn by the
browser from its prefetched cache (the server's miss path is not needed), equal to the maps the server stores; clean
console."""

from __future__ import annotations

import threading
from typing import Any

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

SIZE, FILTERS = 128, 32


@pytest.fixture(scope="module")
def deeplab_config(tmp_path_factory) -> AppConfig:
    from benchmarks.deeplab import deeplabv3plus
    from dashboard.factory import default_samples_dir

    folder = tmp_path_factory.mktemp("deeplab-browser")
    path = folder / "deeplab.keras"
    deeplabv3plus((SIZE, SIZE), filters=FILTERS).save(path)
    return AppConfig(model_path=str(path), state_dir=str(folder / "state"), samples_dir=default_samples_dir(None))


@pytest.fixture(scope="module")
def deeplab_app(deeplab_config):
    from dashboard.factory import create_app

    return create_app(config=deeplab_config)


class Calls:
    """What the layer slider's server callbacks returned (the app runs in this process, in a server thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.prefetched: list[tuple[Any, dict, str]] = []  # handle_prefetch's (result, results store, session)
        self.misses: list[int] = []  # slider positions the server's miss path answered with patches

    def wrap(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from dashboard.callbacks import layers

        prefetch, handle = layers.handle_prefetch, layers.handle_layer

        def spy_prefetch(state, results, session, **kwargs):
            out = prefetch(state, results, session, **kwargs)
            with self.lock:
                self.prefetched.append((out, results, session))
            return out

        def spy_layer(layer_index, *args, **kwargs):
            out = handle(layer_index, *args, **kwargs)  # raises PreventUpdate when the browser showed the layer
            with self.lock:
                self.misses.append(layer_index)
            return out

        monkeypatch.setattr(layers, "handle_prefetch", spy_prefetch)
        monkeypatch.setattr(layers, "handle_layer", spy_layer)

    def fresh(self) -> tuple[set[int], dict, str] | None:
        """(layer indices, results store, session) of the last fresh cache the server prefetched."""
        with self.lock:
            found = [(out, results, session) for out, results, session in self.prefetched if isinstance(out, dict)]
        if not found:
            return None
        out, results, session = found[-1]
        return {int(i) for i in out["layers"]}, results, session


def test_a_deeplab_model_is_explained_and_its_layer_slider_steps_from_the_cache(dash_duo, deeplab_app, deeplab_config,
                                                                                 monkeypatch):  # fmt: skip
    from dashboard.callbacks.explain import pick_layer
    from dashboard.state.resources import get_adapter, get_store
    from dashboard.state.resources import methods as method_infos
    from dashboard.usecases import analysis
    from dashboard.view.render import heatmap_uri

    calls = Calls()
    calls.wrap(monkeypatch)
    adapter = get_adapter(deeplab_config)
    conv = list(adapter.conv_layers)
    assert len(conv) >= 52  # a DeepLab-class slider
    open_app(dash_duo, deeplab_app)
    pick_sample(dash_duo, 0)  # the mask figure shows the predicted label map
    box_select_and_time(dash_duo, want=1)
    wait_for(lambda: len(card_methods(dash_duo, "#fast-grid")) >= 3, timeout=120, message="the fast cards")
    methods = card_methods(dash_duo, "#fast-grid")
    assert {"gradcam", "saliency"} <= set(methods)
    drawn = wait_for(lambda: (s := overlay_sources(dash_duo)) and all(
        s.get(m, "not drawn").startswith("data:image/png") for m in methods) and s, timeout=120,
        message="every fast heatmap drawn")  # fmt: skip
    start = conv.index(adapter.default_layer)
    target = start - 1
    fresh = wait_for(lambda: (f := calls.fresh()) and target in f[0] and f, timeout=60,
                     message="the neighbouring layers prefetched")  # fmt: skip
    _, results, session = fresh

    thumb = dash_duo.find_element("#layer-slider .dash-slider-thumb")
    thumb.click()
    thumb.send_keys(Keys.ARROW_LEFT)
    wait_for(lambda: overlay_sources(dash_duo)["gradcam"] != drawn["gradcam"], message="Grad-CAM at the next layer")
    wait_for(lambda: dash_duo.find_element('[id*="heatmap-subtitle"][id*="gradcam"]').text.startswith(
        f"layer {conv[target]}"), message="the new layer in the subtitle")  # fmt: skip
    after = overlay_sources(dash_duo)
    assert after["saliency"] == drawn["saliency"]  # not a CAM: unchanged
    # every CAM card shows the map the server stores for this question at that layer, encoded as the cards encode it
    store, question = get_store(deeplab_config), results["question"]
    infos = {info.name: info for info in method_infos()}
    cams = [m for m in methods if infos[m].is_cam]
    assert "gradcam" in cams
    for method in cams:
        summary = analysis.stored_result(store, session, question, method)
        heatmap, used = analysis.layer_map(store, session, question, summary, pick_layer(conv, target))
        assert used == conv[target] and after[method] == heatmap_uri(heatmap, signed=infos[method].signed)[0], method
    settle_and_check_console(dash_duo)
    with calls.lock:  # drawn by the browser from its cache: the server's miss path answered nothing for the step
        assert target not in calls.misses, calls.misses
