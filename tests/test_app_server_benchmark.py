"""The pure helpers of the HTTP app benchmark (`benchmarks/app_server.py`); nothing here is timed.

The payload builder is checked against the real app's ``/_dash-dependencies`` and served pages (an app created
in-process that serves its model-free skeleton layout), and its payloads are posted to the app's own
``/_dash-update-component``.
"""

from __future__ import annotations

import copy
import json
import random

import numpy as np
import pytest
from dash import Patch
from dash._utils import stringify_id as dash_stringify_id

from benchmarks import app_server as bench
from dashboard.view.figures import OVERLAY_IMAGE


@pytest.mark.parametrize("q", [0, 5, 25, 50, 90, 95, 99, 100])
def test_percentile_matches_numpy_linear(q: float) -> None:
    values = np.random.default_rng(0).gamma(2.0, 50.0, size=37).tolist()
    assert bench.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert bench.percentile([7.0], q) == 7.0


def test_percentile_edge_cases_and_summary() -> None:
    assert np.isnan(bench.percentile([], 50))
    with pytest.raises(ValueError):
        bench.percentile([1.0], 101)
    stats = bench.summarize([4.0, 1.0, 3.0, 2.0])
    assert stats == {"n": 4, "p50": 2.5, "p95": 3.9, "mean": 2.5, "min": 1.0, "max": 4.0}
    assert bench.summarize([])["p50"] is None
    json.dumps(bench.summarize([1.0, 2.0]))


@pytest.mark.parametrize("id_", ["mask-graph", {"type": "heatmap-graph", "method": "gradcam++"}, {"b": 1, "a": "x"}])
def test_stringify_id_matches_dash_and_round_trips(id_) -> None:
    text = bench.stringify_id(id_)
    assert text == dash_stringify_id(id_)
    assert bench.parse_id(text) == id_


def test_output_spec_parsing() -> None:
    multi = '..fast-grid.children...slow-grid.children@ab12...{"method":["ALL"],"type":"heatmap-graph"}.figure@cd..'
    assert bench.is_multi_output(multi)
    assert bench.parse_output_spec(multi) == [
        ("fast-grid", "children"),
        ("slow-grid", "children@ab12"),
        ('{"method":["ALL"],"type":"heatmap-graph"}', "figure@cd"),
    ]
    assert bench.parse_output_spec("slow-result-store.data") == [("slow-result-store", "data")]
    assert bench.clean_property("figure@cd") == "figure"
    pattern = {"method": ["ALL"], "type": "heatmap-graph"}
    assert bench.id_matches(pattern, {"method": "shap", "type": "heatmap-graph"})
    assert not bench.id_matches(pattern, {"method": "shap", "type": "heatmap-note"})
    assert not bench.id_matches(pattern, "heatmap-graph")


def test_apply_patch_follows_dash_patch_operations_without_touching_the_input() -> None:
    figure = {"data": [{"type": "image"}, {"source": "old", "opacity": 1.0}], "layout": {"shapes": [1]}}
    original = copy.deepcopy(figure)
    patch = Patch()
    patch["data"][1]["source"] = "new"
    del patch["data"][0]["type"]
    patch["layout"]["xaxis"]["range"] = [0, 5]
    patch["layout"]["shapes"].append(2)
    patch["layout"]["shapes"].extend([3, 4])
    patch["layout"].update({"dragmode": "zoom"})
    patch["data"][1]["opacity"] -= 0.25
    serialised = json.loads(json.dumps(patch.to_plotly_json()))
    assert bench.is_patch(serialised)
    patched = bench.apply_patch(figure, serialised)
    assert figure == original
    assert patched["data"] == [{}, {"source": "new", "opacity": 0.75}]
    assert patched["layout"] == {"shapes": [1, 2, 3, 4], "xaxis": {"range": [0, 5]}, "dragmode": "zoom"}
    untouched = bench.apply_patch(
        figure, {"operations": [{"operation": "Assign", "location": ["layout", "a"], "params": {"value": 1}}]}
    )
    assert untouched["data"] is figure["data"]  # branches off the patched path are shared, not copied


def test_components_are_walked_in_document_order() -> None:
    leaf = {"type": "Div", "namespace": "dash_html_components", "props": {"id": "b"}}
    graph = {"type": "Graph", "namespace": "dash_core_components", "props": {"id": {"k": 1}, "figure": {"data": []}}}
    root = {"type": "Div", "namespace": "dash_html_components", "props": {"id": "a", "children": [leaf, "text", graph]}}
    assert [c["props"]["id"] for c in bench.walk_components(root)] == ["a", "b", {"k": 1}]


