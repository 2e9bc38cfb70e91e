"""Explanation callbacks: run the fast methods in the request, hand the slow ones to a background job, render the
heatmap cards, and set the heatmap opacity without recomputing anything (the layer slider: `callbacks.layers`).

The fast path answers at once: cards for the fast methods (and for slow methods already computed for the same
question), placeholders for slow methods still to compute, and a `SLOW_REQUEST` for the job in `callbacks.jobs`. The
job stores its results server-side and returns keys in `SLOW_RESULT`, which `handle_slow_result` turns into cards (the
callback is `callbacks.jobs.on_job_outcome`; the question callback is `callbacks.grids`), unless the question
changed meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from dash import ALL, Dash, Input, Output, Patch, ctx, no_update
from dash.exceptions import PreventUpdate

from dashboard import layout
from dashboard.callbacks.common import CLEAR, KEEP, Message, as_int, show
from dashboard.config import AppConfig
from dashboard.state.resources import MethodInfo
from dashboard.state.store import StateStore, content_key
from dashboard.usecases import analysis
from dashboard.usecases.early import EARLY, run_key
from dashboard.view import ids
from dashboard.view.components import (
    card_parts,
    failed_card,
    heatmap_card,
    hint,
    placeholder_card,
)
from dashboard.view.figures import OVERLAY_IMAGE
from dashboard.view.photos import photo_url
from explainers.layer_choice import classifier_layers

log = logging.getLogger(__name__)
WAITING_TEXT = "Queued as a background job…"
CONTRAST_HINT = "The “rather than” class must differ from the target class: choose another one, or clear it."


class CardContext:
    """What every card of one question shares: image, outline, layer, opacity, view."""

    def __init__(
        self,
        store: StateStore,
        session: str,
        question: Mapping[str, Any],
        conv_layers: Sequence[str],
        layer_shapes: Mapping[str, Sequence[Any]],
        layer_index: int | None,
        opacity: float | None,
        view: Mapping[str, Any] | None,
        head_layers: Collection[str] = (),
    ) -> None:
        self.store, self.session, self.question = store, session, question
        self.head_layers = head_layers
        if not store.has(session, "png", question["image"]):  # the photo the cards draw (served by URL)
            raise ValueError(analysis.EXPIRED_MESSAGE)
        self.image_uri = photo_url(session, question["image"])
        self.outline = analysis.region_outline(store, session, question["region"])
        self.layer = pick_layer(conv_layers, layer_index)
        self.layer_shapes = layer_shapes
        self.opacity = 0.8 if opacity is None else float(opacity)
        self.view = view

    def card(self, info: MethodInfo, summary: Mapping[str, Any], order: int) -> Any:
        """The heatmap card of one stored result."""
        heatmap, layer = analysis.layer_map(self.store, self.session, self.question, summary, self.layer)
        parts = card_parts(info, summary, heatmap, layer, self.layer_shapes, self.image_uri, opacity=self.opacity,
                           view=self.view, outline=self.outline, uirevision=str(self.question["image"]),
                           head_layers=self.head_layers)  # fmt: skip
        return heatmap_card(info, parts, order)


def head_layers(adapter: Any) -> set[str]:
    """The adapter's classifier-head layers (a CAM card there notes why its map looks as it does)."""
    layers = getattr(adapter, "layers", None)
    return classifier_layers(layers, adapter.num_classes) if layers else set()


def pick_layer(conv_layers: Sequence[str], layer_index: int | None) -> str | None:
    """The conv layer at the slider position (clamped), or None without conv layers."""
    if not conv_layers:
        return None
    index = len(conv_layers) - 1 if layer_index is None else int(np.clip(layer_index, 0, len(conv_layers) - 1))
    return conv_layers[index]


def job_may_run(request: Mapping[str, Any] | None, result: Mapping[str, Any] | None) -> bool:
    """Whether the last job request may still be running (it has no result or cancellation with its token yet)."""
    return bool(request) and (not result or result.get("token") != request.get("token"))


def target_message(labels: np.ndarray, region: np.ndarray | None, target: int, class_names: Sequence[str]) -> Message:
    """A note when the target class is absent from the prediction (in the image, or in the region)."""
    name = class_names[target]
    if not np.any(labels == target):
        return show(f"“{name}” is not predicted anywhere in this image. The maps show what in the image would raise "
                    f"its score in the region.", "warning")  # fmt: skip
    if region is not None and not np.any(labels[region] == target):
        return show(f"“{name}” is predicted elsewhere in the image but not in the selected region.", "info")
    return CLEAR


