"""Callbacks called as plain functions, on a tiny real Keras U-Net and the real explainers engine."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from dash import Patch, no_update
from dash.exceptions import PreventUpdate
from PIL import Image

from dashboard.callbacks import explain, jobs, layers, mask, selection, upload, view
from dashboard.state.resources import methods
from dashboard.usecases import analysis
from dashboard.view import figures, ids
from dashboard.view.figures import OVERLAY_IMAGE
from dashboard.view.photos import photo_url

NAMES = ["background", "cap", "stem"]


def png_uri(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture()
def image_ref(store, session, adapter, image):
    return analysis.ingest_image(store, session, adapter, image, name="test", note="32x32 PNG")


ABSENT = 2  # "stem"


class PredictsNoStem:
    """The adapter, except that its predictions have the "stem" probability zeroed (so no pixel is labelled stem)."""

    def __init__(self, adapter):
        self._adapter = adapter

    def __getattr__(self, name):
        return getattr(self._adapter, name)

    def predict(self, array):
        probabilities = np.array(self._adapter.predict(array))
        probabilities[..., ABSENT] = 0.0
        return probabilities


@pytest.fixture()
def image_without_stem(store, session, adapter, image):
    """An image whose stored prediction has no "stem" pixel."""
    ref = analysis.ingest_image(store, session, PredictsNoStem(adapter), image, name="no stem", note="32x32 PNG")
    _, labels, _ = analysis.image_data(store, session, ref["key"])
    assert not (labels == ABSENT).any()
    return ref


def box(x0, x1, y0, y1):
    return {"points": [], "range": {"x": [x0, x1], "y": [y0, y1]}}


def region_of(store, session, image_ref, adapter, selected=None):
    out = selection.handle_selected(store, session, image_ref, selected or box(4, 20, 6, 18), adapter.class_names)
    return out[0], out[1]


# --- upload ---------------------------------------------------------------------------------------------------------


def test_upload_stores_image_and_predicts_labels(store, session, adapter, config):
    array = np.random.default_rng(3).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    ref, message = upload.handle_upload(png_uri(array), "photo.png", session, adapter, store, config)
    assert message[2] is False  # closed
    assert ref["name"] == "photo.png" and (ref["height"], ref["width"]) == (32, 32)
    image, labels, png = analysis.image_data(store, session, ref["key"])
    assert image.shape == (32, 32, 3) and labels.shape == (32, 32) and png.startswith("data:image/png")


def test_bad_upload_keeps_the_current_image_and_explains(store, session, adapter, config):
    ref, message = upload.handle_upload("data:image/png;base64,AAAA", "broken.png", session, adapter, store, config)
    assert ref is no_update
    text, color, is_open = message
    assert is_open and color == "danger" and "broken.png" in text


def test_no_upload_contents_is_ignored(store, session, adapter, config):
    with pytest.raises(PreventUpdate):
        upload.handle_upload(None, None, session, adapter, store, config)


def test_sample_from_the_gallery(store, session, adapter, config):
    ref, message = upload.handle_sample("sample_1", session, adapter, store, config)
    assert ref["name"] == "sample_1" and "centre crop" in ref["note"]
    ref, message = upload.handle_sample("nope", session, adapter, store, config)
    assert ref is no_update and message[2]


def test_new_image_resets_region_and_shows_mask(store, session, image_ref):
    change = mask.decide_mask(["image"], {}, image_ref, 0.4)
    figure = mask.mask_output(change, session, store, NAMES)
    assert figure["data"][figures.LABELS_TRACE]["type"] == "heatmap"
    assert figure["data"][figures.LABELS_TRACE]["opacity"] == 0.4
    assert [image["source"] for image in figure["layout"]["images"]] == [photo_url(session, image_ref["key"])]
    out = upload.handle_image(image_ref, session, store, NAMES)
    picker_options, picker_value, region, target, target_options, _info, image_info, view_ = out[:8]
    assert region is None and target is None and view_ is None and picker_value is None
    assert all(o["value"] in range(3) for o in picker_options)
    assert len(target_options) == 3
    assert image_info.startswith("test")
    assert out[-3:] == (no_update,) * 3  # the message set by the upload (e.g. a conversion note) stays


def test_expired_image_reports_a_message(store, session):
    out = upload.handle_image({"key": "0" * 16, "name": "x", "note": ""}, session, store, NAMES)
    assert out[-1] is True and "expired" in out[-3]


# --- selection ------------------------------------------------------------------------------------------------------


def test_box_selection_stores_region_and_sets_majority_target(store, session, adapter, image_ref):
    out = selection.handle_selected(store, session, image_ref, box(4, 20, 6, 18), adapter.class_names)
    region, target, _options, shapes, info, picker, *message = out
    assert region["kind"] == "box" and region["pixels"] == 17 * 13 and region["image"] == image_ref["key"]
    mask = store.get(session, "region", region["key"])
    _, labels, _ = analysis.image_data(store, session, image_ref["key"])
    assert target == np.bincount(labels[mask], minlength=3).argmax()
    outline = analysis.region_outline(store, session, region["key"])
    assert shapes == figures.outline_shapes(outline) and outline and picker is None
    assert info.startswith("Box · 221 px")
    assert message[2] is False


def test_lasso_selection(store, session, adapter, image_ref):
    lasso = {"points": [], "lassoPoints": {"x": [2, 30, 2], "y": [2, 2, 30]}}
    region, *_ = selection.handle_selected(store, session, image_ref, lasso, adapter.class_names)
    assert region["kind"] == "lasso" and 300 < region["pixels"] < 500


def test_selection_outside_the_image_changes_nothing_and_says_why(store, session, adapter, image_ref):
    out = selection.handle_selected(store, session, image_ref, box(40, 50, 1, 2), adapter.class_names)
    assert all(v is no_update for v in out[:6])
    assert "outside the image" in out[6] and out[8] is True


def test_cleared_selection_is_ignored(store, session, adapter, image_ref):
    with pytest.raises(PreventUpdate):
        selection.handle_selected(store, session, image_ref, None, adapter.class_names)


def test_selection_without_an_image_asks_for_one(store, session, adapter):
    out = selection.handle_region(store, session, None, lambda labels: (None, "box"), adapter.class_names)
    assert "Load an image" in out[6]


def test_click_selects_one_pixel(store, session, adapter, image_ref):
    out = selection.handle_click(store, session, image_ref, {"points": [{"x": 5, "y": 7}]}, adapter.class_names)
    assert out[0]["pixels"] == 1 and out[0]["kind"] == "click"


def test_whole_class_selection_and_absent_class(store, session, adapter, image_without_stem):
    _, labels, _ = analysis.image_data(store, session, image_without_stem["key"])
    present = int(np.bincount(labels.ravel()).argmax())
    out = selection.handle_class(store, session, image_without_stem, present, adapter.class_names)
    assert out[0]["pixels"] == int((labels == present).sum()) and out[1] == present
    out = selection.handle_class(store, session, image_without_stem, ABSENT, adapter.class_names)
    assert out[0] is no_update and "No pixel is predicted" in out[6]


def test_mask_opacity_and_outline_patch_the_mask_without_redrawing_it():
    change = mask.decide_mask(["opacity", "region"], {"region": {"set": {"shapes": [{"type": "path"}]}, "at": 1}},
                              {"key": "k"}, 0.2)  # fmt: skip
    assert change == mask.MaskChange(opacity=0.2, shapes=[{"type": "path"}])
    patch = mask.mask_output(change, "s", None, NAMES).to_plotly_json()
    assert {(tuple(op["location"]), json.dumps(op["params"]["value"])) for op in patch["operations"]} == {
        (("data", figures.LABELS_TRACE, "opacity"), "0.2"), (("layout", "shapes"), '[{"type": "path"}]')}
    assert mask.decide_mask(["opacity"], {}, None, 0.2) is None  # no image shown: nothing to patch


# --- explanations ---------------------------------------------------------------------------------------------------


def run_explain(store, session, adapter, image_ref, region, target, chosen, previous=None, layer=None):
    return explain.handle_explain(region, target, chosen, image_ref, session, layer, 0.8, None, previous,
                                  adapter=adapter, store=store, infos=methods())  # fmt: skip


def card_methods(cards) -> list[str]:
    return [card.to_plotly_json()["props"]["data-method"] for card in cards]


def test_fast_methods_give_cards_at_once_and_slow_ones_a_job(store, session, adapter, image_ref):
    region, target = region_of(store, session, image_ref, adapter)
    chosen = ["gradcam", "hirescam", "saliency", "integrated_gradients"]
    fast, slow, request, results, *_message = run_explain(store, session, adapter, image_ref, region, target, chosen)
    assert card_methods(fast) == ["gradcam", "hirescam", "saliency"]
    assert card_methods(slow) == ["integrated_gradients"]
    assert request["methods"] == ["integrated_gradients"] and request["session"] == session
    assert results["question"] == {"image": image_ref["key"], "region": region["key"], "target": target,
                                   "contrast": None, "label": "box"}  # fmt: skip
    for name in ("gradcam", "hirescam", "saliency"):
        summary = analysis.stored_result(store, session, results["question"], name)
        assert summary["heatmap"].shape == (32, 32)
    assert analysis.stored_result(store, session, results["question"], "gradcam")["layers"] == adapter.conv_layers


def test_a_slow_card_says_how_long_its_job_is_estimated_to_take(store, session, adapter, image_ref):
    from explainers import registry
    from explainers.estimate import describe_seconds

    region, target = region_of(store, session, image_ref, adapter)
    _, slow, *_ = run_explain(store, session, adapter, image_ref, region, target, ["gradcam", "integrated_gradients"])
    # The fast pass just timed one forward+backward at this size: the card's estimate is the method's gradient images
    # times that measured time, computed here independently.
    ig = registry.get("integrated_gradients")
    images = ig.evaluations(ig.resolve_params({}))["gradient"]
    per_image = adapter.throughput.seconds_per_image("gradient", (32, 32))
    assert per_image is not None and images >= 32
    expected = f"{explain.WAITING_TEXT} (estimated {describe_seconds(images * per_image)})"
    assert expected in repr(slow[0])


def test_no_estimate_before_the_model_ran_at_that_size(adapter):
    assert analysis.waiting_text(adapter, "integrated_gradients", (31, 17), "Queued") == "Queued"
    assert analysis.waiting_text(adapter, "no_such_method", (32, 32), "Queued") == "Queued"


def test_cached_slow_results_are_shown_without_a_job(store, session, adapter, image_ref):
    region, target = region_of(store, session, image_ref, adapter)
    question = {"image": image_ref["key"], "region": region["key"], "target": target}
    analysis.compute(adapter, store, session, question, ["integrated_gradients"])
    fast, slow, request, *_ = run_explain(store, session, adapter, image_ref, region, target,
                                          ["gradcam", "integrated_gradients"], previous={"old": 1})  # fmt: skip
    assert card_methods(fast) == ["gradcam", "integrated_gradients"] and slow == []
    assert request is None  # clears the previous request, so a running job is not left to finish


def test_no_region_no_target_no_method_give_hints(store, session, adapter, image_ref):
    out = run_explain(store, session, adapter, image_ref, None, None, ["gradcam"])
    assert out[1] == [] and out[2] is no_update and out[3] is None
    region, target = region_of(store, session, image_ref, adapter)
    assert "target" in str(run_explain(store, session, adapter, image_ref, region, None, ["gradcam"])[0])
    assert "Tick at least one" in str(run_explain(store, session, adapter, image_ref, region, target, [])[0])


def test_region_of_another_image_is_not_explained(store, session, adapter, image_ref):
    region, target = region_of(store, session, image_ref, adapter)
    other = dict(image_ref, key="f" * 16)
    out = run_explain(store, session, adapter, other, region, target, ["gradcam"])
    assert out[3] is None


def test_target_absent_from_the_prediction_warns_but_explains(store, session, adapter, image_without_stem):
    region, _ = region_of(store, session, image_without_stem, adapter)
    out = run_explain(store, session, adapter, image_without_stem, region, ABSENT, ["gradcam"])
    fast, _, _, _, text, color, is_open = out
    assert card_methods(fast) == ["gradcam"]
    assert is_open and color == "warning" and "not predicted anywhere" in text


def test_bad_target_is_a_message_not_a_crash(store, session, adapter, image_ref):
    region, _ = region_of(store, session, image_ref, adapter)
    out = run_explain(store, session, adapter, image_ref, region, 99, ["gradcam"])
    assert out[:4] == (no_update,) * 4 and out[6] is True


def test_layer_slider_swaps_cam_maps_from_the_store_without_a_model_call(store, session, adapter, image_ref,
                                                                          monkeypatch):  # fmt: skip
    region, target = region_of(store, session, image_ref, adapter)
    chosen = ["gradcam", "layercam", "saliency"]
    _, _, _, results, *_ = run_explain(store, session, adapter, image_ref, region, target, chosen)

    def no_model_call(*args, **kwargs):
        raise AssertionError("the layer slider must not call the model")

    from explainers import SegmentationAdapter

    # Whatever path the handler took to a model (the process resources, any adapter method), it would raise here.
    for name in ("predict", "score", "layer_maps", "image_gradient", "input_gradients"):
        monkeypatch.setattr(SegmentationAdapter, name, no_model_call)
    monkeypatch.setattr("dashboard.state.resources.get_adapter", no_model_call)
    monkeypatch.setattr("dashboard.state.resources.get_session_adapter", no_model_call)
    with pytest.raises(AssertionError, match="must not call the model"):
        adapter.predict(np.zeros((32, 32, 3), np.uint8))  # the guard is live
    figures, subtitles, _notes, scales, info = layers.handle_layer(
        0, results, session, [chosen] * 4, conv_layers=adapter.conv_layers,
        layer_shapes=adapter.layer_shapes, store=store, infos=methods(),
    )  # fmt: skip
    assert isinstance(figures[0], Patch) and isinstance(figures[1], Patch) and figures[2] is no_update
    assert subtitles[0].startswith(f"layer {adapter.conv_layers[0]}") and subtitles[2] is no_update
    assert scales[2] is no_update and len(scales[0]) == 5
    assert info.startswith(adapter.conv_layers[0])
    first = figures[0].to_plotly_json()["operations"]
    assert [op["location"] for op in first] == [["layout", "images", OVERLAY_IMAGE, "source"]]  # nothing else redraws
    source = first[0]["params"]["value"]
    summary = analysis.stored_result(store, session, results["question"], "gradcam")
    layer0, _ = analysis.layer_map(store, session, results["question"], summary, adapter.conv_layers[0])
    from dashboard.view.render import display_range, heatmap_uri

    assert source == heatmap_uri(layer0, signed=False)[0]
    lo, hi = display_range(layer0, signed=False)
    ticks = [span.children for span in scales[0]]
    assert float(ticks[0].replace("\u2212", "-")) == pytest.approx(lo, rel=0.05, abs=1e-12)
    assert float(ticks[-1].replace("\u2212", "-")) == pytest.approx(hi, rel=0.05)


def test_heatmap_opacity_patches_every_card():
    patches = explain.opacity_patches(0.3, ["a", "b"])
    assert len(patches) == 2 and all(isinstance(p, Patch) for p in patches)


# --- background job (run in-process here; the browser tests run it in a job process) ----------------------------


def test_slow_job_computes_reports_progress_and_returns_keys(store, session, adapter, image_ref, config):
    from dashboard.state.resources import get_store

    shared = get_store(config)
    ref = analysis.ingest_image(shared, session, adapter, analysis.image_data(store, session, image_ref["key"])[0],
                                name="x")  # fmt: skip
    region, target = region_of(shared, session, ref, adapter)
    question = {"image": ref["key"], "region": region["key"], "target": target}
    reports = []
    result = jobs.run_slow_job(reports.append, {"session": session, "question": question,
                                                "methods": ["integrated_gradients", "smoothgrad"]}, config)  # fmt: skip
    assert result["question"] == question and result["failed"] == {}
    assert reports[-1][0] == 100 and any("Integrated Gradients" in r[2] for r in reports)
    assert analysis.stored_result(shared, session, question, "smoothgrad") is not None
    slow_cards, *message = explain.handle_slow_result(result, {"question": question,
                                                               "methods": ["integrated_gradients", "smoothgrad"]},
                                                      session, None, 0.8, None, adapter=adapter, store=shared,
                                                      infos=methods())  # fmt: skip
    assert card_methods(slow_cards) == ["integrated_gradients", "smoothgrad"]
    assert message[2] is False
    with pytest.raises(PreventUpdate):  # stale: the question changed while the job ran
        stale = {"question": dict(question, target=0 if target else 1), "methods": []}
        explain.handle_slow_result(result, stale, session, None, 0.8, None, adapter=adapter, store=shared,
                                   infos=methods())  # fmt: skip
    gone = dict(question, image="0" * 16)  # the image expired while the job ran
    cards, *message = explain.handle_slow_result(dict(result, question=gone), {"question": gone, "methods": []},
                                                 session, None, 0.8, None, adapter=adapter, store=shared,
                                                 infos=methods())  # fmt: skip
    assert cards == [] and message[0] == analysis.EXPIRED_MESSAGE


def test_empty_job_request_does_nothing(config):
    with pytest.raises(PreventUpdate):
        jobs.run_slow_job(lambda value: None, None, config)


def test_cancel_shows_cancelled_placeholders():
    cards = jobs.cancelled_cards({"methods": ["shap"]})
    assert card_methods(cards) == ["shap"] and "Cancelled" in str(cards[0])


def test_progress_reporter_maps_and_throttles():
    reports = []
    reporter = jobs.ProgressReporter(reports.append, total=2, period=10.0)
    reporter.start(1, "SHAP")
    reporter.report(0.5, "half")  # throttled
    reporter.report(0.5, "half", force=True)
    assert reports[0][0] == 50 and reports[-1][:2] == (75, "75%") and "SHAP (2/2): half" in reports[-1][2]


# --- linked view ----------------------------------------------------------------------------------------------------


def test_zoom_on_one_figure_patches_all_others():
    ref = {"height": 32, "width": 32}
    relayout = {"xaxis.range[0]": 2, "xaxis.range[1]": 10, "yaxis.range[0]": 12, "yaxis.range[1]": 4}
    mask_patch, heatmaps, new_view = view.handle_view("gradcam", relayout, ref, None, ["gradcam", "saliency"])
    assert isinstance(mask_patch, Patch) and heatmaps[0] is no_update and isinstance(heatmaps[1], Patch)
    assert new_view == {"x": [2.0, 10.0], "y": [12.0, 4.0]}
    with pytest.raises(PreventUpdate):  # the echo of the same view stops the ping-pong
        view.handle_view("saliency", relayout, ref, new_view, ["gradcam", "saliency"])
    mask_patch, heatmaps, reset = view.handle_view(view.MASK, {"xaxis.autorange": True}, ref, new_view, ["gradcam"])
    assert mask_patch is no_update and reset == {"x": [-0.5, 31.5], "y": [31.5, -0.5]}


def test_non_view_relayout_events_are_ignored():
    with pytest.raises(PreventUpdate):
        view.handle_view(view.MASK, {"selections": []}, {"height": 4, "width": 4}, None, [])
    with pytest.raises(PreventUpdate):
        view.handle_view(view.MASK, {"xaxis.range[0]": 1, "xaxis.range[1]": 2}, None, None, [])


def test_ids_module_pattern_ids():
    assert ids.heatmap_graph("gradcam++") == {"type": ids.HEATMAP_GRAPH, "method": "gradcam++"}


def test_a_finished_job_is_not_restarted_by_the_next_question(store, session, adapter, image_ref):
    region, target = region_of(store, session, image_ref, adapter)
    request = {"token": "t1", "methods": ["shap"]}
    out = explain.handle_explain(region, target, ["gradcam"], image_ref, session, None, 0.8, None, request,
                                 adapter=adapter, store=store, infos=methods(),
                                 previous_result={"token": "t1", "question": {}})  # fmt: skip
    assert out[2] is no_update  # nothing running: do not start a do-nothing job
    assert explain.job_may_run(request, None) and explain.job_may_run(request, {"token": "t0"})
    assert not explain.job_may_run(request, {"token": "t1", "cancelled": True}) and not explain.job_may_run(None, None)


def test_cancellation_marker_is_not_rendered(store, session, adapter):
    with pytest.raises(PreventUpdate):
        explain.handle_slow_result({"token": "t", "cancelled": True}, {"question": {}}, session, None, 0.8, None,
                                   adapter=adapter, store=store, infos=methods())  # fmt: skip


def test_stored_layer_maps_are_plain_records_equal_to_the_engine_maps(store, session, adapter, image_ref):
    """The state holds the dashboard's own record (numpy arrays), not the engine's object: it unpickles in a process
    without the engine's classes or a framework, and gives the same maps the engine shows."""
    import pickle

    from dashboard.state.records import LayerMapsRecord
    from explainers import explain as run_methods

    region, target = region_of(store, session, image_ref, adapter)
    _, _, _, results, *_ = run_explain(store, session, adapter, image_ref, region, target, ["gradcam"])
    record = store.get(session, "layers", analysis.result_key(results["question"], "gradcam"))
    assert type(record) is LayerMapsRecord and record.layers == list(adapter.conv_layers)
    payload = pickle.dumps(record)
    for name in (b"explainers.adapter", b"tensorflow", b"keras", b"torch"):
        assert name not in payload
    image, stored_region = analysis.question_inputs(store, session, results["question"])
    engine = run_methods(adapter, image, stored_region, target, methods=["gradcam"])["gradcam"]
    for layer in adapter.conv_layers:
        np.testing.assert_allclose(record.at(layer), engine.per_layer[layer], rtol=1e-5, atol=1e-6)