def test_update_url_and_poll_body() -> None:
    assert bench.update_url("http://h:1/", None) == "http://h:1/_dash-update-component"
    url = bench.update_url("http://h:1", "e~1", "c~2", "3~4", extra=[("oldJob", "5~6")])
    assert url == "http://h:1/_dash-update-component?endId=e~1&cacheKey=c~2&job=3~4&oldJob=5~6"
    payload = {
        "output": "x.data",
        "inputs": [{"id": "a", "property": "data", "value": 1}, [{"id": {"k": 1}, "property": "v", "value": 2}]],
        "state": [{"id": "b", "property": "data", "value": {"deep": True}}],
    }
    body = bench.blank_values(payload)
    assert body["inputs"][0]["value"] is None and body["inputs"][1][0]["value"] is None
    assert body["state"][0]["value"] is None
    assert payload["inputs"][0]["value"] == 1  # the original is kept for the next request


def test_session_generators() -> None:
    rng = random.Random(0)
    boxes = bench.random_boxes(200, 128, 96, rng)
    for x0, y0, x1, y1 in boxes:
        assert -0.5 <= x0 < x1 <= 95.5 + 1e-9 and -0.5 <= y0 < y1 <= 127.5 + 1e-9
        assert x1 - x0 >= 6 - 1e-9 and y1 - y0 >= 6 - 1e-9
    assert len({b[:2] for b in boxes}) > 150
    walk = bench.layer_walk(300, 18, 17, random.Random(1))
    assert all(0 <= p < 18 for p in walk)
    assert all(a != b for a, b in zip([17, *walk], walk, strict=False))
    assert bench.layer_walk(5, 1, 0, rng) == []
    assert [len(c) for c in bench.split_evenly(list(range(10)), 3)] == [4, 3, 3]
    selected, relayout = bench.box_events(1.0, 2.0, 3.0, 4.0)
    assert selected == {"points": [], "range": {"x": [1.0, 3.0], "y": [2.0, 4.0]}}
    assert relayout["selections"][0]["type"] == "rect"


# ---------------------------------------------------------------------------------------------------------------
# Against the real app (created in-process; the model is never loaded).
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """(test client, served _dash-config, dependencies, served layout) of the real app with a model-free page.

    Dash builds the layout on the first request (to validate it); serving the skeleton layout instead of the model's
    page keeps TensorFlow and the model out of this test (every component id is in the skeleton).
    """
    import diskcache
    from dash import DiskcacheManager

    from dashboard import factory, layout

    state = tmp_path_factory.mktemp("bench-state")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(factory, "page_context", lambda config: layout.skeleton_context())
        app = factory.create_app(
            state_dir=str(state),
            manager_factory=lambda cfg: DiskcacheManager(diskcache.Cache(str(state / "jobs"))),
            warmup=False,
        )
        client = app.server.test_client()
        config = bench.extract_config(client.get("/").get_data(as_text=True))
        deps = client.get("/_dash-dependencies").get_json()
        page_layout = client.get("/_dash-layout").get_json()
        yield client, config, deps, page_layout


def _page(served) -> bench.Page:
    _, _, deps, page_layout = served
    page = bench.Page(page_layout, bench.parse_dependencies(deps))
    page.set_props("session-store", {"data": "0" * 32})
    return page


def _heatmap_card(method: str) -> dict:
    traces = [{"type": "image"}]
    figure = {"data": traces, "layout": {"images": [{"source": "photo"}, {"source": "overlay", "opacity": 0.8}]}}
    graph_id = {"type": "heatmap-graph", "method": method}
    graph = {"type": "Graph", "namespace": "dash_core_components", "props": {"id": graph_id, "figure": figure}}
    return {"type": "Div", "namespace": "dash_html_components", "props": {"children": [graph]}}


def test_served_config_carries_the_signed_end_id(served) -> None:
    _, config, deps, _ = served
    assert "~" in config["end_id"]
    callbacks = bench.parse_dependencies(deps)
    assert len(callbacks) == len(deps)
    background = [cb for cb in callbacks if cb.background]
    assert background and background[0].background.get("interval")