def compute_fast(
    adapter: Any, store: StateStore, session: str, question: Mapping[str, Any], names: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(summaries, failures) of the fast methods: one engine call, or one call per method if the batch crashes.

    ValueError (a bad question) is re-raised: it is the user's to fix, not a method failure.
    """
    if not names:
        return {}, {}
    EARLY.join(run_key(session, question, names))  # the region callback's early start of this question, if any
    try:
        return analysis.compute(adapter, store, session, question, names), {}
    except ValueError:
        raise
    except Exception:
        log.exception("batch of fast methods failed; retrying one by one")
    done: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for name in names:
        try:
            done.update(analysis.compute(adapter, store, session, question, [name]))
        except Exception as err:
            failed[name] = f"Failed: {err}"
    return done, failed


def question_of(
    image_ref: Mapping[str, Any], region_ref: Mapping[str, Any], target: int, contrast: int | None
) -> dict[str, Any]:
    """The question a region, target and contrast class ask about an image (what results are stored under)."""
    return {"image": image_ref["key"], "region": region_ref["key"], "target": target, "contrast": contrast,
            "label": str(region_ref.get("label") or region_ref.get("kind") or "region")}  # fmt: skip


def fast_method_names(
    adapter: Any, infos: Sequence[MethodInfo], chosen: Sequence[str] | None, unavailable: Collection[str] | None = None
) -> list[str]:
    """The chosen methods computed inside the request (fast, and available for this model), in `infos` order;
    `unavailable`: the chosen methods this model cannot run, when the caller already has them."""
    wanted = set(chosen or [])
    names = [info.name for info in infos if info.name in wanted and not info.slow]
    unavailable = unavailable_methods(adapter, names) if unavailable is None else unavailable
    return [name for name in names if name not in unavailable]


def start_early(
    region_ref: Any,
    target: Any,
    chosen: Sequence[str] | None,
    image_ref: Mapping[str, Any] | None,
    session: str,
    contrast: Any,
    *,
    adapter: Any,
    store: StateStore,
    infos: Sequence[MethodInfo],
) -> bool:
    """Start computing the fast methods of the question the region callback just made (`dashboard.usecases.early`),
    when it is one `handle_explain` will compute; True if started."""
    target, contrast = as_int(target), as_int(contrast)
    if not isinstance(region_ref, Mapping) or not image_ref or region_ref.get("image") != image_ref.get("key"):
        return False
    if target is None or (contrast is not None and contrast == target):
        return False
    fast = fast_method_names(adapter, infos, chosen)
    if not fast:
        return False
    question = question_of(image_ref, region_ref, target, contrast)
    EARLY.start(run_key(session, question, fast), session,
                lambda: analysis.compute(adapter, store, session, question, fast))  # fmt: skip
    return True


def unavailable_methods(adapter: Any, names: Sequence[str]) -> dict[str, str]:
    """{method: why it cannot run on this model} (a black-box model gives no gradients), for the methods' cards."""
    from explainers import registry

    reasons = {name: registry.get(name).unavailable_reason(adapter) for name in names}
    return {name: f"Unavailable for this model. {reason}" for name, reason in reasons.items() if reason}


def handle_explain(
    region_ref: Mapping[str, Any] | None,
    target: Any,
    chosen: Sequence[str] | None,
    image_ref: Mapping[str, Any] | None,
    session: str,
    layer_index: int | None,
    opacity: float | None,
    view: Mapping[str, Any] | None,
    previous_request: Any,
    *,
    adapter: Any,
    store: StateStore,
    infos: Sequence[MethodInfo],
    previous_result: Any = None,
    contrast: Any = None,
) -> tuple[Any, ...]:
    """Outputs (fast grid, slow grid, slow request, results) + message for a new question or method choice.

    `contrast`: the "rather than" class (None: no contrast); one equal to the target is refused with a message.

    A new request replaces (and so cancels) a job still running; when no job runs the request is left alone, since
    writing it would start a job only to do nothing.
    """
    clear_slow = None if job_may_run(previous_request, previous_result) else no_update
    if not image_ref or not region_ref or region_ref.get("image") != image_ref.get("key"):
        return (hint(layout.SELECT_HINT), [], clear_slow, None, *KEEP)  # keeps e.g. the note of a new upload
    target = as_int(target)
    if target is None:
        return (hint("Choose a target class."), [], clear_slow, None, *CLEAR)
    chosen_set = set(chosen or [])
    selected = [(order, info) for order, info in enumerate(infos) if info.name in chosen_set]
    if not selected:
        return (hint("Tick at least one method."), [], clear_slow, None, *CLEAR)
    contrast = as_int(contrast)
    if contrast is not None and contrast == target:
        return (hint(CONTRAST_HINT), [], clear_slow, None, *show(CONTRAST_HINT, "warning"))
    question = question_of(image_ref, region_ref, target, contrast)
    unavailable = unavailable_methods(adapter, [info.name for _, info in selected])
    try:
        _, labels, _ = analysis.image_data(store, session, question["image"])
        size = labels.shape[:2]
        region = store.get(session, "region", question["region"])
        fast = fast_method_names(adapter, infos, chosen, unavailable)
        summaries, failed = compute_fast(adapter, store, session, question, fast)
        failed.update(unavailable)
        cards = CardContext(store, session, question, adapter.conv_layers, adapter.layer_shapes, layer_index,
                            opacity, view, head_layers(adapter))  # fmt: skip
    except ValueError as err:
        return (no_update, no_update, no_update, no_update, *show(str(err), "warning"))
    fast_cards, slow_cards, missing = [], [], []
    for order, info in selected:
        if info.name in failed:
            fast_cards.append(failed_card(info, failed[info.name], order))
            continue
        summary = summaries.get(info.name) or analysis.stored_result(store, session, question, info.name)
        if summary is not None:
            fast_cards.append(cards.card(info, summary, order))
        else:
            missing.append(info.name)
            waiting = analysis.waiting_text(adapter, info.name, size, WAITING_TEXT)
            slow_cards.append(placeholder_card(info, waiting, order))
    results = {"question": question, "methods": [info.name for _, info in selected]}
    if missing:
        analysis.share_question(store, session, question)  # a job on another machine reads them
        request = {"session": session, "question": question, "methods": missing,
                   "token": content_key(question, missing, time.time())}  # fmt: skip
    else:
        request = clear_slow
    message = target_message(labels, region, target, adapter.class_names)
    return (fast_cards, slow_cards, request, results, *message)


def handle_slow_result(
    slow_result: Mapping[str, Any] | None,
    results: Mapping[str, Any] | None,
    session: str,
    layer_index: int | None,
    opacity: float | None,
    view: Mapping[str, Any] | None,
    *,
    adapter: Any,
    store: StateStore,
    infos: Sequence[MethodInfo],
) -> tuple[Any, ...]:
    """(slow grid) + message for a finished job; a stale result (the question changed) is ignored."""
    if not slow_result or not slow_result.get("question") or not results:
        raise PreventUpdate  # nothing, or a cancellation marker
    if slow_result["question"] != results.get("question"):
        raise PreventUpdate  # stale: the question changed while the job ran
    question = slow_result["question"]
    order_of = {info.name: (order, info) for order, info in enumerate(infos)}
    try:
        cards = CardContext(store, session, question, adapter.conv_layers, adapter.layer_shapes, layer_index,
                            opacity, view, head_layers(adapter))  # fmt: skip
    except ValueError as err:
        return ([], *show(str(err), "warning"))
    children = []
    failures = slow_result.get("failed") or {}
    for name in slow_result.get("methods", []):
        if name not in order_of or name not in results.get("methods", []):
            continue
        order, info = order_of[name]
        summary = analysis.stored_result(store, session, question, name, from_job=True)
        if summary is None:
            children.append(failed_card(info, failures.get(name, "Failed: no result."), order))
        else:
            children.append(cards.card(info, summary, order))
    return (children,) + (show("; ".join(failures.values()), "danger") if failures else CLEAR)


def opacity_patches(opacity: float | None, graph_methods: Sequence[str]) -> list[Any]:
    """Patches setting the overlay opacity of every heatmap card."""
    if opacity is None:
        raise PreventUpdate
    patches = []
    for _ in graph_methods:
        patch = Patch()
        patch["layout"]["images"][OVERLAY_IMAGE]["opacity"] = float(opacity)
        patches.append(patch)
    return patches


def methods_of(outputs: Any) -> list[str]:
    """The methods of a pattern-matching output's cards (`ctx.outputs_list` of one ALL output)."""
    return [item["id"]["method"] for item in outputs]


def register(app: Dash, config: AppConfig) -> None:
    """Register the explanation callbacks."""

    @app.callback(
        Output(ids.heatmap_graph(ALL), "figure", allow_duplicate=True),  # type: ignore[arg-type]
        Input(ids.HEATMAP_OPACITY, "value"),
        prevent_initial_call=True,
    )
    def on_heatmap_opacity(opacity):
        return opacity_patches(opacity, methods_of(ctx.outputs_list))
