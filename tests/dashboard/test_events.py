"""One writer per output: the pure `events.decide`, the event values the sources send, and the app's writer counts
read back from Dash's own dependency list."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from dash import no_update

from dashboard import factory, layout
from dashboard.callbacks import events, model_upload, selection, upload
from dashboard.callbacks.common import CLEAR, KEEP, message_event, show, with_message_event
from dashboard.view import ids


def test_emit_leaves_out_what_is_kept_and_sends_nothing_for_nothing():
    assert events.emit({"value": 2, "options": no_update}, at=5) == {"set": {"value": 2}, "at": 5}
    assert events.emit({"value": None}, at=1) == {"set": {"value": None}, "at": 1}  # None clears: it is sent
    assert events.emit({"value": no_update}) is no_update
    assert events.emit({}) is no_update
    first, second = events.emit({"value": 1}), events.emit({"value": 1})
    assert second["at"] >= first["at"] > 0  # stamped now, so the same event fires again


def test_decide_takes_the_event_that_fired_not_a_newer_one_that_did_not():
    stored = {"image": {"set": {"value": None, "options": [1]}, "at": 10},
              "region": {"set": {"value": 2, "options": [3]}, "at": 20}}  # fmt: skip
    assert events.decide(("value", "options"), ["image"], stored) == (None, [1])
    assert events.decide(("value", "options"), ["region"], stored) == (2, [3])


def test_decide_takes_the_newest_of_events_that_fired_together():
    stored = {"a": {"set": {"children": "old"}, "at": 10}, "b": {"set": {"children": "new"}, "at": 30},
              "c": {"set": {"children": "newest, but did not fire"}, "at": 50}}  # fmt: skip
    assert events.decide(("children",), ["a", "b"], stored) == ("new",)
    assert events.decide(("children",), ["b", "a"], stored) == ("new",)  # the order of the trigger list is irrelevant


def test_decide_leaves_unset_properties_and_empty_events_alone():
    stored = {"a": {"set": {"is_open": False}, "at": 3}, "b": None}
    assert events.decide(("children", "color", "is_open"), ["a"], stored) == (no_update, no_update, False)
    assert events.decide(("children",), ["b"], stored) == (no_update,)  # cleared store (e.g. a new page)
    assert events.decide(("children",), [], stored) == (no_update,)


def test_decide_message_shows_clears_or_keeps_the_message():
    shown = message_event(show("Bad file", "warning"))
    cleared = message_event(CLEAR)
    assert message_event(KEEP) is no_update  # KEEP sends no event at all
    stored = {"upload": shown, "explain": cleared}
    assert events.decide_message(["upload"], stored) == ("Bad file", "warning", True)
    assert events.decide_message(["explain"], stored) == (no_update, no_update, False)


def test_with_message_event_replaces_only_the_trailing_message():
    out = with_message_event(("grid", None, *show("Done", "info")))
    assert out[:2] == ("grid", None) and len(out) == 3
    assert out[2]["set"] == {"children": "Done", "color": "info", "is_open": True}


def test_region_events_route_each_output_to_its_event():
    shapes = [{"type": "path", "path": "M0,0Z"}]
    out = selection.region_events(({"key": "r"}, 1, [{"value": 1}], shapes, "Box · 4 px", no_update, *CLEAR))
    region, target, outline, info, picker, message = out
    assert region["set"] == {"data": {"key": "r"}} and target["set"] == {"value": 1, "options": [{"value": 1}]}
    assert outline["set"] == {"shapes": shapes} and info["set"] == {"children": "Box · 4 px"}
    assert picker is no_update  # a whole-class selection leaves the picker's value as the user set it
    assert message["set"] == {"is_open": False}


def test_region_event_names_the_input_that_fired_and_prefers_the_drawn_selection():
    assert selection.region_event([f"{ids.MASK_GRAPH}.clickData"]) == "click"
    assert selection.region_event([f"{ids.CLASS_PICKER}.value"]) == "class"
    assert selection.region_event([f"{ids.BORDER_WIDTH}.value", f"{ids.SELECT_MODE}.value"]) == "choices"
    assert selection.region_event([f"{ids.CLASS_PICKER}.value", f"{ids.MASK_GRAPH}.selectedData"]) == "select"
    assert selection.region_event([f"{ids.MASK_OPACITY}.value"]) is None


def test_image_events_clear_the_region_and_keep_the_message(store, session, adapter):
    image = np.zeros((adapter.input_size[0], adapter.input_size[1], 3), np.uint8)
    from dashboard.usecases import analysis

    ref = analysis.ingest_image(store, session, adapter, image, name="black")
    out = upload.image_events(upload.handle_image(ref, session, store, adapter.class_names))
    _options, picker, region, target, info, image_info, view, message = out
    assert picker is None and region["set"] == {"data": None} and info["set"]["children"] == layout.SELECT_HINT
    assert target["set"]["value"] is None and [o["value"] for o in target["set"]["options"]] == [0, 1, 2]
    assert image_info == "black" and view is None and message is no_update


def test_model_upload_sends_its_message_as_an_event():
    out = model_upload.refused("m.keras", "too big")
    values = dict(zip([*model_upload.DIRECT, *model_upload.EVENTED], model_upload.as_events(out), strict=True))
    assert values[ids.MESSAGE]["set"]["color"] == "danger" and "too big" in values[ids.MESSAGE]["set"]["children"]
    assert values[ids.TARGET] is no_update and values[ids.REGION] is no_update  # a refusal changes nothing else
    assert not any(output in {i for i, _ in model_upload.DIRECT} for output in events.PROPS)


@pytest.fixture(scope="module")
def writers(config) -> Counter:
    """How many callbacks write each (id, property), from the app's `/_dash-dependencies`."""
    app = factory.create_app(config=replace(config, allow_model_upload=True), manager_factory=lambda c: None,
                             warmup=False)  # fmt: skip
    counts: Counter = Counter()
    for dependency in app.server.test_client().get("/_dash-dependencies").get_json():
        for part in dependency["output"].strip(".").split("..."):
            component, prop = part.split("@")[0].rsplit(".", 1)
            counts[(component, prop)] += 1
    return counts


