"""Batch report: which attribution method to trust, measured over many images and regions.

    python -m explainers.report --out DIR [--images DIR] [--methods ...] [--regions gt|class] [--limit N] [--shap]

For every (image, region, target class) it runs the chosen methods (`explainers.explain`), then the metrics of this
package: deletion and insertion curves against random order (`explainers.faithfulness`, Petsiuk et al. 2018), the
share of positive attribution inside the region, cascading model randomization (`explainers.sanity`, Adebayo et al.
2018) and the rank agreement between methods (`explainers.agreement`). It writes to DIR:

- ``report.md``: a per-method table (mean ± sd over regions), the agreement matrix, and how it was made;
- ``results.json``: the settings, per-region values and curves, and the summary;
- ``results.csv``: one row per (region, method).

Default input (no ``--images``): the demo model on the held-out procedural mushrooms (``models.mushrooms.EVAL_SEED``,
never used in training), one region per (image, ground-truth part class present), target = that class; ``--regions
class`` uses the predicted parts instead. With ``--images DIR``: every image in the folder (centre-cropped and resized
to the model's input size if it has one), one region per predicted class. ``--limit`` caps the number of regions;
regions smaller than ``--min-pixels`` are skipped. This module never imports Dash.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from explainers import registry
from explainers.adapter import SegmentationAdapter
from explainers.agreement import agreement_matrix
from explainers.explain import explain
from explainers.faithfulness import faithfulness
from explainers.sanity import DEFAULT_THRESHOLD, RandomizationCascade

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_LIMIT = 32
DEFAULT_MIN_PIXELS = 32


@dataclass(frozen=True)
class Case:
    """One question: explain S_target(image; region)."""

    image_id: str
    image: np.ndarray
    region: np.ndarray
    target: int
    source: str  # "ground truth" | "predicted"


def default_methods() -> list[str]:
    """The fast methods (not `slow` in the registry) plus Integrated Gradients."""
    fast = [name for name in registry.available() if not registry.get(name).slow]
    return [*fast, "integrated_gradients"]


# ------------------------------------------------------------------------------------------------------------ inputs
def _regions(
    adapter: SegmentationAdapter, image: np.ndarray, labels: np.ndarray, ignore: set[int], min_pixels: int
) -> Iterator[tuple[np.ndarray, int]]:
    for target in range(adapter.num_classes):
        region = labels == target
        if target not in ignore and region.sum() >= min_pixels:
            yield region, target


def procedural_cases(
    adapter: SegmentationAdapter, regions: str, limit: int, min_pixels: int, seed: int | None = None
) -> Iterator[Case]:
    """Held-out procedural mushrooms, image i drawn from default_rng([seed, i]); background is never a region."""
    from models.mushrooms import BACKGROUND, EVAL_SEED, generate_sample

    seed = EVAL_SEED if seed is None else seed
    size = adapter.input_size or (128, 128)
    count, index = 0, 0
    while count < limit:
        image, truth = generate_sample(np.random.default_rng([seed, index]), size=size[0])
        labels = truth if regions == "gt" else adapter.predict(image).argmax(-1)
        source = "ground truth" if regions == "gt" else "predicted"
        for region, target in _regions(adapter, image, labels, {BACKGROUND}, min_pixels):
            if count >= limit:
                return
            yield Case(f"eval-{seed}-{index}", image, region, target, source)
            count += 1
        index += 1


def load_image(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    """An RGB uint8 array; centre-cropped and resized to `size` (H, W) when the model has a fixed input size."""
    try:
        with Image.open(path) as opened:
            picture = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, ValueError) as error:
        raise ValueError(f"{path.name} is not a readable image: {error}") from error
    if size is not None and picture.size != (size[1], size[0]):
        picture = ImageOps.fit(picture, (size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(picture, dtype=np.uint8)


def folder_cases(
    adapter: SegmentationAdapter, folder: Path, limit: int, min_pixels: int, ignore: set[int]
) -> Iterator[Case]:
    """Every image of `folder` (sorted by name), one region per predicted class."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {folder}.")
    count = 0
    for path in paths:
        image = load_image(path, adapter.input_size)
        labels = adapter.predict(image).argmax(-1)
        for region, target in _regions(adapter, image, labels, ignore, min_pixels):
            if count >= limit:
                return
            yield Case(path.name, image, region, target, "predicted")
            count += 1


