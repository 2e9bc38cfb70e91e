"""The batch report's measurements: every metric for one case, and their summary over many cases.

For each case it runs the methods (`explainers.explain`), deletion and insertion curves against random order
(`explainers.faithfulness`, Petsiuk et al. 2018), the share of positive attribution inside the region, cascading model
randomization (`explainers.sanity`, Adebayo et al. 2018) and the rank agreement between methods
(`explainers.agreement`). Results are plain JSON-able values.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from explainers import registry
from explainers.adapter import SegmentationAdapter
from explainers.agreement import agreement_matrix
from explainers.explain import explain
from explainers.faithfulness import faithfulness
from explainers.report.cases import Case
from explainers.sanity import RandomizationCascade


def default_methods() -> list[str]:
    """The fast methods (not `slow` in the registry) plus Integrated Gradients."""
    fast = [name for name in registry.available() if not registry.get(name).slow]
    return [*fast, "integrated_gradients"]


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
        "question": case.question.to_dict(adapter.class_names),
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