@pytest.fixture(scope="module")
def dependencies(config) -> list[dict]:
    """The app's callbacks as `/_dash-dependencies` lists them (what the browser's renderer schedules)."""
    app = factory.create_app(config=replace(config, allow_model_upload=True), manager_factory=lambda c: None,
                             warmup=False)  # fmt: skip
    return app.server.test_client().get("/_dash-dependencies").get_json()


def test_no_chain_of_callbacks_leads_back_to_its_start(dependencies):
    """A cycle across callbacks (A writes what B reads, ..., back to A) is one Dash cannot schedule: e.g. one callback
    that both writes a background job's request and reads its result. (A callback reading its own output is allowed.)"""
    def parts(text: str) -> set[str]:
        return {part.split("@")[0] for part in text.strip(".").split("...")}

    nodes = [(parts(d["output"]), {f"{i['id']}.{i['property']}" for i in d["inputs"]}) for d in dependencies]
    after = {a: {b for b, (_, inputs) in enumerate(nodes) if b != a and outputs & inputs}
             for a, (outputs, _) in enumerate(nodes)}  # fmt: skip

    def reaches(start: int, goal: int) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            for nxt in after[node]:
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    cyclic = [sorted(nodes[a][0])[:3] for a in range(len(nodes)) if any(reaches(b, a) for b in after[a])]
    assert not cyclic, cyclic


def test_every_evented_output_and_every_event_store_has_one_writer(writers):
    for output, props in events.PROPS.items():
        for prop in props:
            assert writers[(output, prop)] == 1, (output, prop)
        for source in ids.EVENT_SOURCES[output]:
            assert writers[(ids.event(output, source), "data")] == 1, (output, source)
    assert writers[(ids.MASK_GRAPH, "figure")] == 1  # its own writer: `dashboard.callbacks.mask`
    # the question callback (`dashboard.callbacks.grids`) and the Trust section callback write these alone
    for output, prop in ((ids.FAST_GRID, "children"), (ids.RESULTS, "data"), (ids.SLOW_REQUEST, "data"),
                         (ids.TRUST_REQUEST, "data"), (ids.TRUST_SHARE, "figure"), (ids.TRUST_AGREEMENT, "figure")):
        assert writers[(output, prop)] == 1, output
    # two writers each, never a cycle: the question/section callback and the job's outcome/result callback
    for output, prop in ((ids.SLOW_GRID, "children"), (ids.TRUST_CURVES, "figure"), (ids.TRUST_SANITY, "figure"),
                         (ids.TRUST_TABLE, "children"), (ids.TRUST_FLAGS, "children")):  # fmt: skip
        assert writers[(output, prop)] == 2, output


def test_decide_mask_redraws_for_a_new_image_and_patches_the_view_otherwise():
    from dashboard.callbacks import mask

    stored = {"region": {"set": {"shapes": []}, "at": 1}, "view": {"set": {"view": {"x": [0, 4]}}, "at": 2}}
    ref = {"key": "k"}
    assert mask.decide_mask(["image", "view"], stored, ref, 0.3) == mask.MaskChange(redraw=True, image=ref, opacity=0.3)
    assert mask.decide_mask(["image"], stored, None, 0.3).image is None  # no image: the placeholder
    assert mask.decide_mask(["view"], stored, ref, 0.3) == mask.MaskChange(view={"x": [0, 4]})
    assert mask.decide_mask(["region"], stored, ref, 0.3) == mask.MaskChange(shapes=[])  # a cleared outline
    placeholder = mask.mask_output(mask.MaskChange(redraw=True), "s", None, [])
    assert mask.EMPTY_TEXT in json.dumps(placeholder)


def test_job_outcome_names_what_the_one_job_callback_handles():
    from dashboard.callbacks.jobs import job_outcome

    cancel, result = f"{ids.CANCEL}.n_clicks", f"{ids.SLOW_RESULT}.data"
    assert job_outcome([cancel], 1, {"question": {}}) == "cancel"
    assert job_outcome([cancel, result], 2, {"job_error": "x"}) == "cancel"  # the user's cancel wins
    assert job_outcome([cancel], None, None) is None  # the button's initial value, not a press
    assert job_outcome([result], 1, {"job_error": "boom"}) == "job_error"
    assert job_outcome([result], None, {"question": {}, "methods": []}) == "result"
    assert job_outcome([result], None, None) is None


def test_section_event_lets_a_new_question_reset_the_trust_section_first():
    from dashboard.callbacks.trust import section_event

    assert section_event([f"{ids.RESULTS}.data", f"{ids.TRUST_RESULT}.data"]) == "question"
    assert section_event([f"{ids.TRUST_RUN}.n_clicks"]) == "run"
    assert section_event([f"{ids.TRUST_CANCEL}.n_clicks"]) == "cancel"
    assert section_event([f"{ids.TRUST_RESULT}.data"]) is None and section_event(["."]) is None  # its own callback
