"""The Trust section's use cases over the engine and the state store, free of Dash: which explanation to believe.

- `quick_metrics` (cheap, in the request, no model call): the share of each stored map's positive attribution
  inside the region, and the method-agreement matrix (Spearman between the maps; `explainers.agreement`).
- `compute_faithfulness` (a background job): deletion / insertion curves with the random-order baseline and their
  AUCs (Petsiuk et al. 2018, `explainers.faithfulness`) for the stored maps, at the CAM layer chosen on the slider.
- `compute_sanity` (a background job): cascading model randomization (Adebayo et al. 2018, `explainers.sanity`) of
  the chosen methods, with each method's stored (resolved) parameters.
- `export_zip`: the explanation of the current question as a zip (`dashboard.usecases.export`).

Metric results are stored server-side (kinds "faith" and "sanity") as plain dicts of lists and floats (what
`dashboard.trust.figures` draws), keyed by the question, the methods and the options, so a repeated run is a lookup.
The dashboard never computes gradients: every number here comes from the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from dashboard.state.store import StateStore, content_key
from dashboard.usecases import analysis, export

if TYPE_CHECKING:
    from explainers import SegmentationAdapter

DEFAULT_OPTIONS: dict[str, Any] = {"steps": 20, "baseline": "blur", "seed": 0}
NO_MAPS_MESSAGE = "No computed map to measure yet: select a region and wait for the heatmaps of the chosen methods."


def stored_maps(
    store: StateStore, session: str, question: Mapping[str, Any], methods: Iterable[str], layer: str | None
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]], list[str]]:
    """(maps, summaries, missing): each stored map of `methods` for `question` as the cards show it (CAMs at `layer`),
    their stored summaries, and the methods without a stored result (not computed yet, or failed)."""
    maps: dict[str, np.ndarray] = {}
    summaries: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for method in dict.fromkeys(methods):
        summary = analysis.stored_result(store, session, question, method)
        if summary is None:
            missing.append(method)
            continue
        heatmap, used = analysis.layer_map(store, session, question, summary, layer)
        maps[method] = np.asarray(heatmap, dtype=np.float32)
        summaries[method] = {**summary, "shown_layer": used}
    return maps, summaries, missing


def plain_curve(curve: Any) -> dict[str, Any]:
    """A `faithfulness.Curve` as a dict of lists and floats."""
    plain = {"fractions": [float(v) for v in curve.fractions], "scores": [float(v) for v in curve.scores],
             "auc": float(curve.auc)}  # fmt: skip
    if getattr(curve, "normalized_auc", None) is not None:
        plain["normalized_auc"] = float(curve.normalized_auc)
    return plain


def plain_faithfulness(results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{method: Faithfulness} as {method: {"deletion": curve, "insertion", "random_deletion", "random_insertion",
    "inside_share"}} of plain values."""
    plain = {}
    for method, result in results.items():
        plain[method] = {kind: plain_curve(getattr(result, kind)) for kind in export.CURVE_KINDS}
        plain[method]["inside_share"] = float(result.inside_share)
    return plain


def _per_depth(values: Mapping[str, Any] | None) -> dict[str, list[float]]:
    return {m: [float(v) for v in np.ravel(series)] for m, series in (values or {}).items()}


def plain_sanity(result: Any) -> dict[str, Any]:
    """A `sanity.SanityResult` as a dict of lists, floats and bools (Spearman of the raw maps, of |map| when the
    engine reports it, SSIM, flags, threshold)."""
    return {
        "depths": [str(d) for d in result.depths],
        "spearman": _per_depth(result.spearman),
        "spearman_abs": _per_depth(getattr(result, "spearman_abs", None)),
        "ssim": _per_depth(result.ssim),
        "flagged": {m: bool(v) for m, v in result.flagged.items()},
        "threshold": float(result.threshold),
    }


