"""The batch report as Markdown: a per-method table of faithfulness and sanity, the sanity check by depth, the
agreement matrix, and how the report was made. Highlights are read off the summary, not written by hand."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from explainers import registry


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
    labels = {name: registry.get(name).label for name in summary["methods"]}
    lines = [
        *_header(settings, summary, cases, labels),
        *_method_table(settings, summary, cases, labels),
        *_sanity_by_depth(summary, labels),
        *_agreement_table(summary, labels),
        *_errors(summary, settings, labels),
        *_how_it_was_made(settings, summary, cases),
    ]
    return "\n".join(lines)


def _header(
    settings: dict[str, Any], summary: dict[str, Any], cases: list[dict[str, Any]], labels: dict[str, str]
) -> list[str]:
    return [
        "# Which attribution method to trust: batch report",
        "",
        f"Model: `{settings['model']}`. {settings['input']}. {len(cases)} regions "
        f"({len({c['image'] for c in cases})} images), target = the region's class. "
        f"Made by `explainers.report` in {settings['seconds']:.0f} s wall time ({settings['cpu_seconds']:.0f} s "
        f"of CPU time) on {settings['machine']}.",
        "",
        "Command:",
        "",
        f"    {settings['command']}",
        "",
        *_highlights(summary, labels),
    ]


def _method_table(
    settings: dict[str, Any], summary: dict[str, Any], cases: list[dict[str, Any]], labels: dict[str, str]
) -> list[str]:
    lines = [
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
    for name in summary["methods"]:
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
    return lines


def _sanity_by_depth(summary: dict[str, Any], labels: dict[str, str]) -> list[str]:
    if "sanity_curve" not in summary:
        return []
    depths = summary["sanity_depths"]
    lines = [
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
    return lines


def _agreement_table(summary: dict[str, Any], labels: dict[str, str]) -> list[str]:
    agreement = summary["agreement"]
    lines = [
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
    lines.append("")
    return lines


def _errors(summary: dict[str, Any], settings: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """The errors section (explainers.report.errors), when the cases came with ground truth."""
    errors = summary.get("errors")
    if not errors:
        return []
    names = settings.get("class_names") or [f"class {c}" for c in range(len(errors["iou"]))]
    lines = [
        "## The model's errors",
        "",
        f"The prediction against the ground truth over the {errors['images']} images above, from one confusion "
        f"matrix summed over them: pixel accuracy {errors['pixel_accuracy']:.3f}, mean IoU {errors['mean_iou']:.3f} "
        "(IoU = TP / (TP + FP + FN) per class, over the whole set). A *false positive* of a class is a pixel "
        "predicted as it that truly is another class; a *false negative*, a pixel of it predicted as another.",
        "",
        "| class | IoU | true positives (px) | false positives (px) | false negatives (px) |",
        "|---|---|---|---|---|",
    ]
    for c, name in enumerate(names):
        iou = errors["iou"][c]
        cell = "n/a" if iou is None or not np.isfinite(iou) else f"{iou:.3f}"
        lines.append(
            f"| {name} | {cell} | {errors['true_positives'][c]} | {errors['false_positives'][c]} "
            f"| {errors['false_negatives'][c]} |"
        )
    lines.append("")
    largest = errors.get("largest_error")
    if largest:
        question = largest["question"]
        lines += [
            "### The largest error, explained",
            "",
            f"The largest false-positive region of any image and class: {largest['pixels']} px of "
            f"`{largest['image']}` predicted “{question['target_name']}” that are truly (mostly) "
            f"“{question['contrast_name']}”. Asked as *why are these pixels “{question['target_name']}” rather than "
            f"“{question['contrast_name']}”?* (score: the mean of z_{question['target_name']} - "
            f"z_{question['contrast_name']} over the region; `explainers.errors.error_question`). Gaps are margins "
            "over random pixel order on this contrast score (positive = better than random), normalised as in the "
            f"table above by S(image) - S(baseline) = {largest['image_score']:.3f} - {largest['baseline_score']:.3f}"
            f"{_small_range(largest['image_score'], largest['baseline_score'])}.",
            "",
            "| method | score | deletion gap ↑ | insertion gap ↑ | inside share |",
            "|---|---|---|---|---|",
        ]
        for name, values in largest["methods"].items():
            lines.append(
                f"| {labels.get(name, name)} | {values['score']:.3f} | {values['deletion_gap']:.3f} "
                f"| {values['insertion_gap']:.3f} | {values['inside_share']:.2f} |"
            )
        lines += [
            "",
            "The question is recorded in full in `results.json` (`summary.errors.largest_error.question`): "
            "`explainers.question.Question.from_dict` reads it back, region included.",
            "",
        ]
    return lines


def _small_range(image_score: float, baseline_score: float) -> str:
    if abs(image_score - baseline_score) >= 0.25 * max(abs(image_score), 1e-9):
        return ""
    return (
        ": the baseline changes this score little, so the normalised curves leave [0, 1] and the gaps are large; "
        "read their signs"
    )


def _how_it_was_made(settings: dict[str, Any], summary: dict[str, Any], cases: list[dict[str, Any]]) -> list[str]:
    return [
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