# ----------------------------------------------------------------------------------------------------------- running
def evaluate_case(
    adapter: SegmentationAdapter,
    cascade: RandomizationCascade | None,
    case: Case,
    methods: Sequence[str],
    params: dict[str, dict[str, Any]],
    steps: int,
    baseline: str,
    sanity_methods: Sequence[str],
) -> dict[str, Any]:
    """Every metric for one case, as plain JSON-able values."""
    start = time.perf_counter()
    attributions = explain(adapter, case.image, case.region, case.target, methods=methods, params=params)
    faith = faithfulness(adapter, case.image, case.region, case.target, attributions, steps=steps, baseline=baseline)
    names, matrix = agreement_matrix({name: a.heatmap for name, a in attributions.items()})
    sanity = None
    if cascade is not None and sanity_methods:
        sanity_params = {name: params[name] for name in sanity_methods if name in params}
        sanity = cascade.run(case.image, case.region, case.target, sanity_methods, params=sanity_params)
    any_faith = next(iter(faith.values()))
    per_method: dict[str, dict[str, Any]] = {}
    for name in methods:
        f = faith[name]
        per_method[name] = {
            "seconds": attributions[name].seconds,
            "completeness_error": attributions[name].diagnostics.get("completeness_error"),
            "deletion_auc": f.deletion.auc,
            "insertion_auc": f.insertion.auc,
            "deletion_auc_norm": f.deletion.normalized_auc,
            "insertion_auc_norm": f.insertion.normalized_auc,
            "deletion_gap": f.deletion_gap,
            "insertion_gap": f.insertion_gap,
            "inside_share": f.inside_share,
            "deletion_scores": f.deletion.scores.tolist(),
            "insertion_scores": f.insertion.scores.tolist(),
        }
        if sanity is not None and name in sanity.spearman:
            per_method[name].update(
                sanity_spearman=sanity.spearman[name].tolist(),
                sanity_spearman_abs=sanity.spearman_abs[name].tolist(),
                sanity_ssim=sanity.ssim[name].tolist(),
                sanity_flagged=sanity.flagged[name],
            )
    return {
        "image": case.image_id,
        "target": case.target,
        "class": adapter.class_names[case.target],
        "region_source": case.source,
        "region_pixels": int(case.region.sum()),
        "image_score": any_faith.deletion.image_score,
        "baseline_score": any_faith.deletion.baseline_score,
        "random_deletion_auc_norm": any_faith.random_deletion.normalized_auc,
        "random_insertion_auc_norm": any_faith.random_insertion.normalized_auc,
        "fractions": any_faith.deletion.fractions.tolist(),
        "random_deletion_scores": any_faith.random_deletion.scores.tolist(),
        "random_insertion_scores": any_faith.random_insertion.scores.tolist(),
        "agreement": {"methods": names, "matrix": matrix.tolist()},
        "sanity_depths": sanity.depths if sanity is not None else [],
        "methods": per_method,
        "seconds": time.perf_counter() - start,
    }


def _stats(values: Sequence[float]) -> dict[str, float]:
    array = np.asarray([v for v in values if v is not None], dtype=np.float64)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return {"mean": float("nan"), "sd": float("nan"), "n": 0}
    sd = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return {"mean": float(finite.mean()), "sd": sd, "n": int(finite.size)}


