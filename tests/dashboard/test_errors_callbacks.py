"""The model's errors in the app, without a browser: the ground-truth upload, the errors card, an error region picked,
"Explain this error" (region, target and contrast), the dispatchers that route these events to the region's and the
contrast's one writer, and the export of the resulting question."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from dash import no_update
from dash.exceptions import PreventUpdate

from dashboard.callbacks import errors as errors_cb
from dashboard.callbacks import explain, question, selection
from dashboard.callbacks import trust as trust_cb
from dashboard.callbacks.selection import RegionChoices
from dashboard.state.resources import methods
from dashboard.usecases import analysis, errors
from dashboard.view import ids
from explainers.errors import error_question
from explainers.question import Question
from tests.dashboard.test_errors_usecase import data_uri, wrong_truth

FAST = ["gradcam", "saliency"]


@pytest.fixture()
def with_truth(shared, session, adapter, image):
    ref = analysis.ingest_image(shared, session, adapter, image, name="tiny")
    predicted = np.asarray(shared.get(session, "labels", ref["key"])).astype(np.int64)
    truth = wrong_truth(predicted)
    truth_ref, message = errors_cb.handle_truth_upload(data_uri(truth), "gt.png", ref, session, shared,
                                                       adapter.class_names, 1 << 20)  # fmt: skip
    assert message[2] is False and truth_ref["image"] == ref["key"]
    return ref, truth_ref, predicted, truth


def _largest_fp(predicted, truth, names):
    return next(o["value"] for o in errors.error_choices(predicted, truth, names) if o["value"].startswith("false_p"))


def test_the_errors_card_shows_iou_and_lists_the_error_regions(shared, session, adapter, with_truth):
    ref, truth_ref, predicted, truth = with_truth
    table, options, value, info = errors_cb.handle_errors(ref, truth_ref, session, shared, adapter.class_names)
    assert value is None and info.startswith("Ground truth: gt.png · ")
    assert options == errors.error_choices(predicted, truth, adapter.class_names) and options
    cells = {row.children[0].children: row.children[1].children for row in table.children[1].children}
    for name, iou in cells.items():
        c = adapter.class_names.index(name)
        tp, union = ((predicted == c) & (truth == c)).sum(), ((predicted == c) | (truth == c)).sum()
        assert iou == f"{tp / union:.3f}"
    other = {**ref, "key": "another image"}
    table, options, _, info = errors_cb.handle_errors(other, truth_ref, session, shared, adapter.class_names)
    assert options == [] and "Upload the image's ground truth" in str(table)


def test_a_bad_ground_truth_keeps_the_current_one_and_says_why(shared, session, adapter, with_truth):
    ref, *_ = with_truth
    bad = data_uri(np.zeros((ref["height"], ref["width"] // 2)))
    truth_ref, message = errors_cb.handle_truth_upload(bad, "half.png", ref, session, shared, adapter.class_names,
                                                       1 << 20)  # fmt: skip
    assert truth_ref is no_update and "Could not use the ground truth “half.png”" in message[0] and message[2]
    with pytest.raises(PreventUpdate):
        errors_cb.handle_truth_upload(None, "x", ref, session, shared, adapter.class_names, 1 << 20)


def test_an_error_region_picked_is_the_region_with_the_choices_applied(shared, session, adapter, with_truth):
    ref, truth_ref, predicted, truth = with_truth
    names = adapter.class_names
    choice = _largest_fp(predicted, truth, names)
    c = int(choice.split(":")[1])
    out = selection.handle_error_pick(shared, session, ref, truth_ref, choice, names)
    region_ref, target, *_rest = out
    expected = (predicted == c) & (truth != c)
    np.testing.assert_array_equal(shared.get(session, "region", region_ref["key"]), expected)
    assert target == c and out[4].startswith(f"Error region (false positives of {names[c]}) · {expected.sum()} px")
    inner = RegionChoices.of(None, "inner", 1)
    ring = selection.handle_error_pick(shared, session, ref, truth_ref, choice, names, inner)
    assert ring[0]["label"] == f"border-inner(1) of false-positive({c})"
    assert ring[4].startswith(f"Inner border (1 px) of error region (false positives of {names[c]})")
    with pytest.raises(PreventUpdate):
        selection.handle_error_pick(shared, session, ref, truth_ref, None, names)


def test_explain_this_error_sets_region_target_and_contrast_of_the_engine_s_question(
    shared, session, adapter, image, with_truth, fetch_export
):
    ref, truth_ref, predicted, truth = with_truth
    names = adapter.class_names
    for choice in [o["value"] for o in errors.error_choices(predicted, truth, names)][:3]:
        kind, c = choice.split(":")
        expected = error_question(predicted, truth, int(c), len(names), kind=kind)
        region_ref, target, *rest = selection.handle_explain_error(shared, session, ref, truth_ref, choice, names)
        np.testing.assert_array_equal(shared.get(session, "region", region_ref["key"]), expected.region)
        assert target == expected.target and rest[-1] is False  # the message is cleared
        contrast = errors_cb.handle_error_contrast(1, ref, truth_ref, choice, session, shared, names)
        assert contrast == expected.contrast
    # The question explained: its score is the contrast score, and the export records it exactly.
    out = explain.handle_explain(region_ref, target, FAST, ref, session, None, 0.8, None, None, adapter=adapter,
                                 store=shared, infos=methods(), contrast=contrast)  # fmt: skip
    results = out[3]
    asked = results["question"]
    assert (asked["target"], asked["contrast"]) == (expected.target, expected.contrast)
    score = adapter.score(image[None], expected.region, expected.target, contrast=expected.contrast)[0]
    for method in FAST:
        np.testing.assert_allclose(analysis.stored_result(shared, session, asked, method)["score"], score, rtol=1e-5,
                                   atol=1e-6)  # fmt: skip
    text = question.question_text(shared, session, region_ref, target, contrast, names)
    assert text.startswith("Explaining: why is this error region (") and f"rather than “{names[contrast]}”?" in text
    download, _ = trust_cb.handle_export(1, results, ref, session, None, 0.6, None, store=shared,
                                         infos=methods(), class_names=list(names),
                                         conv_layers=adapter.conv_layers, model="tiny.keras")  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(fetch_export(download))) as archive:
        recorded = json.loads(archive.read("settings.json"))["question"]
    assert Question.from_dict(recorded) == expected and recorded["label"] == expected.label


def test_explain_this_error_without_a_choice_or_a_truth_says_what_to_do(shared, session, adapter, with_truth):
    ref, truth_ref, *_ = with_truth
    names = adapter.class_names
    out = selection.handle_explain_error(shared, session, ref, truth_ref, None, names)
    assert out[0] is no_update and "Pick one of the listed error regions" in out[-3]
    out = selection.handle_explain_error(shared, session, ref, None, "false_positive:1", names)
    assert out[0] is no_update and "Upload the ground truth" in out[-3]
    out = selection.handle_explain_error(shared, session, None, truth_ref, "false_positive:1", names)
    assert "Load an image first" in out[-3]
    assert errors_cb.handle_error_contrast(1, ref, None, "false_positive:1", session, shared, names) is no_update


def test_error_events_are_routed_to_the_region_and_contrast_writers():
    assert selection.region_event([f"{ids.ERROR_REGION}.value"]) == "error"
    assert selection.region_event([f"{ids.EXPLAIN_ERROR}.n_clicks"]) == "explain-error"
    assert selection.region_event([f"{ids.REGION_BORDER}.value", f"{ids.ERROR_REGION}.value"]) == "error"
    assert selection.region_event([f"{ids.MASK_GRAPH}.clickData", f"{ids.EXPLAIN_ERROR}.n_clicks"]) == "click"
    assert question.contrast_event([f"{ids.EXPLAIN_ERROR}.n_clicks"]) == "explain-error"
    assert question.contrast_event([f"{ids.TARGET}.options", f"{ids.EXPLAIN_ERROR}.n_clicks"]) == "explain-error"
    assert question.contrast_event([f"{ids.RUNNER_UP}.n_clicks"]) == "runner-up"
    assert question.contrast_event([f"{ids.TARGET}.options"]) == "options"
