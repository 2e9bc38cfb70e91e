"""The every-class overview in the app: one card per predicted class, maps equal to the engine's explanation of each
whole-class region, the layer slider's layer, linked-zoom ids, and what it says without a method or an image."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.callbacks import overview as overview_cb
from dashboard.callbacks.explain import pick_layer
from dashboard.state.resources import methods
from dashboard.usecases import analysis, overview
from dashboard.view import ids
from dashboard.view.figures import OVERLAY_IMAGE
from dashboard.view.render import heatmap_uri
from explainers import explain


def _cards(children):
    return children if isinstance(children, list) else []


def _graph(card):
    return card.children.children[1]


@pytest.fixture()
def loaded(shared, session, adapter, image):
    return analysis.ingest_image(shared, session, adapter, image, name="tiny")


def test_one_card_per_predicted_class_with_the_engine_s_map_at_the_slider_layer(shared, session, adapter, image,
                                                                                loaded):  # fmt: skip
    layer_index = 1
    children, note = overview_cb.handle_overview(loaded, "gradcam", layer_index, session, 0.8, None, adapter=adapter,
                                                 store=shared, infos=methods())  # fmt: skip
    labels = np.asarray(shared.get(session, "labels", loaded["key"]))
    classes = [int(c) for c in np.unique(labels)]
    cards = _cards(children)
    assert [int(card.to_plotly_json()["props"]["data-class"]) for card in cards] == classes
    assert f"for {len(classes)} predicted classes" in note and "one forward pass" in note
    layer = pick_layer(adapter.conv_layers, layer_index)
    entries = overview.compute_overview(adapter, shared, session, loaded, "gradcam")  # stored: a lookup now
    for card, target, (question, summary) in zip(cards, classes, entries, strict=True):
        graph = _graph(card)
        assert graph.id == ids.overview_graph(target) == ids.heatmap_graph(f"overview-{target}")
        shown, used = analysis.layer_map(shared, session, question, summary, layer)
        overlay = graph.figure["layout"]["images"][OVERLAY_IMAGE]["source"]
        assert used == layer and overlay == heatmap_uri(shown, signed=False)[0]
        alone = explain(adapter, image, labels == target, target, methods=["gradcam"])["gradcam"].per_layer[layer]
        # Stored maps are compact (float16 over the map's largest magnitude): equal to 2^-11 of it.
        np.testing.assert_allclose(shown, alone, rtol=0, atol=float(np.abs(alone).max()) * 2**-10 + 1e-12)


def test_the_overview_is_stored_like_any_result_so_a_class_pick_is_a_lookup(shared, session, adapter, loaded):
    overview_cb.handle_overview(loaded, "saliency", None, session, 0.8, None, adapter=adapter, store=shared,
                                infos=methods())  # fmt: skip
    labels = np.asarray(shared.get(session, "labels", loaded["key"]))
    for target in np.unique(labels):
        region = analysis.ingest_region(shared, session, loaded["key"], labels == target, "class")
        question = {"image": loaded["key"], "region": region["key"], "target": int(target), "contrast": None}
        assert analysis.stored_result(shared, session, question, "saliency") is not None


def test_without_a_method_or_an_image_it_says_what_to_do(shared, session, adapter, loaded):
    grid, note = overview_cb.handle_overview(loaded, None, None, session, 0.8, None, adapter=adapter, store=shared,
                                             infos=methods())  # fmt: skip
    assert "Choose a method" in str(grid) and note == ""
    grid, _ = overview_cb.handle_overview(None, "gradcam", None, session, 0.8, None, adapter=adapter, store=shared,
                                          infos=methods())  # fmt: skip
    assert "Load an image first" in str(grid)
    _, note = overview_cb.handle_overview(loaded, "shap", None, session, 0.8, None, adapter=adapter, store=shared,
                                          infos=methods())  # fmt: skip
    assert "fast methods only" in note
    gone = {**loaded, "key": "expired"}
    grid, note = overview_cb.handle_overview(gone, "gradcam", None, session, 0.8, None, adapter=adapter, store=shared,
                                             infos=methods())  # fmt: skip
    assert "no longer on the server" in note
