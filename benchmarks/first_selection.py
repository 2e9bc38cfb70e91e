"""S2 (issue 15): the first selection after an image arrives costs what a later one does (goal: first / later <= 1.3).

For each model, in a fresh process: build the adapter, then either prepare it as the app does (`explainers.warmup`:
at start-up for a fixed-size model) or not, and time the fast set (`explain` with every CAM, saliency and gradient x
input; the server compute of a selection) on a first image and question, then on three later ones (new regions, so
nothing is served from the adapter's cache). Reported: first, median of the later ones, and their ratio, with and
without preparation; the unprepared ratio is what a request paid for tracing before.

    python -m benchmarks.first_selection [--cases demo,deeplab512]

The rows go into their own section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import sections
from benchmarks.fast_pass import fast_methods, sample_question

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- first-selection:begin -->", "<!-- first-selection:end -->"
CASES = ("demo", "deeplab512")
GOAL = 1.3


def _adapter(case: str):
    from explainers import SegmentationAdapter

    if case == "demo":
        import models

        return SegmentationAdapter(models.load_demo_model(), class_names=list(models.CLASS_NAMES))
    from benchmarks.deeplab import deeplabv3plus

    model = deeplabv3plus((512, 512))
    return SegmentationAdapter(model, class_names=[f"class {i}" for i in range(model.output_shape[-1])])


def measure_case(case: str, prepared: bool) -> dict[str, Any]:
    from explainers import explain
    from explainers.warmup import prepare

    adapter = _adapter(case)
    size = adapter.input_size
    start = time.perf_counter()
    if prepared:
        prepare(adapter, size)
    prepare_s = time.perf_counter() - start
    image, region = sample_question(size)
    times = []
    for shift in range(4):  # a new region each time: nothing comes from the adapter's cache
        moved = np.roll(region, 3 * shift, axis=1)
        start = time.perf_counter()
        explain(adapter, image, moved, 1, methods=fast_methods())
        times.append(time.perf_counter() - start)
    later = float(np.median(times[1:]))
    return {"case": case, "size": list(size), "prepared": prepared, "prepare_s": prepare_s, "first_s": times[0],
            "later_s": later, "ratio": times[0] / later}  # fmt: skip


def run_in_subprocess(case: str, prepared: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.first_selection", "--one-case", case]
    command += ["--prepared"] if prepared else []
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=HERE.parent)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"{case} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return json.loads(lines[-1])


def markdown_section(rows: list[dict[str, Any]]) -> str:
    lines = [BEGIN, "", "## S2 first selection vs later ones (`python -m benchmarks.first_selection`)", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, load average at end "
             f"{tuple(round(v, 2) for v in os.getloadavg())}. Server compute of the fast set (4 CAMs at every layer, "
             "saliency, gradient x input), each case in a fresh process.", "",
             "| model | prepared at start-up | preparing | first selection | later (median of 3) | first / later | "
             f"met (<= {GOAL}) |", "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in rows:
        met = "yes" if row["ratio"] <= GOAL else "**no**"
        lines.append(f"| {row['case']} {row['size'][0]}x{row['size'][1]} | {'yes' if row['prepared'] else 'no'} | "
                     f"{row['prepare_s']:.2f} s | {row['first_s'] * 1000:.0f} ms | {row['later_s'] * 1000:.0f} ms | "
                     f"{row['ratio']:.2f} | {met if row['prepared'] else '(before S2)'} |")  # fmt: skip
    lines += ["", END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--one-case", help=argparse.SUPPRESS)
    parser.add_argument("--prepared", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--markdown", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args(argv)
    if args.one_case:
        print(json.dumps(measure_case(args.one_case, args.prepared)))
        return
    rows = [run_in_subprocess(case, prepared) for case in args.cases.split(",") if case for prepared in (False, True)]
    section = markdown_section(rows)
    sections.write_section(Path(args.markdown), section, BEGIN, END)
    print(section)


if __name__ == "__main__":
    main()
