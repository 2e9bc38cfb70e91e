"""The choices under the selection: whole objects and border rings, as pure helpers and as callbacks."""

from __future__ import annotations

import numpy as np
import pytest
from dash import no_update
from dash.exceptions import PreventUpdate

from dashboard.callbacks import selection as callbacks
from dashboard.callbacks.selection import RegionChoices, region_label_text
from dashboard.inputs.selection import SelectionError, derive_region
from dashboard.usecases import analysis
from explainers.regions import component_at, inner_border, objects_touched, outer_border

NAMES = ["background", "cap", "stem"]
# Two cap objects (class 1), one stem (class 2) touching the right cap, background 0.
LABELS = np.array(
    [
        [1, 1, 0, 0, 1, 1],
        [1, 1, 0, 0, 1, 2],
        [0, 0, 0, 0, 0, 2],
    ]
)


def _pixel(row, col, shape=LABELS.shape):
    mask = np.zeros(shape, bool)
    mask[row, col] = True
    return mask


def test_exact_whole_region_is_the_drawn_mask():
    drawn = _pixel(0, 0)
    region, label = derive_region(drawn, "click", LABELS, NAMES)
    np.testing.assert_array_equal(region, drawn)
    assert label == "click"


def test_whole_objects_click_selects_the_component():
    region, label = derive_region(_pixel(1, 4), "click", LABELS, NAMES, mode="objects")
    np.testing.assert_array_equal(region, component_at(LABELS, (1, 4)))
    assert label == "component" and region.sum() == 3


def test_whole_objects_click_on_background_says_so():
    with pytest.raises(SelectionError, match="background"):
        derive_region(_pixel(2, 2), "click", LABELS, NAMES, mode="objects")


def test_whole_objects_box_is_the_union_of_touched_objects():
    box = np.zeros(LABELS.shape, bool)
    box[1:3, 1:6] = True
    region, label = derive_region(box, "box", LABELS, NAMES, mode="objects")
    np.testing.assert_array_equal(region, objects_touched(LABELS, box, background=[0]))
    assert label == "objects" and not region[2, 2] and region[0, 0] and region[2, 5]


def test_border_choice_applies_after_objects():
    region, label = derive_region(_pixel(0, 0), "click", LABELS, NAMES, mode="objects", border="outer", width=1)
    expected = np.zeros(LABELS.shape, bool)
    expected[0:3, 2] = expected[2, 0:2] = True  # the ring around the left cap (rows 0-1, columns 0-1)
    np.testing.assert_array_equal(region, expected)
    assert label == "border-outer(1) of component"
    assert region_label_text(label) == "Outer border (1 px) of this object"


def test_bad_width_and_too_thin_region_are_selection_errors():
    with pytest.raises(SelectionError, match="thinner than the border width"):
        derive_region(_pixel(0, 0), "click", LABELS, NAMES, border="inside", width=1)
    with pytest.raises(SelectionError, match="border width"):
        derive_region(_pixel(0, 0), "click", LABELS, NAMES, border="inner", width=0)


# --- callbacks on the tiny model ------------------------------------------------------------------------------------


@pytest.fixture()
def image_ref(store, session, adapter, image):
    return analysis.ingest_image(store, session, adapter, image, name="test", note="32x32 PNG")


def box(x0, x1, y0, y1):
    return {"points": [], "range": {"x": [x0, x1], "y": [y0, y1]}}


def test_a_box_with_an_inner_border_stores_the_ring_and_the_drawn_box(store, session, adapter, image_ref):
    choices = RegionChoices.of("exact", "inner", 2)
    region, *_rest = callbacks.handle_selected(store, session, image_ref, box(4, 20, 6, 18), NAMES, choices)
    drawn = store.get(session, "region", region["base"])
    assert drawn.sum() == 17 * 13 and region["kind"] == "box" and region["label"] == "border-inner(2) of box"
    np.testing.assert_array_equal(store.get(session, "region", region["key"]), inner_border(drawn, 2))
    assert _rest[3].startswith("Inner border (2 px) of box ·")


def test_changing_a_choice_rederives_from_the_drawn_mask(store, session, adapter, image_ref):
    region, *_ = callbacks.handle_selected(store, session, image_ref, box(4, 20, 6, 18), NAMES)
    assert region["base"] == region["key"] and region["label"] == "box"
    ring, *_ = callbacks.handle_choices(store, session, image_ref, region, NAMES, RegionChoices.of(None, "outer", 1))
    drawn = store.get(session, "region", region["key"])
    np.testing.assert_array_equal(store.get(session, "region", ring["key"]), outer_border(drawn, 1))
    back, *_ = callbacks.handle_choices(store, session, image_ref, ring, NAMES, RegionChoices.of(None, "whole", 1))
    assert back["key"] == region["key"] and back["label"] == "box"


def test_a_choice_that_cannot_apply_keeps_the_region_and_says_why(store, session, adapter, image_ref):
    region, *_ = callbacks.handle_selected(store, session, image_ref, box(4, 5, 6, 7), NAMES)
    out = callbacks.handle_choices(store, session, image_ref, region, NAMES, RegionChoices.of(None, "inside", 3))
    assert all(v is no_update for v in out[:6]) and "thinner than the border width" in out[6]


def test_choices_without_a_region_do_nothing(store, session, adapter, image_ref):
    with pytest.raises(PreventUpdate):
        callbacks.handle_choices(store, session, image_ref, None, NAMES, RegionChoices())
