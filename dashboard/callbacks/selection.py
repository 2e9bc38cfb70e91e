"""Region callback: box / lasso selection, click, whole-class picker, the choices under the selection, and the
model's errors (an error region picked, "Explain this error": `dashboard.usecases.errors`).

Each source turns its event into a mask (`dashboard.inputs.selection`), then `handle_region` stores it, outlines it on
the mask figure, sets the target class to the region's majority class and describes the region. A bad selection shows a
message and changes nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from dash import Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from dashboard.callbacks.common import CLEAR, as_int, message_event, message_output, show
from dashboard.callbacks.events import emit, event_output
from dashboard.callbacks.upload import target_options
from dashboard.config import AppConfig
from dashboard.inputs import selection
from dashboard.state.resources import get_session_adapter, get_store, methods
from dashboard.state.store import StateStore
from dashboard.usecases import analysis, errors
from dashboard.view import figures, ids

KIND_LABELS = {"box": "Box", "lasso": "Lasso", "click": "Pixel", "class": "Class", "component": "This object",
               "objects": "Objects touched"}  # fmt: skip
N_OUTPUTS = 6


ERROR_LABEL = re.compile(r"^(false-positive|false-negative)\((\d+)\)$")


def region_label_text(label: str, class_names: Sequence[str] | None = None) -> str:
    """A region label for people: "border-inner(3) of box" -> "Inner border (3 px) of box"; an error region
    "false-positive(1)" -> "Error region (false positives of cap)" (`class_names` for the class's name)."""
    if label.startswith("border-") and " of " in label:
        ring, base = label.split(" of ", 1)
        side, width = ring[len("border-") :].rstrip(")").split("(")
        name = {"inner": "Inner border", "outer": "Outer border", "inside": "Inside"}.get(side, side)
        inner = region_label_text(base, class_names)
        return f"{name} ({width} px) of {inner[:1].lower() + inner[1:]}"
    if match := ERROR_LABEL.match(label):
        index = int(match.group(2))
        name = class_names[index] if class_names and index < len(class_names) else f"class {index}"
        return f"Error region ({match.group(1).replace('-', ' ')}s of {name})"
    return KIND_LABELS.get(label, label)


def describe_region(kind: str, mask: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> str:
    """E.g. 'Box · 340 px (2.1% of the image) · cap 82%, gills 18%' (`kind`: the region's label)."""
    pixels = int(mask.sum())
    share = 100 * pixels / max(mask.size, 1)
    parts = analysis.region_summary(labels, mask, list(class_names))
    classes = ", ".join(f"{name} {100 * n / pixels:.0f}%" for name, n in parts[:4])
    return f"{region_label_text(kind, class_names)} · {pixels} px ({share:.1f}% of the image) · {classes}"


@dataclass(frozen=True)
class RegionChoices:
    """The choices under the selection: select mode ("exact" | "objects"), border ("whole" | "inner" | "outer" |
    "inside") and border width in pixels."""

    mode: str = "exact"
    border: str = "whole"
    width: int | None = 3

    @classmethod
    def of(cls, mode: Any, border: Any, width: Any) -> RegionChoices:
        """From the controls' values (None: the default)."""
        return cls(str(mode or "exact"), str(border or "whole"), as_int(width))


def handle_region(
    store: StateStore,
    session: str,
    image_ref: Mapping[str, Any] | None,
    make_mask: Callable[[np.ndarray], tuple[np.ndarray, str]],
    class_names: Sequence[str],
    choices: RegionChoices | None = None,
    target: int | None = None,
) -> tuple[Any, ...]:
    """Outputs (region, target, target options, outline shapes, region info, class picker) + message.

    `make_mask(labels)` returns (drawn mask, tool kind) or raises SelectionError (or ValueError); `choices` then
    derive the region from it (`selection.derive_region`). The drawn mask is kept too, so changing a choice re-derives
    the region. The target is the region's majority class unless `target` is given.
    """
    if not image_ref:
        return (no_update,) * N_OUTPUTS + show("Load an image first: pick a sample or upload one.", "warning")
    choices = choices or RegionChoices()
    try:
        _, labels, _ = analysis.image_data(store, session, image_ref["key"])
        drawn, kind = make_mask(labels)
        mask, label = selection.derive_region(
            drawn, kind, labels, class_names, choices.mode, choices.border, choices.width
        )
    except (selection.SelectionError, ValueError) as err:
        return (no_update,) * N_OUTPUTS + show(str(err), "warning")
    base = None if label == kind else analysis.ingest_region(store, session, image_ref["key"], drawn, kind)["key"]
    region = analysis.ingest_region(store, session, image_ref["key"], mask, kind, label=label, base=base)
    counts = selection.class_histogram(labels, mask, len(class_names))
    target = selection.majority_class(labels, mask, len(class_names)) if target is None else int(target)
    shapes = figures.outline_shapes(analysis.region_outline(store, session, region["key"]))
    options = target_options(labels, class_names, {k: int(c) for k, c in enumerate(counts) if c})
    info = describe_region(label, mask, labels, class_names)
    return (region, target, options, shapes, info, no_update if kind == "class" else None, *CLEAR)


def _shape(image_ref: Mapping[str, Any]) -> tuple[int, int]:
    return int(image_ref["height"]), int(image_ref["width"])


def handle_selected(
    store: StateStore,
    session: str,
    image_ref: Any,
    selected: Any,
    class_names: Sequence[str],
    choices: RegionChoices | None = None,
):
    """Box or lasso `selectedData`; a cleared selection (None) changes nothing."""
    if selected is None or not image_ref:
        raise PreventUpdate
    shape = _shape(image_ref)

    def make_mask(_: np.ndarray) -> tuple[np.ndarray, str]:
        return selection.selection_to_mask(selected, shape)

    return handle_region(store, session, image_ref, make_mask, class_names, choices)


def handle_click(
    store: StateStore,
    session: str,
    image_ref: Any,
    click: Any,
    class_names: Sequence[str],
    choices: RegionChoices | None = None,
):
    """A click on the mask figure selects one pixel (or, in "whole objects" mode, the object under it)."""
    if click is None or not image_ref:
        raise PreventUpdate
    shape = _shape(image_ref)

    def make_mask(_: np.ndarray) -> tuple[np.ndarray, str]:
        return selection.click_to_mask(click, shape), "click"

    return handle_region(store, session, image_ref, make_mask, class_names, choices)


def handle_class(
    store: StateStore,
    session: str,
    image_ref: Any,
    value: Any,
    class_names: Sequence[str],
    choices: RegionChoices | None = None,
):
    """The whole-class picker selects every pixel predicted as that class."""
    index = as_int(value)
    if index is None or not image_ref:
        raise PreventUpdate

    def make_mask(labels: np.ndarray) -> tuple[np.ndarray, str]:
        return selection.class_to_mask(labels, index, class_names), "class"

    return handle_region(store, session, image_ref, make_mask, class_names, choices)


def handle_choices(
    store: StateStore,
    session: str,
    image_ref: Any,
    region_ref: Mapping[str, Any] | None,
    class_names: Sequence[str],
    choices: RegionChoices,
):
    """A changed choice under the selection re-derives the current region from the mask as drawn."""
    if not image_ref or not region_ref or region_ref.get("image") != image_ref.get("key"):
        raise PreventUpdate
    drawn = store.get(session, "region", region_ref.get("base") or region_ref["key"])
    if drawn is None:
        return (no_update,) * N_OUTPUTS + show("The selection has expired: select the region again.", "warning")
    kind = str(region_ref["kind"])
    return handle_region(
        store, session, image_ref, lambda _: (np.asarray(drawn, dtype=bool), kind), class_names, choices
    )


def handle_error_pick(
    store: StateStore,
    session: str,
    image_ref: Any,
    truth_ref: Mapping[str, Any] | None,
    choice: Any,
    class_names: Sequence[str],
    choices: RegionChoices | None = None,
):
    """An error region picked in the errors card ("false positives of cap") becomes the region (the choices under
    the selection apply to it, as to any selection); a cleared picker changes nothing."""
    if not choice or not image_ref:
        raise PreventUpdate

    def make_mask(_: np.ndarray) -> tuple[np.ndarray, str]:
        predicted, truth = errors.truth_maps(store, session, image_ref, truth_ref)
        return errors.error_region(predicted, truth, choice, class_names)

    return handle_region(store, session, image_ref, make_mask, class_names, choices)


def handle_explain_error(
    store: StateStore,
    session: str,
    image_ref: Any,
    truth_ref: Mapping[str, Any] | None,
    choice: Any,
    class_names: Sequence[str],
):
    """"Explain this error": the region is exactly the chosen error region and the target the engine's
    (`explainers.errors.error_question`: the class predicted there); its contrast goes to the contrast picker
    (`callbacks.question`). No error chosen, or no ground truth: a message."""
    if not image_ref:
        return (no_update,) * N_OUTPUTS + show("Load an image first: pick a sample or upload one.", "warning")
    try:
        predicted, truth = errors.truth_maps(store, session, image_ref, truth_ref)
        question = errors.explain_error_question(predicted, truth, choice, class_names)
    except ValueError as err:
        return (no_update,) * N_OUTPUTS + show(str(err), "warning")
    return handle_region(store, session, image_ref, lambda _: (question.region, question.label), class_names,
                         RegionChoices(), target=question.target)  # fmt: skip


def _outputs() -> list[Output]:
    return [
        event_output(ids.REGION, "region"),
        event_output(ids.TARGET, "region"),
        event_output(ids.MASK_GRAPH, "region"),
        event_output(ids.REGION_INFO, "region"),
        Output(ids.CLASS_PICKER, "value", allow_duplicate=True),
        message_output("region"),
    ]


def region_events(outputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """`handle_region`'s outputs as the region source's events (region, target, mask outline, region info, message);
    the class picker's value passes through."""
    region, target, options, shapes, info, picker, *message = outputs
    return (emit({"data": region}), emit({"value": target, "options": options}), emit({"shapes": shapes}),
            emit({"children": info}), picker, message_event(tuple(message)))  # fmt: skip


# The region callback's inputs, in the order they win when several fire together.
REGION_INPUTS = ((ids.MASK_GRAPH, "selectedData"), (ids.MASK_GRAPH, "clickData"), (ids.CLASS_PICKER, "value"),
                 (ids.EXPLAIN_ERROR, "n_clicks"), (ids.ERROR_REGION, "value"),
                 (ids.SELECT_MODE, "value"), (ids.REGION_BORDER, "value"), (ids.BORDER_WIDTH, "value"))  # fmt: skip
REGION_EVENTS = {"selectedData": "select", "clickData": "click", ids.CLASS_PICKER: "class",
                 ids.EXPLAIN_ERROR: "explain-error", ids.ERROR_REGION: "error"}  # fmt: skip


def region_event(triggered: Sequence[str]) -> str | None:
    """Which region event fired ("select", "click", "class", "explain-error", "error" or "choices"), from the
    triggered "id.prop" ids; the first of `REGION_INPUTS` wins when several fired together; None when none of them
    fired."""
    for component, prop in REGION_INPUTS:
        if f"{component}.{prop}" in triggered:
            return REGION_EVENTS.get(prop if component == ids.MASK_GRAPH else component, "choices")
    return None


def register(app: Dash, config: AppConfig) -> None:
    """Register the region callback (one callback, so the region source has one writer per event). In the embedded
    deployment it also starts the new question's fast methods (`explain.start_early`), which the question callback
    then joins."""
    from dashboard.callbacks.explain import start_early

    early = config.redis_url is None

    @app.callback(*_outputs(), *[Input(c, p) for c, p in REGION_INPUTS], State(ids.IMAGE, "data"),
                  State(ids.REGION, "data"), State(ids.TRUTH, "data"), State(ids.SESSION, "data"),
                  State(ids.METHODS, "value"), State(ids.CONTRAST, "value"), prevent_initial_call=True)  # fmt: skip
    def on_region(selected, click, value, explain_clicks, error, mode, border, width, image_ref, region_ref,
                  truth_ref, session, chosen, contrast) -> tuple[Any, ...]:  # fmt: skip
        store, adapter = get_store(config), get_session_adapter(config, session)
        names = adapter.class_names
        choices = RegionChoices.of(mode, border, width)
        event = region_event([item["prop_id"] for item in ctx.triggered])
        if event == "select":
            out = handle_selected(store, session, image_ref, selected, names, choices)
        elif event == "click":
            out = handle_click(store, session, image_ref, click, names, choices)
        elif event == "class":
            out = handle_class(store, session, image_ref, value, names, choices)
        elif event == "explain-error":
            if not explain_clicks:
                raise PreventUpdate
            out = handle_explain_error(store, session, image_ref, truth_ref, error, names)
        elif event == "error":
            out = handle_error_pick(store, session, image_ref, truth_ref, error, names, choices)
        elif event == "choices":
            out = handle_choices(store, session, image_ref, region_ref, names, choices)
        else:
            raise PreventUpdate
        if early:
            start_early(out[0], out[1], chosen, image_ref, session, contrast, adapter=adapter, store=store,
                        infos=methods())  # fmt: skip
        return region_events(out)
