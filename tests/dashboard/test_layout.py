"""The page layout (dashboard.layout): unique ids, every callback id present, controls wired from the context."""

from __future__ import annotations

import json
from dataclasses import replace

from dash import html
from dash.development.base_component import Component

from dashboard import layout
from dashboard.state.resources import MethodInfo
from dashboard.view import components, ids

METHODS = [
    MethodInfo("gradcam", "Grad-CAM", "cam", True, False, False, {}),
    MethodInfo("saliency", "Saliency", "gradient", False, False, True, {}),
    MethodInfo("shap", "SHAP", "shap", False, True, True, {}, requires_gradients=False),
]
LAYERS = [f"block{i}_conv" for i in range(20)]


def context(**extra) -> layout.PageContext:
    values = dict(
        model_name="m.keras", class_names=["background", "cap"], conv_layers=LAYERS,
        layer_shapes={name: (64, 64, 8) for name in LAYERS}, input_size=(64, 64), methods=METHODS,
        samples=[("a", "data:image/png;base64,AA"), ("b", "data:image/png;base64,AA")],
        default_methods=layout.default_methods(METHODS), session="0" * 32,
    )  # fmt: skip
    values.update(extra)
    return layout.PageContext(**values)


def all_ids(root: Component) -> list[str]:
    found = [root.id] if getattr(root, "id", None) is not None else []
    found += [c.id for c in root._traverse() if getattr(c, "id", None) is not None]
    return [json.dumps(i, sort_keys=True) if isinstance(i, dict) else i for i in found]


def test_ids_are_unique():
    found = all_ids(layout.build_layout(context()))
    assert len(found) == len(set(found))


def test_layout_has_every_singleton_id():
    found = set(all_ids(layout.build_layout(replace(context(), allow_model_upload=True))))
    singletons = {value for name, value in vars(ids).items() if name.isupper() and isinstance(value, str)}
    pattern_types = {ids.SAMPLE, ids.HEATMAP_GRAPH, ids.HEATMAP_SUBTITLE, ids.HEATMAP_NOTE, ids.HEATMAP_SCALE}
    singletons -= pattern_types
    assert singletons <= found, singletons - found


def test_skeleton_layout_needs_no_model_and_has_the_same_ids():
    skeleton = set(all_ids(layout.build_layout(layout.skeleton_context())))
    full = set(all_ids(layout.build_layout(replace(context(), allow_model_upload=True))))
    assert {i for i in full if not i.startswith("{")} == {i for i in skeleton if not i.startswith("{")}


def test_the_model_upload_control_is_shown_only_when_allowed():
    model_ids = {ids.MODEL_UPLOAD, ids.MODEL_CLASS_NAMES, ids.MODEL_STATUS}
    assert not model_ids & set(all_ids(layout.build_layout(context())))
    assert model_ids <= set(all_ids(layout.build_layout(replace(context(), allow_model_upload=True))))


def test_gallery_ids_and_heatmap_card_ids_are_pattern_ids():
    found = all_ids(layout.build_layout(context()))
    assert json.dumps(ids.sample("a"), sort_keys=True) in found
    card_ids = []
    for info in METHODS:
        parts = components.CardParts(figure={"data": [], "layout": {}}, subtitle="", note=[], ticks=["0", "1"],
                                     signed=info.signed)  # fmt: skip
        card_ids += all_ids(components.heatmap_card(info, parts, 0))
    assert len(card_ids) == len(set(card_ids)) == 4 * len(METHODS)  # graph, subtitle, note, colour-bar ticks


def test_method_checklist_defaults_to_fast_methods():
    assert layout.default_methods(METHODS) == ["gradcam", "saliency"]


def test_method_checklist_on_a_black_box_model_defaults_to_the_forward_only_methods():
    assert layout.default_methods(METHODS, gradients=False) == ["shap"]


def test_registered_shap_methods_say_whether_they_need_gradients():
    from dashboard.state.resources import methods

    infos = {info.name: info for info in methods()}
    assert not infos["shap"].requires_gradients  # Partition SHAP: forward passes only
    assert infos["deep_shap"].requires_gradients and infos["gradcam"].requires_gradients


def test_layer_slider_marks_are_short_and_end_at_the_last_layer():
    marks = layout.layer_marks(LAYERS)
    assert marks[0] == "1" and marks[len(LAYERS) - 1] == str(len(LAYERS))
    assert all(len(label) <= 3 for label in marks.values())
    assert layout.layer_marks(LAYERS[:5]) == {0: "1", 1: "2", 2: "3", 3: "4", 4: "5"}
    assert layout.layer_marks([]) == {}


def test_layer_names_with_sizes_are_in_the_page_for_the_slider_tooltip():
    root = layout.build_layout(context())
    holder = next(c for c in root._traverse() if getattr(c, "id", None) == ids.LAYER_NAMES)
    names = json.loads(getattr(holder, "data-layers"))
    assert names[0] == "block0_conv · 64\u00d764\u00d78"


def test_gallery_without_samples_says_so():
    assert isinstance(components.gallery([]), html.Div)
    assert "No sample" in components.gallery([]).children


def test_every_upload_with_a_browser_size_cap_reports_its_refusals():
    """dcc.Upload refuses a file over max_size in the browser, silently; assets/dashboard.js reports it for any upload
    inside an `upload-cap` element with the same cap, so every capped image or ground-truth upload must sit in one."""
    page = layout.build_layout(context())

    def walk(node, caps):
        if isinstance(node, Component):
            classes = (getattr(node, "className", "") or "").split()
            if "upload-cap" in classes:
                caps = [*caps, int(getattr(node, "data-max-bytes"))]
            if type(node).__name__ == "Upload" and node.id in (ids.UPLOAD, ids.TRUTH_UPLOAD):
                assert caps and caps[-1] == node.max_size, node.id
                yield node.id
            children = getattr(node, "children", None)
            for child in children if isinstance(children, list) else [children]:
                yield from walk(child, caps)

    assert set(walk(page, [])) == {ids.UPLOAD, ids.TRUTH_UPLOAD}
