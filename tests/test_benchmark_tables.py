"""The benchmark tables: a method a backend refuses is listed with its reason (the table goes on), the S1 rows show
the measured ratios against the goal, and `benchmarks.run` keeps the S1 section when it did not re-measure it."""

from __future__ import annotations

import argparse

from benchmarks import backends, fast_pass, run

S1_ROW = {"model": "m", "framework": "keras", "size": [512, 512], "layers": 52, "floor_ms": 1000.0,
          "fast_set_ms": 1200.0, "two_passes_ms": 2100.0, "ratio_to_floor": 1.2, "two_passes_ratio": 2.1}  # fmt: skip


def test_a_refused_method_reads_refused_with_its_reason():
    results = {
        "load_average_at_start": (1.0, 1.0, 1.0), "load_average_at_end": (2.0, 2.0, 2.0), "torch": "2.x",
        "torch_threads": 2, "p5a": {"layers": 18, "device": "cpu", "ratio_to_floor": 1.25, "ours_ms": 25.0,
                                    "floor_ms": 20.0},
        "p5b": [{"method": "saliency", "slow": False, "keras_s": 0.010, "torch_s": 0.015},
                {"method": "deep_shap", "slow": True, "keras_s": 1.0, "torch_s": None, "torch_refused": "no rule"}],
    }  # fmt: skip
    text = backends.markdown(results)
    assert "| saliency | 10.0 | 15.0 | 1.50 |" in text
    assert "| deep_shap | 1000.0 | refused | - |" in text
    assert "- deep_shap refused on torch: no rule" in text
    assert "| 1.25 (25.0 vs 20.0 ms) | <= 1.3 | yes |" in text


def test_s1_rows_show_the_ratio_against_the_goal():
    missed = {**S1_ROW, "size": [128, 128], "ratio_to_floor": 1.6}
    text = fast_pass.markdown({"load_average_at_start": (1, 1, 1), "load_average_at_end": (1, 1, 1),
                               "rows": [S1_ROW, missed]})  # fmt: skip
    assert "| m (keras) | 512x512 | 52 | 1000.0 | 1200.0 | 1.20 | 2.10 | <= 1.5 | yes |" in text
    assert "| m (keras) | 128x128 | 52 | 1000.0 | 1200.0 | 1.60 | 2.10 | <= 1.5 | **no** |" in text
    assert text.startswith(fast_pass.BEGIN) and text.endswith(fast_pass.END)


def test_run_keeps_the_s1_section_unless_it_measured_it(tmp_path):
    path = tmp_path / "RESULTS.md"
    section = fast_pass.markdown({"load_average_at_start": (1, 1, 1), "load_average_at_end": (1, 1, 1),
                                  "rows": [S1_ROW]})  # fmt: skip
    path.write_text(f"# old\n\n{section}\n")
    machine = {"date": "d", "cpu_count": 2, "platform": "p", "python": "3", "versions": {},
               "load_average_at_start": (0, 0, 0)}  # fmt: skip
    run.report({"machine": machine}, argparse.Namespace(markdown=str(path)))
    assert fast_pass.BEGIN in path.read_text() and "| 1.20 |" in path.read_text()
    remeasured = {"load_average_at_start": (1, 1, 1), "load_average_at_end": (1, 1, 1),
                  "rows": [{**S1_ROW, "ratio_to_floor": 1.4}]}  # fmt: skip
    run.report({"machine": machine, "fast_pass": remeasured}, argparse.Namespace(markdown=str(path)))
    text = path.read_text()
    assert text.count(fast_pass.BEGIN) == 1 and "| 1.40 |" in text and "| 1.20 |" not in text
    assert "S1 fast set / fwd+bwd floor, m 512x512 | 1.40 | <= 1.5 | yes" in text