def test_box_selection_payloads_match_the_dependencies(served) -> None:
    deps = served[2]
    page = _page(served)
    image_ref = {"key": "k", "name": "n", "note": "", "height": 128, "width": 128}
    page.set_props("image-store", {"data": image_ref})
    selected, relayout = bench.box_events(10.0, 12.0, 40.0, 50.0)
    changed = page.set_props("mask-graph", {"selectedData": selected, "relayoutData": relayout})
    triggered = {cb.inputs[0]: (cb, ids) for cb, ids in page.triggered(changed)}
    assert set(triggered) == {("mask-graph", "selectedData"), ("mask-graph", "relayoutData")}
    cb, prop_ids = triggered[("mask-graph", "selectedData")]
    body = page.payload(cb, prop_ids)
    dep = deps[cb.index]
    assert body["output"] == dep["output"]
    assert [(o["id"], o["property"]) for o in body["outputs"]] == bench.parse_output_spec(dep["output"])
    # the region callback's inputs in the dependency's order, the one that changed carrying its value, the others
    # their layout values (an unset prop carries no "value")
    assert [(i["id"], i["property"]) for i in body["inputs"]] == [(i["id"], i["property"]) for i in dep["inputs"]]
    assert body["inputs"][0] == {"id": "mask-graph", "property": "selectedData", "value": selected}
    assert {"id": "select-mode", "property": "value", "value": "exact"} in body["inputs"] + body.get("state", [])
    assert {"id": "border-width", "property": "value", "value": 3} in body["inputs"] + body.get("state", [])
    assert [(i["id"], i["property"]) for i in body.get("state", [])] == [(i["id"], i["property"])
                                                                         for i in dep["state"]]  # fmt: skip
    assert {"id": "image-store", "property": "data", "value": image_ref} in body["state"]
    assert body["changedPropIds"] == ["mask-graph.selectedData"]
    # a pattern input with no matching component yet is an empty list; an unset prop carries no "value"
    cb, prop_ids = triggered[("mask-graph", "relayoutData")]
    body = page.payload(cb, prop_ids)
    assert body["inputs"][1] == []
    assert {"id": "view-store", "property": "data"} in body["state"]


def test_pattern_outputs_are_resolved_posted_and_applied(served) -> None:
    client, config, _, _ = served
    page = _page(served)
    page.set_props("fast-grid", {"children": [_heatmap_card("gradcam"), _heatmap_card("saliency")]})
    assert page.ids_matching({"method": ["ALL"], "type": "heatmap-graph"}) == [
        '{"method":"gradcam","type":"heatmap-graph"}',
        '{"method":"saliency","type":"heatmap-graph"}',
    ]
    changed = page.set_props("heatmap-opacity", {"value": 0.3})
    [(cb, prop_ids)] = page.triggered(changed)
    body = page.payload(cb, prop_ids)
    assert [o["id"]["method"] for o in body["outputs"]] == ["gradcam", "saliency"]
    assert all(o["property"].startswith("figure@") for o in body["outputs"])
    url = bench.update_url("", config["end_id"])
    response = client.post(url, json=body)
    assert response.status_code == 200
    set_now = page.apply_response(response.get_json()["response"])
    assert len(set_now) == 2
    for method in ("gradcam", "saliency"):
        figure = page.get(bench.stringify_id({"method": method, "type": "heatmap-graph"}), "figure")
        assert figure["layout"]["images"][OVERLAY_IMAGE]["opacity"] == pytest.approx(0.3)
        assert [image["source"] for image in figure["layout"]["images"]] == ["photo", "overlay"]
        assert figure["data"] == [{"type": "image"}]


def test_prevented_update_answers_204(served) -> None:
    client, config, _, _ = served
    page = _page(served)
    changed = page.set_props("trust-run", {"n_clicks": 0})  # not a click: the Trust section prevents the update
    [(cb, prop_ids)] = page.triggered(changed)
    response = client.post(bench.update_url("", config["end_id"]), json=page.payload(cb, prop_ids))
    assert response.status_code == 204


def test_the_event_writers_run_in_the_modelled_page_as_in_the_browser(served) -> None:
    """The writers are clientside (`segx.writeEvents`): the benchmark's page runs them itself, so a region event
    reaches the region store and, from it, the question callback, with no request of their own."""
    page = _page(served)
    event = {"set": {"data": {"key": "r1", "image": "k"}}, "at": 5}
    changed = page.set_props("region-store--region-event", {"data": event})
    [(writer, prop_ids)] = page.triggered(changed)
    assert writer.clientside and writer.clientside_function == "writeEvents"
    assert page.run_writer(writer, prop_ids) == [("region-store", "data")]
    assert page.get("region-store", "data") == {"key": "r1", "image": "k"}
    older = {"set": {"data": {"key": "old"}}, "at": 1}  # a second source firing with an older event loses
    changed = page.set_props("region-store--image-event", {"data": older})
    both = [*prop_ids, *[p for _, ids in page.triggered(changed) for p in ids]]
    page.run_writer(writer, both)
    assert page.get("region-store", "data") == {"key": "r1", "image": "k"}
    downstream = {cb.outputs[0][0] for cb, _ in page.triggered([("region-store", "data")])}
    assert "fast-grid" in downstream