def sanity_maps(result: Any) -> dict[str, np.ndarray]:
    """{method: (depths + 1, H, W) float32}: the trained model's map, then the map after each randomization step."""
    return {m: np.asarray(stack, dtype=np.float32) for m, stack in (getattr(result, "maps", None) or {}).items()}


def inside_shares(maps: Mapping[str, np.ndarray], region: np.ndarray) -> dict[str, float]:
    """Share of each map's positive attribution inside the region (NaN for a map with no positive value)."""
    from explainers.faithfulness import region_share

    return {method: region_share(heatmap, region) for method, heatmap in maps.items()}


def agreement(maps: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """{"names", "matrix"}: Spearman rank correlation between every pair of maps, over the whole image."""
    from explainers.agreement import agreement_matrix

    names, matrix = agreement_matrix(maps)
    return {"names": list(names), "matrix": np.asarray(matrix, dtype=np.float64).tolist()}


def quick_metrics(
    store: StateStore, session: str, question: Mapping[str, Any], methods: Iterable[str], layer: str | None
) -> dict[str, Any]:
    """Inside shares and the agreement matrix of the stored maps (no model call); ValueError without any map."""
    _, region = analysis.question_inputs(store, session, question)
    maps, _, missing = stored_maps(store, session, question, methods, layer)
    if not maps:
        raise ValueError(NO_MAPS_MESSAGE)
    return {
        "methods": list(maps),
        "missing": missing,
        "shares": inside_shares(maps, region),
        "region_fraction": float(np.mean(region)),
        "agreement": agreement(maps) if len(maps) >= 2 else None,
    }


def options_of(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The metric options with defaults filled in (steps, baseline, seed)."""
    merged = {**DEFAULT_OPTIONS, **{k: v for k, v in (options or {}).items() if k in DEFAULT_OPTIONS}}
    merged["steps"] = int(merged["steps"])
    merged["seed"] = int(merged["seed"])
    return merged


def faithfulness_key(question: Mapping[str, Any], methods: Sequence[str], layer: str | None, options: Mapping) -> str:
    """Store key of the faithfulness results of `methods` (maps at `layer`) for `question` with `options`."""
    opts = options_of(options)
    return content_key("faith", *analysis.question_key_parts(question), tuple(methods), layer,
                       opts["steps"], opts["baseline"], opts["seed"])  # fmt: skip


def sanity_key(question: Mapping[str, Any], methods: Sequence[str], params: Mapping[str, Any], options: Mapping) -> str:
    """Store key of the sanity-check results of `methods` (with `params`) for `question`."""
    opts = options_of(options)
    return content_key("sanity", *analysis.question_key_parts(question), tuple(methods),
                       sorted((m, sorted(p.items())) for m, p in params.items()), opts["seed"])  # fmt: skip


def compute_faithfulness(
    adapter: SegmentationAdapter,
    store: StateStore,
    session: str,
    question: Mapping[str, Any],
    methods: Sequence[str],
    layer: str | None,
    options: Mapping[str, Any] | None = None,
    progress: Callable[[float], None] | None = None,
) -> str:
    """Deletion/insertion curves of the stored maps of `methods`; stores them and returns their key (a lookup if they
    were computed before). ValueError without any stored map, or with the engine's message for bad input."""
    from explainers.faithfulness import faithfulness

    image, region = analysis.question_inputs(store, session, question)
    maps, summaries, _ = stored_maps(store, session, question, methods, layer)
    if not maps:
        raise ValueError(NO_MAPS_MESSAGE)
    opts = options_of(options)
    key = faithfulness_key(question, list(maps), layer, opts)
    if store.has(session, "faith", key):
        return key
    results = faithfulness(adapter, image, region, int(question["target"]), maps, steps=opts["steps"],
                           baseline=opts["baseline"], seed=opts["seed"], progress=progress,
                           contrast=analysis.contrast_of(question))  # fmt: skip
    layers = {m: s.get("shown_layer") for m, s in summaries.items()}
    store.put(session, "faith", key, {"methods": plain_faithfulness(results), "layers": layers, "options": opts})
    return key


def compute_sanity(
    adapter: SegmentationAdapter,
    store: StateStore,
    session: str,
    question: Mapping[str, Any],
    methods: Sequence[str],
    layer: str | None = None,
    options: Mapping[str, Any] | None = None,
    progress: Callable[[float], None] | None = None,
) -> str:
    """Cascading randomization of the methods with a stored result (each with its stored parameters; CAMs at
    `layer`, as measured by the faithfulness curves); stores the result and returns its key (a lookup if computed
    before)."""
    from explainers.sanity import cascading_randomization

    image, region = analysis.question_inputs(store, session, question)
    _, summaries, _ = stored_maps(store, session, question, methods, None)
    if not summaries:
        raise ValueError(NO_MAPS_MESSAGE)
    names = list(summaries)
    params = {m: dict(summaries[m].get("params") or {}) for m in names}
    for m in names:
        if summaries[m].get("layers") and layer is not None:
            params[m]["layer"] = layer
    opts = options_of(options)
    key = sanity_key(question, names, params, opts)
    if store.has(session, "sanity", key):
        return key
    result = cascading_randomization(adapter, image, region, int(question["target"]), names, params=params,
                                     seed=opts["seed"], progress=progress, contrast=analysis.contrast_of(question),
                                     reuse=True)  # fmt: skip  (one clone per model and seed, kept with the adapter)
    store.put(session, "sanity", key, {**plain_sanity(result), "options": opts, "maps": sanity_maps(result)})
    return key


def _clean(value: Any) -> Any:
    """Settings values JSON can hold: NaN / inf floats become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def export_zip(store: StateStore, session: str, question: Mapping[str, Any], methods: Sequence[str],
               layer: str | None, **options: Any) -> tuple[bytes, str]:  # fmt: skip
    """(zip bytes, file name): `export_members`' zip, joined (the app streams it instead, `dashboard.trust.export`)."""
    members, filename = export_members(store, session, question, methods, layer, **options)
    return b"".join(export.stream_zip(members)), filename


def export_members(
    store: StateStore,
    session: str,
    question: Mapping[str, Any],
    methods: Sequence[str],
    layer: str | None,
    *,
    signed: Mapping[str, bool],
    labels: Mapping[str, str],
    class_names: Sequence[str],
    model: str,
    image_name: str = "image",
    opacity: float = 0.8,
    faith_key: str | None = None,
    sanity_key: str | None = None,
) -> tuple[Iterator[tuple[str, bytes | str]], str]:
    """(zip members, file name) of the current explanation: image, region, settings, the heatmaps as the cards render
    them (CAMs at `layer`), every raw map including every CAM layer at its own resolution (and, after a sanity check,
    `sanity/<method>`: the map at each randomization depth, trained first), and the metric tables computed so far.

    ValueError (before any member is made) if the image or region expired, or when no map is stored yet.
    """
    image, region = analysis.question_inputs(store, session, question)
    maps, summaries, missing = stored_maps(store, session, question, methods, layer)
    if not maps:
        raise ValueError(NO_MAPS_MESSAGE)
    per_layer = stored_layer_maps(store, session, question, summaries)
    flat = export.flatten_maps(maps, per_layer)
    tables, metrics, sanity_stacks = metric_tables(store, session, maps, faith_key, sanity_key)
    flat.update(sanity_stacks)
    settings = export_settings(store, session, question, summaries, missing, metrics, image, region, layer=layer,
                               labels=labels, class_names=class_names, model=model, image_name=image_name)  # fmt: skip
    settings["layer_maps"] = {
        "resolution": "each conv layer's own (h, w); bring one to the image with a bilinear resize, half-pixel "
                      "centres (the app's upsampling)",
        "shapes": {m: {name: list(a.shape) for name, a in layers.items()} for m, layers in per_layer.items()},
    }  # fmt: skip
    overlays = {m: export.overlay_rgba(heatmap, bool(signed.get(m, True))) for m, heatmap in maps.items()}
    members = export.zip_members(image=image, region=region, settings=_clean(settings), maps=flat, overlays=overlays,
                                 opacity=opacity, tables=tables)  # fmt: skip
    class_name = settings["class"]["name"]
    return members, f"segxplain_{export.safe_name(image_name)}_{export.safe_name(class_name)}.zip"


def stored_layer_maps(
    store: StateStore, session: str, question: Mapping[str, Any], summaries: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, np.ndarray]]:
    """{CAM method: {layer: (h, w) map}} of every stored CAM result, every conv layer at its own resolution."""
    per_layer: dict[str, dict[str, np.ndarray]] = {}
    for method, summary in summaries.items():
        if summary.get("layers"):
            stored = store.get(session, "layers", analysis.result_key(question, method))
            per_layer[method] = {name: stored.native_map(name) for name in stored.layers} if stored else {}
    return per_layer


def metric_tables(
    store: StateStore, session: str, maps: Mapping[str, np.ndarray], faith_key: str | None, sanity_key: str | None
) -> tuple[dict[str, str], dict[str, Any], dict[str, np.ndarray]]:
    """(CSV tables by file name, what settings.json records of the metrics, the sanity check's per-depth maps by npz
    key) for the metrics computed so far (`faith_key`, `sanity_key`: the stored results, if any) and the agreement
    matrix of `maps`."""
    tables: dict[str, str] = {}
    metrics: dict[str, Any] = {}
    stacks: dict[str, np.ndarray] = {}
    faith = store.get(session, "faith", faith_key) if faith_key else None
    if faith:
        tables["deletion_insertion.csv"] = export.curves_csv(faith["methods"])
        tables["auc.csv"] = export.auc_csv(faith["methods"])
        metrics["faithfulness"] = {"options": faith.get("options"), "layers": faith.get("layers")}
    sanity = store.get(session, "sanity", sanity_key) if sanity_key else None
    if sanity:
        tables["sanity.csv"] = export.sanity_csv(sanity)
        stacks = {f"sanity/{m}": stack for m, stack in (sanity.get("maps") or {}).items()}
        metrics["sanity"] = {"options": sanity.get("options"), "threshold": sanity.get("threshold"),
                             "flagged": sanity.get("flagged")}  # fmt: skip
    if len(maps) >= 2:
        matrix = agreement(maps)
        tables["agreement.csv"] = export.agreement_csv(matrix["names"], matrix["matrix"])
    return tables, metrics, stacks


def export_settings(
    store: StateStore,
    session: str,
    question: Mapping[str, Any],
    summaries: Mapping[str, Mapping[str, Any]],
    missing: Sequence[str],
    metrics: Mapping[str, Any],
    image: np.ndarray,
    region: np.ndarray,
    *,
    layer: str | None,
    labels: Mapping[str, str],
    class_names: Sequence[str],
    model: str,
    image_name: str,
) -> dict[str, Any]:
    """settings.json: the model, the image, the question in full (so the result can be reproduced), the layer, each
    method's resolved parameters, score and time, what was not computed, the metrics' options, package versions."""
    target = int(question["target"])
    return {
        "model": model,
        "image": {"name": image_name, "height": int(image.shape[0]), "width": int(image.shape[1])},
        "region": {"pixels": int(region.sum())},
        "class": {"name": class_names[target] if 0 <= target < len(class_names) else str(target), "index": target},
        "question": analysis.engine_question(store, session, question).to_dict(class_names),
        "layer": layer,
        "methods": {
            m: {"label": labels.get(m, m), "params": s.get("params") or {}, "layer": s.get("shown_layer"),
                "score": s.get("score"), "baseline_score": s.get("baseline_score"), "seconds": s.get("seconds")}
            for m, s in summaries.items()
        },
        "not_computed": list(missing),
        "metrics": dict(metrics),
        "packages": export.package_versions(),
        "exported_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
