"""Trust-section use cases and callbacks (dashboard.trust.metrics, dashboard.callbacks.trust) as plain functions, on
the tiny real Keras U-Net and the real engine (explainers.faithfulness / sanity / agreement)."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import numpy as np
import pytest
from dash import no_update
from dash.exceptions import PreventUpdate
from PIL import Image
from scipy.stats import spearmanr

from dashboard.callbacks import explain, selection
from dashboard.callbacks import trust as trust_cb
from dashboard.state.resources import methods
from dashboard.trust import metrics as trust
from dashboard.usecases import analysis, export
from dashboard.view.render import heatmap_uri

FAST = ["gradcam", "hirescam", "saliency", "gradient_x_input"]


@pytest.fixture()
def explained(shared, session, adapter, image):
    """(question, results store value) after the fast methods ran for a box region."""
    ref = analysis.ingest_image(shared, session, adapter, image, name="tiny sample")
    box = {"points": [], "range": {"x": [4, 20], "y": [6, 18]}}
    region, target = selection.handle_selected(shared, session, ref, box, adapter.class_names)[:2]
    out = explain.handle_explain(region, target, FAST, ref, session, None, 0.8, None, None, adapter=adapter,
                                 store=shared, infos=methods())  # fmt: skip
    results = out[3]
    assert results["methods"] == FAST
    return ref, results


def run(shared, session, adapter, results, options=("faithfulness", "sanity"), layer_index=None, steps=10):
    return trust_cb.handle_run(1, results, session, layer_index, list(options), steps, None, None, store=shared,
                               infos=methods(), conv_layers=adapter.conv_layers)  # fmt: skip


def stored_map(shared, session, question, method, layer):
    summary = analysis.stored_result(shared, session, question, method)
    return analysis.layer_map(shared, session, question, summary, layer)[0]


def test_run_measures_share_and_agreement_from_stored_maps_without_a_model_call(shared, session, adapter, explained,
                                                                                 monkeypatch):  # fmt: skip
    _, results = explained
    question = results["question"]

    def no_model_call(*args, **kwargs):
        raise AssertionError("the quick metrics must not call the model")

    # On the class: undoing an instance patch would leave the bound method behind as an instance attribute, which
    # hides every later class-level patch of this shared adapter (other tests' guards) from it.
    monkeypatch.setattr(type(adapter), "score", no_model_call)
    monkeypatch.setattr(type(adapter), "predict", no_model_call)
    share, agreement, curves, table, sanity, flags, status, request = run(shared, session, adapter, results)
    region = shared.get(session, "region", question["region"])
    last = adapter.conv_layers[-1]
    labels = trust_cb.labels_of(methods())
    assert share["data"][0]["y"] == [labels[m] for m in FAST]
    for method, value in zip(FAST, share["data"][0]["x"], strict=True):
        positive = np.maximum(stored_map(shared, session, question, method, last), 0)
        expected = positive[region].sum() / positive.sum() if positive.sum() > 0 else 0.0
        assert value == pytest.approx(expected, rel=1e-6)
    z = np.array(agreement["data"][0]["z"], dtype=float)
    assert z.shape == (4, 4) and np.allclose(np.diag(z), 1)
    a, b = (stored_map(shared, session, question, m, last).ravel() for m in ("hirescam", "saliency"))
    if np.ptp(a) > 0 and np.ptp(b) > 0:
        assert z[1, 2] == pytest.approx(spearmanr(a, b).statistic, abs=1e-9)
    assert request["parts"] == ["faithfulness", "sanity"] and request["methods"] == FAST
    assert request["layer"] == last and request["options"] == {"steps": 10} and request["session"] == session
    assert "background" in json.dumps(curves) and "background" in json.dumps(sanity)
    assert status.startswith("Measuring 4 map(s)") and last in status
    assert table == [] and flags == []  # the job fills them


def test_job_computes_curves_and_sanity_stores_them_and_they_render(shared, session, adapter, explained, config,
                                                                     monkeypatch):  # fmt: skip
    _, results = explained
    question = results["question"]
    request = run(shared, session, adapter, results)[-1]
    reports = []
    out = trust_cb.run_trust_job(reports.append, request, config)
    assert out["failed"] == {} and out["faith"] and out["sanity"] and out["question"] == question
    assert reports[-1][0] == 100 and any("Deletion" in r[2] for r in reports) and any("Sanity" in r[2] for r in reports)

    faith = shared.get(session, "faith", out["faith"])["methods"]
    assert list(faith) == FAST
    score = analysis.stored_result(shared, session, question, "gradcam")["score"]
    for method in FAST:
        deletion, insertion = faith[method]["deletion"], faith[method]["insertion"]
        assert len(deletion["scores"]) == 11 and deletion["fractions"][-1] == 1.0
        # Deletion starts at S(image) and insertion ends there: the same score the cards report.
        assert deletion["scores"][0] == pytest.approx(score, rel=1e-4, abs=1e-5)
        assert insertion["scores"][-1] == pytest.approx(score, rel=1e-4, abs=1e-5)
        assert faith[method]["random_deletion"] == faith[FAST[0]]["random_deletion"]  # one shared random order

    curves, table, sanity_fig, flags, status = trust_cb.handle_trust_result(out, results, session, store=shared,
                                                                             infos=methods())  # fmt: skip
    assert len([t for t in curves["data"] if t["xaxis"] == "x"]) == len(FAST) + 1  # + the random order
    assert [row["props"]["data-method"] for row in _rows(table)] == FAST
    sanity = shared.get(session, "sanity", out["sanity"])
    assert set(sanity["spearman"]) == set(FAST) and len(sanity["depths"]) >= 2
    assert len(sanity_fig["data"]) == 2 * len(FAST)
    assert ("Barely changes" in str(flags)) == any(sanity["flagged"].values())
    grid_rows = [r["props"]["data-method"] for r in _rows(flags[1])]
    assert grid_rows == FAST  # the grid of maps per randomization depth, one row per method
    images = [c for c in flags[1]._traverse() if type(c).__name__ == "Img"]
    assert len(images) == len(FAST) * (len(sanity["depths"]) + 1)
    assert all(img.src.startswith("data:image/png;base64,") for img in images)
    assert status.startswith("Trust metrics done")

    def engine_must_not_run(*args, **kwargs):
        raise AssertionError("a repeated run must be a lookup")

    monkeypatch.setattr("explainers.faithfulness.faithfulness", engine_must_not_run)
    monkeypatch.setattr("explainers.sanity.cascading_randomization", engine_must_not_run)
    again = trust_cb.run_trust_job(lambda value: None, request, config)
    assert (again["faith"], again["sanity"], again["failed"]) == (out["faith"], out["sanity"], {})


def _rows(table):
    found = []

    def walk(node):
        props = getattr(node, "to_plotly_json", lambda: {})().get("props", {})
        if "data-method" in props:
            found.append({"props": props})
        children = getattr(node, "children", None)
        for child in children if isinstance(children, list) else [children] if children is not None else []:
            walk(child)

    walk(table)
    return found


def test_curves_measure_the_cam_layer_shown_on_the_slider(shared, session, adapter, explained, config):
    from explainers.faithfulness import faithfulness

    _, results = explained
    question = results["question"]
    request = run(shared, session, adapter, results, options=["faithfulness"], layer_index=0)[-1]
    assert request["layer"] == adapter.conv_layers[0] and request["parts"] == ["faithfulness"]
    out = trust_cb.run_trust_job(lambda value: None, request, config)
    stored = shared.get(session, "faith", out["faith"])
    assert stored["layers"]["gradcam"] == adapter.conv_layers[0] and stored["layers"]["saliency"] is None
    image, region = analysis.question_inputs(shared, session, question)
    layer0 = stored_map(shared, session, question, "gradcam", adapter.conv_layers[0])
    direct = faithfulness(adapter, image, region, question["target"], {"gradcam": layer0}, steps=10)["gradcam"]
    np.testing.assert_allclose(stored["methods"]["gradcam"]["deletion"]["scores"], direct.deletion.scores, rtol=1e-6)
    assert out["sanity"] is None


def test_stale_and_cancelled_results_are_not_drawn(shared, session, explained):
    _, results = explained
    with pytest.raises(PreventUpdate):
        trust_cb.handle_trust_result({"token": "t", "cancelled": True}, results, session, store=shared,
                                     infos=methods())  # fmt: skip
    stale = {"question": dict(results["question"], target=results["question"]["target"] + 1), "faith": "x"}
    with pytest.raises(PreventUpdate):
        trust_cb.handle_trust_result(stale, results, session, store=shared, infos=methods())


def test_failures_are_reported_in_the_section(shared, session, explained):
    _, results = explained
    out = {"question": results["question"], "methods": FAST, "faith": None, "sanity": None,
           "failed": {"sanity": "Sanity check failed: boom"}}  # fmt: skip
    curves, table, sanity_fig, flags, status = trust_cb.handle_trust_result(out, results, session, store=shared,
                                                                             infos=methods())  # fmt: skip
    assert curves is no_update and table is no_update and flags == []
    assert "boom" in json.dumps(sanity_fig) and status == "Sanity check failed: boom"


def test_run_without_a_question_or_maps_says_why(shared, session, adapter, explained):
    out = run(shared, session, adapter, None)
    assert out[:6] == (no_update,) * 6 and "Select a region" in out[6] and out[7] is no_update
    _, results = explained
    missing = dict(results, methods=["integrated_gradients"])  # slow, not computed
    out = run(shared, session, adapter, missing)
    assert "No computed map" in out[6] and out[7] is no_update
    with pytest.raises(PreventUpdate):
        trust_cb.handle_run(0, results, session, None, [], 20, None, None, store=shared, infos=methods(),
                            conv_layers=adapter.conv_layers)  # fmt: skip


def test_maps_not_computed_yet_are_skipped_and_named(shared, session, adapter, explained):
    _, results = explained
    out = run(shared, session, adapter, dict(results, methods=[*FAST, "shap"]), options=[])
    assert "Not computed yet (skipped): SHAP" in out[6]
    assert out[7] is no_update  # nothing asked of the job, and no job runs
    assert "Not requested" in json.dumps(out[2])


def test_a_new_question_resets_the_section_and_replaces_a_running_job():
    out = trust_cb.handle_question_change({"token": "t1"}, None)
    assert out[-1] is None and out[-2] == trust_cb.RUN_HINT
    assert trust_cb.handle_question_change({"token": "t1"}, {"token": "t1"})[-1] is no_update
    marker, curves, sanity, text = trust_cb.handle_cancel(1, {"token": "t1"})
    assert marker == {"token": "t1", "cancelled": True} and "Cancelled" in text
    assert "Cancelled" in json.dumps(curves) and "Cancelled" in json.dumps(sanity)


def _export(shared, session, adapter, results, ref, trust_result=None, layer_index=None):
    return trust_cb.handle_export(1, results, ref, session, layer_index, 0.6, trust_result, store=shared,
                                  infos=methods(), class_names=list(adapter.class_names),
                                  conv_layers=adapter.conv_layers, model="tiny.keras")  # fmt: skip


def test_export_zip_round_trip_with_metrics(shared, session, adapter, explained, config, image, fetch_export):
    ref, results = explained
    question = results["question"]
    slider = adapter.conv_layers.index(adapter.default_layer)  # where the layer slider starts
    out = trust_cb.run_trust_job(lambda value: None, run(shared, session, adapter, results, layer_index=slider)[-1],
                                 config)  # fmt: skip
    download, status = _export(shared, session, adapter, results, ref, trust_result=out, layer_index=slider)
    assert download["filename"].startswith("segxplain_tiny_sample_") and download["filename"].endswith(".zip")
    assert status.startswith("Exported")
    with zipfile.ZipFile(io.BytesIO(fetch_export(download))) as archive:
        names = set(archive.namelist())
        with Image.open(io.BytesIO(archive.read("image.png"))) as img:
            np.testing.assert_array_equal(np.asarray(img), image)
        with Image.open(io.BytesIO(archive.read("region.png"))) as img:
            np.testing.assert_array_equal(np.asarray(img) == 255, shared.get(session, "region", question["region"]))
        settings = json.loads(archive.read("settings.json"))
        assert settings["model"] == "tiny.keras" and settings["layer"] == adapter.default_layer
        assert settings["class"] == {"name": adapter.class_names[question["target"]], "index": question["target"]}
        assert list(settings["methods"]) == FAST
        assert settings["methods"]["gradcam"]["params"] == {"layer": None, "all_layers": True}
        assert set(settings["packages"]) == {"tensorflow", "keras", "numpy", "shap", "dash"}
        assert all(settings["packages"].values())
        assert settings["metrics"]["faithfulness"]["options"]["steps"] == 10
        with np.load(io.BytesIO(archive.read("maps.npz"))) as npz:
            for method in FAST:
                summary = analysis.stored_result(shared, session, question, method)
                np.testing.assert_array_equal(npz[method], analysis.heatmap_of(summary))
            stored_layers = shared.get(session, "layers", analysis.result_key(question, "gradcam"))
            for layer in adapter.conv_layers:  # at each layer's own resolution, as settings.json says
                np.testing.assert_array_equal(npz[f"gradcam/layers/{layer}"], stored_layers.native_map(layer))
                assert settings["layer_maps"]["shapes"]["gradcam"][layer] == list(stored_layers.native[layer].shape)
                assert "bilinear" in settings["layer_maps"]["resolution"]
            depths = shared.get(session, "sanity", out["sanity"])["depths"]
            for method in FAST:  # the sanity maps: the trained model's map first, then one per randomization depth
                stack = npz[f"sanity/{method}"]
                assert stack.shape == (len(depths) + 1, 32, 32)
                np.testing.assert_allclose(stack[0], stored_map(shared, session, question, method,
                                                                adapter.default_layer), rtol=1e-4, atol=1e-6)
        with Image.open(io.BytesIO(archive.read("heatmaps/gradcam.png"))) as img:
            card_uri, _ = heatmap_uri(stored_map(shared, session, question, "gradcam", adapter.default_layer), False)
            with Image.open(io.BytesIO(base64.b64decode(card_uri.split(",", 1)[1]))) as card:
                np.testing.assert_array_equal(np.asarray(img), np.asarray(card.convert("RGBA")))
        assert {"metrics/deletion_insertion.csv", "metrics/auc.csv", "metrics/sanity.csv",
                "metrics/agreement.csv"} <= names  # fmt: skip
        curves_csv = archive.read("metrics/deletion_insertion.csv").decode()
        assert curves_csv == export.curves_csv(shared.get(session, "faith", out["faith"])["methods"])


def test_export_at_another_layer_and_without_metrics(shared, session, adapter, explained, fetch_export):
    ref, results = explained
    question = results["question"]
    download, _ = _export(shared, session, adapter, results, ref, layer_index=0)
    with zipfile.ZipFile(io.BytesIO(fetch_export(download))) as archive:
        names = set(archive.namelist())
        assert "metrics/deletion_insertion.csv" not in names and "metrics/agreement.csv" in names
        settings = json.loads(archive.read("settings.json"))
        assert settings["layer"] == adapter.conv_layers[0] and settings["metrics"] == {}
        with np.load(io.BytesIO(archive.read("maps.npz"))) as npz:
            np.testing.assert_array_equal(npz["gradcam"], stored_map(shared, session, question, "gradcam",
                                                                     adapter.conv_layers[0]))  # fmt: skip


def test_export_without_a_selection_says_so(shared, session, adapter):
    download, status = _export(shared, session, adapter, None, None)
    assert download is no_update and "Nothing to export" in status
    with pytest.raises(PreventUpdate):
        trust_cb.handle_export(None, None, None, session, None, None, None, store=shared, infos=methods(),
                               class_names=[], conv_layers=[], model="demo")  # fmt: skip


def test_plain_forms_of_engine_results_are_json_ready(shared, session, adapter, explained):
    from explainers.faithfulness import faithfulness

    _, results = explained
    question = results["question"]
    image, region = analysis.question_inputs(shared, session, question)
    maps, _, _ = trust.stored_maps(shared, session, question, FAST[:2], None)
    plain = trust.plain_faithfulness(faithfulness(adapter, image, region, question["target"], maps, steps=4))
    json.dumps(plain)
    assert set(plain["gradcam"]) == {*export.CURVE_KINDS, "inside_share"}
    assert len(plain["gradcam"]["deletion"]["scores"]) == 5


def test_the_export_route_refuses_unknown_tickets_and_another_sessions(shared, session, adapter, explained, config):
    from flask import Flask

    from dashboard.trust.download import register_export_route

    ref, results = explained
    ticket, _ = _export(shared, session, adapter, results, ref)
    server = Flask("export-refusals")
    register_export_route(server, config)
    client = server.test_client()
    assert client.get("/" + ticket["url"]).status_code == 200
    other_session = "f" * 32  # a ticket is looked up in its own session's state only
    assert client.get("/" + ticket["url"].replace(session, other_session)).status_code == 404
    assert client.get(f"/_segx/export/{session}/no-such-ticket.zip").status_code == 404
    assert client.get(f"/_segx/export/{session}/..%2Fsecrets.zip").status_code == 404
