"""The dashboard's use cases over the engine and the state store, free of Dash.

- `ingest_image`: store an image, predict its label map once, keep a PNG of it for the figures.
- `ingest_region`: store a region mask and its outline.
- `compute`: run attribution methods for a question (image, region, target), reusing stored results, and store each
  result with every per-layer CAM map, so that the layer slider is a lookup and never a model call.
- `preparing_note`: what to tell a user whose image arrived while the model is still being prepared for its size.
- `waiting_text`: what a slow method's card says before its job starts, with the time it is estimated to take.

Callbacks and background jobs are thin wrappers over these functions; tests call them directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from dashboard.inputs.selection import class_histogram, outline_paths
from dashboard.state.records import LayerMapsRecord, compact, expand
from dashboard.state.store import StateStore, content_key
from dashboard.view.render import png_data_uri
from explainers.progress import Progress
from explainers.question import Question as EngineQuestion

if TYPE_CHECKING:
    from explainers import Attribution, SegmentationAdapter

EXPIRED_MESSAGE = "This image or region is no longer on the server (the session expired). Load the image again."


class ImageRef(TypedDict):
    """The IMAGE store: keys and small facts only."""

    key: str
    name: str
    note: str
    height: int
    width: int
    original_size: list[int]  # (width, height) as uploaded, before the crop and resize (ground truths must fit it)


class RegionRef(TypedDict):
    """The REGION store."""

    key: str
    image: str
    kind: str  # the tool that made it: "box", "lasso", "click", "class"
    pixels: int
    label: str  # how the region was made, the question's label: "box", "component", "border-inner(3)", ...
    base: str  # key of the mask as drawn, before "whole objects" and border choices (equal to key when none)


class Question(TypedDict, total=False):
    """What is explained, as keys: image, region, target, and optionally a contrast class and the region's label
    (the engine's `explainers.question.Question` once the arrays are read)."""

    image: str
    region: str
    target: int
    contrast: int | None  # None / absent: no contrast ("why target?"); else "why target rather than contrast?"
    label: str  # how the region was made ("box", "component", "border-inner(3) of box", ...)


def contrast_of(question: Mapping[str, Any]) -> int | None:
    """The question's contrast class, or None."""
    value = question.get("contrast")
    return None if value is None else int(value)


def question_key_parts(question: Mapping[str, Any]) -> tuple[str, str, int, int | None]:
    """(image key, region key, target, contrast): what identifies a question in the store's keys."""
    return str(question["image"]), str(question["region"]), int(question["target"]), contrast_of(question)


def engine_question(store: StateStore, session: str, question: Mapping[str, Any]) -> EngineQuestion:
    """The engine's Question (region mask, target, contrast, label) of a stored question; ValueError if it expired or
    is invalid (e.g. a contrast equal to the target)."""
    _, region = question_inputs(store, session, question)
    label = str(question.get("label") or "region")
    return EngineQuestion(region, int(question["target"]), contrast_of(question), label)


def ingest_image(
    store: StateStore,
    session: str,
    adapter: SegmentationAdapter,
    array: np.ndarray,
    *,
    name: str,
    note: str = "",
    original_size: tuple[int, int] | None = None,
) -> ImageRef:
    """Store an (H, W, 3) uint8 image with its predicted labels and PNG; returns its reference (`original_size`:
    (width, height) as uploaded, default the array's own). For a model of dynamic size, an image of a size not seen
    before starts tracing the fast pass for it in the background (`explainers.warmup`), so the first selection does
    not pay for it."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if adapter.input_size is None:
        from explainers.warmup import prepare_in_background

        prepare_in_background(adapter, array.shape[:2])
    key = store.put_array(session, "image", array)
    if store.get(session, "labels", key) is None:
        probabilities = adapter.predict(array)
        labels = np.argmax(probabilities, axis=-1).astype(np.int16)
        store.put(session, "labels", key, labels)
    if store.get(session, "png", key) is None:
        store.put(session, "png", key, png_data_uri(array))
    original = original_size or (int(array.shape[1]), int(array.shape[0]))
    return ImageRef(key=key, name=name, note=note, height=int(array.shape[0]), width=int(array.shape[1]),
                    original_size=[int(original[0]), int(original[1])])  # fmt: skip


def image_data(store: StateStore, session: str, image_key: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(image, labels, png uri) of a stored image; ValueError if it expired."""
    image = store.get(session, "image", image_key)
    labels = store.get(session, "labels", image_key)
    png = store.get(session, "png", image_key)
    if image is None or labels is None or png is None:
        raise ValueError(EXPIRED_MESSAGE)
    return image, labels, png


def ingest_region(
    store: StateStore,
    session: str,
    image_key: str,
    mask: np.ndarray,
    kind: str,
    label: str | None = None,
    base: str | None = None,
) -> RegionRef:
    """Store a region mask and its outline paths; returns its reference (`base`: the drawn mask's key, if the region
    was derived from it)."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    key = store.put_array(session, "region", mask)
    if store.get(session, "outline", key) is None:
        store.put(session, "outline", key, outline_paths(mask))
    return RegionRef(key=key, image=image_key, kind=kind, pixels=int(mask.sum()), label=label or kind, base=base or key)


def region_outline(store: StateStore, session: str, region_key: str | None) -> list[str]:
    """The stored outline paths of a region ([] if none)."""
    return list(store.get(session, "outline", region_key, default=[]) or []) if region_key else []


def region_summary(labels: np.ndarray, mask: np.ndarray, class_names: list[str]) -> list[tuple[str, int]]:
    """(class name, pixel count) of the predicted classes in the region, most frequent first."""
    counts = class_histogram(labels, mask, len(class_names))
    order = np.argsort(-counts, kind="stable")
    return [(class_names[k], int(counts[k])) for k in order if counts[k] > 0]


def result_key(question: Mapping[str, Any], method: str) -> str:
    """Key of the stored result of `method` for `question`."""
    return content_key(*question_key_parts(question), method)


def summarise(result: Attribution) -> dict[str, Any]:
    """The stored form of an Attribution, without its per-layer maps (stored separately)."""
    heatmap, scale = compact(result.heatmap)
    return {
        "method": result.method,
        "heatmap": heatmap,  # compact: float16, times heatmap_scale (`heatmap_of`)
        "heatmap_scale": scale,
        "heatmap_sum": float(np.sum(np.asarray(result.heatmap, dtype=np.float64))),  # exact, for the additivity note
        "layer": result.layer,
        "layers": list(result.per_layer) if result.per_layer else None,
        "seconds": float(result.seconds),
        "score": float(result.score),
        "baseline_score": None if result.baseline_score is None else float(result.baseline_score),
        "params": dict(result.params or {}),
    }


def share_question(store: StateStore, session: str, question: Mapping[str, Any], methods: Iterable[str] = ()) -> None:
    """Before a background job is queued: make the question's image and region, and the stored results of `methods`,
    visible to a job on another machine (copies entries written while Redis was down; a no-op on one host)."""
    for kind in ("image", "region"):
        store.share(session, kind, question[kind])
    for method in methods:
        for kind in ("result", "layers"):
            store.share(session, kind, result_key(question, method))


def stored_result(
    store: StateStore, session: str, question: Mapping[str, Any], method: str, *, from_job: bool = False
) -> dict[str, Any] | None:
    """The stored summary of `method` for `question`, or None. `from_job`: a background job (maybe on another host)
    has just stored it, so every tier of the store is asked (`StateStore.fetch`)."""
    read = store.fetch if from_job else store.get
    return read(session, "result", result_key(question, method))


def store_result(store: StateStore, session: str, question: Mapping[str, Any], result: Attribution) -> dict[str, Any]:
    """Store one Attribution (summary + its per-layer maps, in ONE write); returns the summary.

    The engine's per-layer maps stay at each layer's own resolution and are upsampled when a layer is first shown, so
    storing them costs one small write per method rather than one full-size write per layer (benchmarks P2).
    """
    key = result_key(question, result.method)
    summary = summarise(result)
    if result.per_layer:
        store.put(session, "layers", key, LayerMapsRecord.of(result.per_layer, result.heatmap.shape))
    store.put(session, "result", key, summary)
    return summary


def heatmap_of(summary: Mapping[str, Any]) -> np.ndarray:
    """The (H, W) float32 map of a stored summary (its compact form expanded)."""
    return expand(summary["heatmap"], summary.get("heatmap_scale", 1.0))


def layer_map(
    store: StateStore, session: str, question: Mapping[str, Any], summary: Mapping[str, Any], layer: str | None
) -> tuple[np.ndarray, str | None]:
    """(map, layer name) of a stored result at `layer` (CAMs), falling back to the result's own layer."""
    layers = summary.get("layers")
    if not layers or layer is None or layer not in layers:
        return heatmap_of(summary), summary.get("layer")
    stored = store.get(session, "layers", result_key(question, summary["method"]))
    if stored is None or layer not in stored:
        return heatmap_of(summary), summary.get("layer")
    return stored.at(layer), layer


def question_inputs(store: StateStore, session: str, question: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(image, region) arrays of a question; ValueError if they expired."""
    image = store.get(session, "image", question["image"])
    region = store.get(session, "region", question["region"])
    if image is None or region is None:
        raise ValueError(EXPIRED_MESSAGE)
    return image, region


def compute(
    adapter: SegmentationAdapter,
    store: StateStore,
    session: str,
    question: Mapping[str, Any],
    methods: Iterable[str],
    progress: Progress | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Summaries of `methods` for `question`, computing (in one `explain` call) and storing only the missing ones.

    Raises ValueError with the engine's message for a bad question (empty region, target out of range, ...).
    """
    from explainers import explain

    methods = list(dict.fromkeys(methods))
    found = {m: stored_result(store, session, question, m) for m in methods}
    missing = [m for m in methods if found[m] is None]
    if missing:
        image, region = question_inputs(store, session, question)
        wanted = {m: dict(params[m]) for m in missing if params and m in params}
        results = explain(adapter, image, region, int(question["target"]), methods=missing, params=wanted or None,
                          progress=progress, contrast=contrast_of(question))  # fmt: skip
        for name, result in results.items():
            found[name] = store_result(store, session, question, result)
    return {m: found[m] for m in methods}  # type: ignore[misc]


def waiting_text(adapter: SegmentationAdapter, method: str, size: tuple[int, int], base: str) -> str:
    """`base` plus the estimated time of `method` (its default parameters) on an image of `size`, from the model's
    throughput measured in this process (`explainers.estimate`): "Queued as a background job… (about 4 s)". Without
    a measurement at that size (or for a method the estimate cannot cost), `base` alone."""
    from explainers.estimate import describe_seconds, estimated_seconds

    try:
        seconds = estimated_seconds(adapter, method, None, size)
    except (ValueError, KeyError):
        return base
    text = describe_seconds(seconds)
    return f"{base} (estimated {text})" if text else base


def preparing_note(adapter: SegmentationAdapter, size: tuple[int, int]) -> str:
    """"Preparing the model for 512x512 images…" while its fast pass is still being traced for `size` (H, W) in the
    background (`explainers.warmup`); "" once it is ready (or when nothing needs preparing)."""
    from explainers.warmup import preparing

    if not preparing(adapter, size):
        return ""
    return (f"Preparing the model for {int(size[1])}x{int(size[0])} images (compiling its fast pass, once per size): "
            "the first explanation waits until it is ready.")  # fmt: skip
