"""The batch report end to end on two tiny images, and its region choice on the held-out procedural set."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from explainers import SegmentationAdapter, registry
from explainers.report import main, summarise
from tests.explainers.tiny_models import structured_image, tiny_unet

METHODS = ["gradcam", "hirescam", "saliency", "integrated_gradients"]


def _strict_json(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"invalid JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_report_runs_end_to_end_on_two_images(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for seed in (0, 1):
        Image.fromarray(structured_image((32, 32), seed=seed)).save(images / f"img{seed}.png")
    (images / "notes.txt").write_text("not an image")
    model_path = tmp_path / "tiny.keras"
    tiny_unet((32, 32)).save(model_path)
    out = tmp_path / "report"
    result = main(
        [
            "--images", str(images), "--out", str(out), "--model", str(model_path), "--class-names", "bg,a,b,c",
            "--methods", *METHODS, "--steps", "4", "--sanity-depths", "3", "--min-pixels", "1", "--ig-steps", "8",
        ]
    )  # fmt: skip
    cases = result["cases"]
    assert {case["image"] for case in cases} == {"img0.png", "img1.png"}
    report = (out / "report.md").read_text()
    for name in METHODS:
        assert f"| {registry.get(name).label} (`{name}`) |" in report
    assert "random order" in report and "python -m explainers.report --images" in report
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(cases) * len(METHODS) and {row["method"] for row in rows} == set(METHODS)
    saved = _strict_json((out / "results.json").read_text())
    assert saved["settings"]["methods"] == METHODS and len(saved["cases"]) == len(cases)
    assert len(cases) >= 2
    for index, case in enumerate(cases):
        checked = index % 2 == 0  # the randomization check runs on every 2nd region by default
        assert case["sanity_depths"] == (["logits", "up", "enc1"] if checked else [])
        for values in case["methods"].values():
            assert len(values["deletion_scores"]) == 5
            assert len(values.get("sanity_spearman", [])) == (3 if checked else 0)
    # The table's means are the means of the per-region values.
    gaps = [case["methods"]["saliency"]["deletion_gap"] for case in cases]
    assert result["summary"]["methods"]["saliency"]["deletion_gap"]["mean"] == pytest.approx(np.nanmean(gaps))


def test_summary_leaves_nan_out_and_counts_it():
    def case(gap: float) -> dict:
        method = {
            "deletion_gap": gap, "insertion_gap": 0.1, "deletion_auc_norm": 0.2, "insertion_auc_norm": 0.8,
            "inside_share": 0.5, "deletion_auc": 1.0, "insertion_auc": 2.0, "seconds": 0.1,
        }  # fmt: skip
        return {
            "methods": {"m": method},
            "random_deletion_auc_norm": 0.5,
            "random_insertion_auc_norm": 0.5,
            "agreement": {"methods": ["m"], "matrix": [[1.0]]},
            "sanity_depths": [],
        }

    summary = summarise([case(0.2), case(float("nan")), case(-0.1)], ["m"])
    gap = summary["methods"]["m"]["deletion_gap"]
    assert gap["n"] == 2 and gap["mean"] == pytest.approx(0.05)
    assert summary["methods"]["m"]["beats_random_deletion"]["mean"] == pytest.approx(0.5)


def test_procedural_regions_are_the_ground_truth_parts_without_background():
    from models import CLASS_NAMES, load_demo_model
    from models.mushrooms import EVAL_SEED, generate_sample
    from models.report import procedural_cases

    adapter = SegmentationAdapter(load_demo_model(), class_names=list(CLASS_NAMES))
    cases = list(procedural_cases(adapter, "gt", limit=5, min_pixels=32))
    assert len(cases) == 5
    first_image, truth = generate_sample(np.random.default_rng([EVAL_SEED, 0]), size=128)
    parts = [c for c in range(1, len(CLASS_NAMES)) if (truth == c).sum() >= 32]
    first = [case for case in cases if case.image_id == f"eval-{EVAL_SEED}-0"]
    assert [case.target for case in first] == parts[: len(first)]
    for case in first:
        np.testing.assert_array_equal(case.image, first_image)
        np.testing.assert_array_equal(case.region, truth == case.target)
    assert all(case.target != 0 for case in cases)


def test_the_engine_never_imports_the_demo():
    """explainers/ (the report included) stands alone; only models/ builds on it."""
    import subprocess
    import sys

    code = (
        "import sys, explainers, explainers.report, explainers.report.cli; "
        "assert not any(m == 'models' or m.startswith('models.') for m in sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
