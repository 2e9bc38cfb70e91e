"""The batch report's files: report.md, results.json (NaN as null) and results.csv (one row per region and method)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from explainers.report.markdown import markdown_report


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