def summarise(cases: list[dict[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    """Per-method mean/sd (NaN values left out, their count reported) and the mean agreement matrix."""
    summary: dict[str, Any] = {"methods": {}}
    for name in methods:
        rows = [case["methods"][name] for case in cases]
        entry = {
            key: _stats([row[key] for row in rows])
            for key in (
                "deletion_auc_norm",
                "insertion_auc_norm",
                "deletion_gap",
                "insertion_gap",
                "inside_share",
                "deletion_auc",
                "insertion_auc",
                "seconds",
            )
        }
        entry["beats_random_deletion"] = _stats(
            [float(r["deletion_gap"] > 0) for r in rows if np.isfinite(r["deletion_gap"])]
        )
        entry["beats_random_insertion"] = _stats(
            [float(r["insertion_gap"] > 0) for r in rows if np.isfinite(r["insertion_gap"])]
        )
        entry["median_seconds"] = float(np.median([row["seconds"] for row in rows]))
        errors = [row["completeness_error"] for row in rows if row.get("completeness_error") is not None]
        if errors:
            entry["completeness_error"] = _stats(errors)
        sane = [r for r in rows if "sanity_spearman" in r]
        if sane:
            entry["sanity_deepest_spearman"] = _stats([r["sanity_spearman"][-1] for r in sane])
            entry["sanity_deepest_spearman_abs"] = _stats([r["sanity_spearman_abs"][-1] for r in sane])
            entry["sanity_first_spearman"] = _stats([r["sanity_spearman"][0] for r in sane])
            entry["sanity_deepest_ssim"] = _stats([r["sanity_ssim"][-1] for r in sane])
            entry["sanity_flagged_rate"] = _stats([float(r["sanity_flagged"]) for r in sane])
        summary["methods"][name] = entry
    summary["random"] = {
        "deletion_auc_norm": _stats([case["random_deletion_auc_norm"] for case in cases]),
        "insertion_auc_norm": _stats([case["random_insertion_auc_norm"] for case in cases]),
    }
    matrices = np.array([case["agreement"]["matrix"] for case in cases], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(matrices).sum(axis=0)
        mean = np.where(counts > 0, np.nansum(matrices, axis=0) / np.maximum(counts, 1), np.nan)
    summary["agreement"] = {"methods": list(methods), "mean": mean.tolist(), "n": counts.tolist()}
    depths = next((case["sanity_depths"] for case in cases if case["sanity_depths"]), [])
    if depths:
        summary["sanity_depths"] = depths
        curves = {}
        for name in methods:
            rows = [c["methods"][name]["sanity_spearman"] for c in cases if "sanity_spearman" in c["methods"][name]]
            if rows:
                curves[name] = [_stats([row[d] for row in rows])["mean"] for d in range(len(depths))]
        summary["sanity_curve"] = curves
    return summary


# ----------------------------------------------------------------------------------------------------------- writing
def _fmt(stat: dict[str, float] | None, digits: int = 3) -> str:
    if stat is None or stat["n"] == 0:
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['sd']:.{digits}f}"


def _pct(stat: dict[str, float] | None) -> str:
    if stat is None or stat["n"] == 0:
        return "n/a"
    return f"{100 * stat['mean']:.0f}%"


def markdown_report(settings: dict[str, Any], summary: dict[str, Any], cases: list[dict[str, Any]]) -> str:
    """The report as Markdown."""
    methods = list(summary["methods"])
    labels = {name: registry.get(name).label for name in methods}
    lines = [
        "# Which attribution method to trust: batch report",
        "",
        f"Model: `{settings['model']}`. {settings['input']}. {len(cases)} regions "
        f"({len({c['image'] for c in cases})} images), target = the region's class. "
        f"Made by `explainers/report.py` in {settings['seconds']:.0f} s wall time ({settings['cpu_seconds']:.0f} s "
        f"of CPU time) on {settings['machine']}.",
        "",
        "Command:",
        "",
        f"    {settings['command']}",
        "",
        *_highlights(summary, labels),
        "## Faithfulness and sanity per method",
        "",
        "Mean ± sd over regions. Deletion/insertion AUCs are normalised per region (image score = 1, fully removed "
        f"= 0: blurred baseline `{settings['baseline']}`, {settings['steps']} steps), so they average across images: "
        "deletion lower is better, insertion higher is better. *Gap* = margin over random pixel order on the same "
        "region (positive = better than random; *beats random* = share of regions with a positive gap). *Inside* = "
        "share of the positive attribution inside the region. *Sanity &rho;* = Spearman rank correlation of the raw "
        "map with the trained network's map after the whole network is randomized, logits to input (Adebayo et al. "
        "2018; near 0 is good); *flagged* = share of regions where it stays ≥ "
        f"{settings['sanity_threshold']} (the map ignores what the network learned).",
        "",
        "| method | deletion AUC ↓ | insertion AUC ↑ | deletion gap ↑ | insertion gap ↑ | beats random (del / ins) "
        "| inside share | sanity &rho; (deepest) | flagged | median s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in methods:
        e = summary["methods"][name]
        lines.append(
            f"| {labels[name]} (`{name}`) | {_fmt(e['deletion_auc_norm'])} | {_fmt(e['insertion_auc_norm'])} "
            f"| {_fmt(e['deletion_gap'])} | {_fmt(e['insertion_gap'])} "
            f"| {_pct(e['beats_random_deletion'])} / {_pct(e['beats_random_insertion'])} "
            f"| {_fmt(e['inside_share'], 2)} | {_fmt(e.get('sanity_deepest_spearman'), 2)} "
            f"| {_pct(e.get('sanity_flagged_rate'))} | {e['median_seconds']:.2f} |"
        )
    r = summary["random"]
    lines.append(
        f"| random order | {_fmt(r['deletion_auc_norm'])} | {_fmt(r['insertion_auc_norm'])} | 0 | 0 "
        "| n/a | n/a | n/a | n/a | n/a |"
    )
    checked = _sanity_count(cases)
    nan_notes = [
        f"{labels[n]}: {e['sanity_deepest_spearman']['n']} of {checked}"
        for n, e in summary["methods"].items()
        if "sanity_deepest_spearman" in e and e["sanity_deepest_spearman"]["n"] < checked
    ]
    lines += [""]
    if nan_notes:
        lines += [
            "Sanity &rho; is undefined where the randomized map is constant (an all-zero ReLU'd CAM); means are over "
            "the regions where it is defined: " + "; ".join(nan_notes) + ".",
            "",
        ]
    if "sanity_curve" in summary:
        depths = summary["sanity_depths"]
        lines += [
            "## Sanity check by depth",
            "",
            "Mean Spearman &rho; (raw maps) with the trained network's map after randomizing every layer from the "
            "logits down to (and including) the named block.",
            "",
            "| method | " + " | ".join(f"→ `{d}`" for d in depths) + " |",
            "|---|" + "---|" * len(depths),
        ]
        for name, curve in summary["sanity_curve"].items():
            cells = ("n/a" if np.isnan(v) else f"{v:.2f}" for v in curve)
            lines.append(f"| {labels[name]} | " + " | ".join(cells) + " |")
        lines.append("")
    agreement = summary["agreement"]
    lines += [
        "## Method agreement",
        "",
        "Mean Spearman rank correlation between the methods' raw maps over all pixels (pairs with a constant map "
        "left out).",
        "",
        "| | " + " | ".join(labels[n] for n in agreement["methods"]) + " |",
        "|---|" + "---|" * len(agreement["methods"]),
    ]
    for name, row in zip(agreement["methods"], agreement["mean"], strict=True):
        cells = ("n/a" if v is None or np.isnan(v) else f"{v:.2f}" for v in row)
        lines.append(f"| {labels[name]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## How it was made",
        "",
        f"- Regions: {settings['regions_text']}",
        "- Score: the mean class logit over the region (`SegmentationAdapter`).",
        f"- Methods and parameters: {json.dumps(settings['params'])} (others at their defaults; CAMs at the "
        f"`{settings['cam_layer']}` layer).{_completeness(summary)} *median s*: compute time of the method alone "
        "(CAM variants share one pass, so all but the first show ~0).",
        f"- Deletion/insertion: pixels ranked by the raw map (descending, ties in a fixed random order), replaced by "
        f"the `{settings['baseline']}` baseline in {settings['steps']} steps; one batched score call per curve pair "
        "(`explainers/faithfulness.py`).",
        f"- Sanity: cascading re-initialisation of a clone in {len(summary.get('sanity_depths', []))} steps "
        f"(`explainers/sanity.py`) on {_every(settings['sanity_every'])} "
        f"({_sanity_count(cases)} regions), methods {', '.join(settings['sanity_methods'])}.",
        f"- Versions: {settings['versions']}.",
        "- Per-region values: `results.json`, `results.csv`.",
        "",
    ]
    return "\n".join(lines)


def _highlights(summary: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """A few sentences read off the table (which method leads on each measure), computed, not written by hand."""
    methods = summary["methods"]

    def best(key: str) -> str:
        scored = {n: e[key]["mean"] for n, e in methods.items() if e[key]["n"] and np.isfinite(e[key]["mean"])}
        if not scored:
            return "n/a"
        top = max(scored.values())
        return ", ".join(f"{labels[n]} ({v:+.3f})" for n, v in scored.items() if v >= top - 1e-3)

    flagged = [
        f"{labels[n]} ({_pct(e['sanity_flagged_rate'])} of regions)"
        for n, e in methods.items()
        if "sanity_flagged_rate" in e and e["sanity_flagged_rate"]["n"] and e["sanity_flagged_rate"]["mean"] > 0
    ]
    return [
        "Read off the table below: the largest margin over random pixel order is, for deletion, "
        f"{best('deletion_gap')}; for insertion, {best('insertion_gap')}. Flagged by the randomization check in at "
        f"least one region: {', '.join(flagged) if flagged else 'none'}.",
        "",
    ]


def _every(k: int) -> str:
    return "every region" if k == 1 else f"every {({2: '2nd', 3: '3rd'}).get(k, f'{k}th')} region"


def _sanity_count(cases: list[dict[str, Any]]) -> int:
    return sum(1 for case in cases if case["sanity_depths"])


def _completeness(summary: dict[str, Any]) -> str:
    entry = summary["methods"].get("integrated_gradients", {}).get("completeness_error")
    if not entry or entry["n"] == 0:
        return ""
    return f" Integrated Gradients' relative completeness error: {_fmt(entry)}."


def write_outputs(out: Path, settings: dict[str, Any], summary: dict[str, Any], cases: list[dict[str, Any]]) -> None:
    """report.md, results.json and results.csv in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown_report(settings, summary, cases), encoding="utf-8")
    payload = {"settings": settings, "summary": summary, "cases": cases}
    (out / "results.json").write_text(json.dumps(_jsonable(payload)), encoding="utf-8")
    columns = [
        "image", "class", "region_pixels", "method", "deletion_auc", "insertion_auc", "deletion_auc_norm",
        "insertion_auc_norm", "deletion_gap", "insertion_gap", "inside_share", "sanity_deepest_spearman",
        "sanity_flagged", "seconds",
    ]  # fmt: skip
    with (out / "results.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for case in cases:
            for name, values in case["methods"].items():
                spearman = values.get("sanity_spearman")
                writer.writerow(
                    {
                        "image": case["image"],
                        "class": case["class"],
                        "region_pixels": case["region_pixels"],
                        "method": name,
                        **{key: _round(values[key]) for key in columns[4:11]},
                        "sanity_deepest_spearman": _round(spearman[-1]) if spearman else "",
                        "sanity_flagged": values.get("sanity_flagged", ""),
                        "seconds": _round(values["seconds"]),
                    }
                )


def _round(value: float) -> float | str:
    return "" if value is None or not np.isfinite(value) else round(float(value), 6)


def _jsonable(value: Any) -> Any:
    """NaN -> None (valid JSON), numpy scalars -> Python, recursively."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else round(float(value), 5)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _versions() -> str:
    import keras
    import scipy
    import skimage
    import tensorflow as tf

    return (
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, scikit-image {skimage.__version__}"
    )


# --------------------------------------------------------------------------------------------------------------- CLI
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m explainers.report",
        description="Faithfulness, sanity and agreement of attribution methods over many images and regions.",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md, results.json, results.csv")
    parser.add_argument("--images", type=Path, help="a folder of images (default: the held-out procedural set)")
    parser.add_argument("--model", type=Path, help="a .keras model (default: the demo model)")
    parser.add_argument("--class-names", help="comma-separated class names for --model")
    parser.add_argument("--methods", nargs="+", help="registry names (default: fast methods + integrated_gradients)")
    parser.add_argument("--shap", action="store_true", help="add the shap (Partition) method")
    parser.add_argument("--regions", choices=("gt", "class"), help="gt: ground-truth parts (procedural set only); "
                        "class: predicted classes (default: gt for the procedural set, class for --images)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="at most this many regions (%(default)s)")
    parser.add_argument("--min-pixels", type=int, default=DEFAULT_MIN_PIXELS, help="skip smaller regions")
    parser.add_argument("--ignore-classes", default="", help="comma-separated class names never used as regions")
    parser.add_argument("--steps", type=int, default=20, help="deletion/insertion steps (%(default)s)")
    parser.add_argument("--baseline", default="blur", help="removed-pixel baseline: blur, black or mean")
    parser.add_argument("--ig-steps", type=int, default=32, help="Integrated Gradients: a fixed number of path "
                        "steps (%(default)s; 0 = the method's own defaults, refining to completeness)")
    parser.add_argument("--cam-layer", help="conv layer for the CAM methods (default: the last conv layer)")
    parser.add_argument("--sanity-depths", type=int, default=None, help="cascading steps (default 8)")
    parser.add_argument("--no-sanity", action="store_true", help="skip the randomization check")
    parser.add_argument("--sanity-every", type=int, default=2, help="run the randomization check on every k-th "
                        "region (%(default)s; it is the costliest part)")
    parser.add_argument("--seed", type=int, default=0, help="random order / randomization seed")
    parser.add_argument("--eval-seed", type=int, default=None, help="procedural image seed (default EVAL_SEED)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the report; returns {"settings", "summary", "cases"}."""
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = "python -m explainers.report " + " ".join(shlex.quote(a) for a in given)
    import keras

    from models import CLASS_NAMES, load_demo_model

    if args.model is None:
        model, class_names, model_name = load_demo_model(), list(CLASS_NAMES), "demo mushroom U-Net"
    else:
        model = keras.models.load_model(args.model, compile=False)
        class_names = args.class_names.split(",") if args.class_names else None
        model_name = args.model.name
    adapter = SegmentationAdapter(model, class_names=class_names)
    methods = list(dict.fromkeys(args.methods or default_methods()))
    if args.shap and "shap" not in methods:
        methods.append("shap")
    for name in methods:
        registry.get(name)  # unknown names fail here, with the choices
    params: dict[str, dict[str, Any]] = {}
    if args.cam_layer:
        if args.cam_layer not in adapter.conv_layers:
            raise SystemExit(f"--cam-layer {args.cam_layer!r} is not a conv layer; choose from {adapter.conv_layers}.")
        params.update({name: {"layer": args.cam_layer} for name in methods if registry.get(name).family == "cam"})
    if "integrated_gradients" in methods and args.ig_steps > 0:
        # A fixed path (no refinement): the check runs IG once per randomization step, where refinement to
        # completeness is costly and beside the point; the completeness error reached is reported.
        params["integrated_gradients"] = {"steps": args.ig_steps, "max_steps": args.ig_steps}
    ignore = {adapter.class_names.index(n) for n in args.ignore_classes.split(",") if n}
    if args.images is None:
        regions = args.regions or "gt"
        cases_iter = procedural_cases(adapter, regions, args.limit, args.min_pixels, args.eval_seed)
        what = "ground-truth parts" if regions == "gt" else "predicted parts"
        from models.mushrooms import EVAL_SEED

        seed_text = f"seed {args.eval_seed}" if args.eval_seed is not None else f"EVAL_SEED = {EVAL_SEED}"
        input_text = f"Held-out procedural mushrooms ({seed_text}, never used in training), {what}"
        regions_text = (
            f"one per (held-out image, {what[:-1]} present), background excluded, at least {args.min_pixels} px, "
            f"first {args.limit} in image order."
        )
    else:
        if args.regions == "gt":
            raise SystemExit("--regions gt needs ground truth, which only the procedural set has; use --regions class.")
        cases_iter = folder_cases(adapter, args.images, args.limit, args.min_pixels, ignore)
        input_text = f"Images from `{args.images.name}/`, predicted classes"
        regions_text = f"one per (image, predicted class), at least {args.min_pixels} px, first {args.limit}."
    sanity_methods = [] if args.no_sanity else [n for n in methods if n not in ("shap", "deep_shap")]
    start, cpu_start = time.perf_counter(), time.process_time()
    cascade = RandomizationCascade(adapter, seed=args.seed, max_depths=args.sanity_depths) if sanity_methods else None
    if args.sanity_every < 1:
        raise SystemExit("--sanity-every must be at least 1.")
    load_before = os.getloadavg()[0]
    cases = []
    with tqdm(total=args.limit, desc="regions", unit="region") as bar:
        for index, case in enumerate(cases_iter):
            checked = sanity_methods if index % args.sanity_every == 0 else []
            cases.append(evaluate_case(adapter, cascade, case, methods, params, args.steps, args.baseline, checked))
            bar.set_postfix_str(f"{case.image_id} {adapter.class_names[case.target]}")
            bar.update(1)
        bar.total = bar.n  # fewer regions than --limit: end the bar full
        bar.refresh()
    if not cases:
        raise SystemExit("No regions to evaluate (all smaller than --min-pixels?).")
    settings = {
        "command": command,
        "model": model_name,
        "input": input_text,
        "regions_text": regions_text,
        "methods": methods,
        "params": params,
        "steps": args.steps,
        "baseline": args.baseline,
        "seed": args.seed,
        "sanity_methods": sanity_methods,
        "cam_layer": args.cam_layer or adapter.default_layer,
        "sanity_threshold": DEFAULT_THRESHOLD,
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {load_before:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end (shared machine)",
        "sanity_every": args.sanity_every,
        "versions": _versions(),
    }
    summary = summarise(cases, methods)
    write_outputs(args.out, settings, summary, cases)
    print(f"wrote {args.out / 'report.md'} ({len(cases)} regions, {settings['seconds']:.0f} s)")
    return {"settings": settings, "summary": summary, "cases": cases}


if __name__ == "__main__":
    main()
