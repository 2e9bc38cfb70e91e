"""The layer slider's server side (dashboard.callbacks.layers): the prefetched cache of neighbouring layers and the
miss path, called as plain functions on the tiny U-Net; the clientside swap is driven in the browser tests."""

from __future__ import annotations

import pytest
from dash import Patch, no_update
from dash.exceptions import PreventUpdate

from dashboard.callbacks import explain, layers, selection
from dashboard.state.resources import methods
from dashboard.usecases import analysis
from dashboard.view.render import heatmap_uri

CHOSEN = ["gradcam", "layercam", "saliency"]


@pytest.fixture()
def results(store, session, adapter, image):
    image_ref = analysis.ingest_image(store, session, adapter, image, name="test", note="32x32 PNG")
    box = {"points": [], "range": {"x": [4, 20], "y": [6, 18]}}
    region, target = selection.handle_selected(store, session, image_ref, box, adapter.class_names)[:2]
    out = explain.handle_explain(region, target, CHOSEN, image_ref, session, None, 0.8, None, None, adapter=adapter,
                                 store=store, infos=methods())  # fmt: skip
    return out[3]


def prefetch(state, results, store, session, adapter, radius=1):
    return layers.handle_prefetch(state, results, session, conv_layers=adapter.conv_layers,
                                  layer_shapes=adapter.layer_shapes, store=store, infos=methods(),
                                  radius=radius)  # fmt: skip


def expected_source(store, session, results, method, layer):
    summary = analysis.stored_result(store, session, results["question"], method)
    heatmap, used = analysis.layer_map(store, session, results["question"], summary, layer)
    assert used == layer
    return heatmap_uri(heatmap, signed=False)[0]


def test_prefetch_window_is_clamped_to_the_layers():
    assert layers.prefetch_window(0, 5, 2) == [0, 1, 2]
    assert layers.prefetch_window(4, 5, 2) == [2, 3, 4]
    assert layers.prefetch_window(9, 5, 1) == [3, 4]
    assert layers.prefetch_window(2, 5, 0) == [2] and layers.prefetch_window(0, 0) == []


def test_new_cards_get_a_fresh_cache_of_the_layers_around_the_slider(store, session, adapter, results):
    conv = adapter.conv_layers
    index = len(conv) - 2
    cache = prefetch({"results": results, "key": None, "index": index, "have": []}, results, store, session, adapter)
    assert cache["key"] == layers.results_key(results) and cache["results"] == results
    assert sorted(map(int, cache["layers"])) == [index - 1, index, index + 1]
    for i, entry in ((int(k), v) for k, v in cache["layers"].items()):
        assert entry["key"] == cache["key"] and entry["info"].startswith(conv[i])
        assert set(entry["maps"]) == {"gradcam", "layercam"}  # the CAM cards only: saliency has no layers
        for method, item in entry["maps"].items():
            assert item["source"] == expected_source(store, session, results, method, conv[i])
            assert item["subtitle"].startswith(f"layer {conv[i]}") and len(item["scale"]) == 5


def test_a_move_adds_only_the_missing_layers_and_drops_far_ones(store, session, adapter, results):
    conv = adapter.conv_layers  # four on the tiny U-Net: a window of radius 0 (one step of slack) moves there
    key = layers.results_key(results)
    state = {"results": results, "key": key, "index": 3, "have": [0, 1, 2]}  # moved from 1 to 3
    patch = prefetch(state, results, store, session, adapter, radius=0)
    assert isinstance(patch, Patch)
    operations = patch.to_plotly_json()["operations"]
    added = {op["location"][1]: op["params"]["value"] for op in operations if op["operation"] == "Assign"}
    deleted = sorted(op["location"][1] for op in operations if op["operation"] == "Delete")
    assert list(added) == ["3"] and deleted == ["0", "1"]  # 2 stays: one step of slack
    assert added["3"]["key"] == key
    assert added["3"]["maps"]["gradcam"]["source"] == expected_source(store, session, results, "gradcam", conv[3])
    with pytest.raises(PreventUpdate):  # nothing to add or drop
        prefetch({**state, "have": [2, 3]}, results, store, session, adapter, radius=0)


def test_a_state_of_other_cards_prefetches_nothing(store, session, adapter, results):
    other = {**results, "methods": ["gradcam"]}
    for state in (None, {"results": other, "key": None, "index": 1, "have": []}):
        with pytest.raises(PreventUpdate):
            prefetch(state, results, store, session, adapter)
    with pytest.raises(PreventUpdate):  # no cards at all
        prefetch({"results": None, "index": 1}, None, store, session, adapter)


def test_the_miss_path_answers_only_when_the_browser_did_not_show_the_layer(store, session, adapter, results):
    conv = adapter.conv_layers

    def move(state):
        return layers.handle_layer(2, results, session, [CHOSEN] * 4, conv_layers=conv,
                                   layer_shapes=adapter.layer_shapes, store=store, infos=methods(),
                                   state=state)  # fmt: skip

    with pytest.raises(PreventUpdate):  # shown from the cache
        move({"results": results, "index": 2, "shown": 2, "have": [1, 2, 3]})
    for state in (None, {"results": results, "index": 2, "shown": None, "have": []},
                  {"results": {**results, "methods": ["gradcam"]}, "index": 2, "shown": 2}):  # fmt: skip
        figures, subtitles, notes, scales, info = move(state)
        assert isinstance(figures[0], Patch) and figures[2] is no_update and subtitles[2] is no_update
        source = figures[0].to_plotly_json()["operations"][0]["params"]["value"]
        assert source == expected_source(store, session, results, "gradcam", conv[2])
        assert info.startswith(conv[2]) and notes[1] is not no_update and len(scales[1]) == 5


def test_after_a_miss_the_prefetch_waits_for_the_miss_paths_answer():
    state, missed = {"index": 3, "shown": 3}, {"index": 3, "shown": None}
    assert layers.miss_pending(missed, ["layer-state-store.data"])
    assert not layers.miss_pending(missed, ["layer-state-store.data", "layer-info.children"])
    assert not layers.miss_pending(missed, ["layer-info.children"])  # the miss path answered
    assert not layers.miss_pending(state, ["layer-state-store.data"]) and not layers.miss_pending(None, [])
