"""Contrast questions in the app: the explain callback, the runner-up shortcut, the question line and the export."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from dash import no_update

from dashboard.callbacks import explain, question, selection
from dashboard.callbacks import trust as trust_cb
from dashboard.callbacks.selection import RegionChoices
from dashboard.state.resources import methods
from dashboard.usecases import analysis
from explainers.question import Question, runner_up_class

FAST = ["gradcam", "saliency"]
BOX = {"points": [], "range": {"x": [4, 20], "y": [6, 18]}}


@pytest.fixture()
def selected(shared, session, adapter, image):
    ref = analysis.ingest_image(shared, session, adapter, image, name="tiny sample")
    region, target = selection.handle_selected(shared, session, ref, BOX, adapter.class_names)[:2]
    return ref, region, target


def _explain(shared, session, adapter, selected, contrast):
    ref, region, target = selected
    return explain.handle_explain(region, target, FAST, ref, session, None, 0.8, None, None, adapter=adapter,
                                  store=shared, infos=methods(), contrast=contrast)  # fmt: skip


def _other(target: int) -> int:
    return (target + 1) % 3


def test_a_contrast_reaches_the_engine_and_keys_its_own_results(shared, session, adapter, selected, image):
    _, region_ref, target = selected
    contrast = _other(target)
    plain = _explain(shared, session, adapter, selected, None)[3]["question"]
    out = _explain(shared, session, adapter, selected, contrast)
    asked = out[3]["question"]
    assert asked["contrast"] == contrast and asked["label"] == "box" and plain["contrast"] is None
    region = shared.get(session, "region", region_ref["key"])
    for method in FAST:
        summary = analysis.stored_result(shared, session, asked, method)
        expected = adapter.score(image[None], region, target, contrast=contrast)[0]
        np.testing.assert_allclose(summary["score"], expected, rtol=1e-5, atol=1e-6)
        assert analysis.result_key(asked, method) != analysis.result_key(plain, method)
    saliency = analysis.heatmap_of(analysis.stored_result(shared, session, asked, "saliency"))
    plain_saliency = analysis.heatmap_of(analysis.stored_result(shared, session, plain, "saliency")).astype(np.float64)
    difference = plain_saliency - adapter.image_gradient(image, region, contrast)[2].sum(-1)
    # both stored maps are compact (to 2^-11 of their largest magnitude)
    tolerance = 2.0**-11 * (np.abs(saliency).max() + np.abs(plain_saliency).max()) + 1e-5 * np.abs(difference).max()
    np.testing.assert_allclose(saliency, difference, rtol=1e-4, atol=tolerance)


def test_a_contrast_equal_to_the_target_is_refused_with_a_message(shared, session, adapter, selected):
    _, _, target = selected
    out = _explain(shared, session, adapter, selected, target)
    assert out[3] is None and "must differ from the target" in out[4] and out[6] is True


def test_runner_up_is_the_engine_s_runner_up_class(shared, session, adapter, selected, image):
    ref, region_ref, target = selected
    value, *message = question.handle_runner_up(shared, session, adapter, ref, region_ref, target)
    region = shared.get(session, "region", region_ref["key"])
    assert value == runner_up_class(adapter.predict(image), region, target) and value != target
    assert message[2] is False
    value, *message = question.handle_runner_up(shared, session, adapter, ref, None, target)
    assert value is no_update and "Select a region" in message[0]


def test_contrast_options_are_the_models_classes():
    options, value = question.contrast_options(["background", "cap"], 1)
    assert options == [{"label": "background", "value": 0}, {"label": "cap", "value": 1}] and value is no_update
    assert question.contrast_options(["background", "cap"], None)[1] is no_update
    assert question.contrast_options(["background", "cap"], 5)[1] is None  # a class the new model lacks


def test_question_line_says_what_is_explained(shared, session, adapter, image):
    ref = analysis.ingest_image(shared, session, adapter, image, name="tiny sample")
    ring, *_ = selection.handle_selected(
        shared, session, ref, BOX, adapter.class_names, RegionChoices.of(None, "inner", 2)
    )
    names = adapter.class_names
    text = question.question_text(shared, session, ring, 1, 2, names)
    assert text == f"Explaining: why is this inner border (2 px) of box “{names[1]}” rather than “{names[2]}”?"
    assert "must differ" in question.question_text(shared, session, ring, 1, 1, names)
    assert question.question_text(shared, session, None, 1, None, names) == ""


def test_the_export_records_the_question_exactly(shared, session, adapter, selected, config, fetch_export):
    ref, region_ref, target = selected
    contrast = _other(target)
    results = _explain(shared, session, adapter, selected, contrast)[3]
    download, status = trust_cb.handle_export(1, results, ref, session, None, 0.6, None, store=shared,
                                              infos=methods(), class_names=list(adapter.class_names),
                                              conv_layers=adapter.conv_layers, model="tiny.keras")  # fmt: skip
    assert status.startswith("Exported")
    with zipfile.ZipFile(io.BytesIO(fetch_export(download))) as archive:
        settings = json.loads(archive.read("settings.json"))
    recorded = settings["question"]
    assert (recorded["target"], recorded["contrast"], recorded["label"]) == (target, contrast, "box")
    assert recorded["contrast_name"] == adapter.class_names[contrast]
    back = Question.from_dict(recorded)
    np.testing.assert_array_equal(back.region, shared.get(session, "region", region_ref["key"]))
    assert back == Question(back.region, target, contrast)
