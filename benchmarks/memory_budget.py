"""Memory-budget benchmark (issue S5): Integrated Gradients keeps to the budget, and the time estimate is near.

For each case (the 128x128 demo U-Net, and the 512x512 DeepLabV3+ on ResNet50 that `benchmarks.deeplab` builds), in a
fresh process so the process's memory starts clean:

1. build the adapter and set its memory budget (`--budget`, default 2GB: tighter than the app's default on most
   machines, so the budget decides the batch at 512x512);
2. warm up on one image (two forward and two gradient calls: the first of each traces the model), then read the
   adapter's time estimate for the IG run below (`explainers.estimate`);
3. run Integrated Gradients (`--steps` steps, no refinement) with the batch size the budget gives, sampling the
   process's resident memory every millisecond; report the peak growth over the resident memory before the warm-up
   (so the traced graphs and whatever the warm-up left allocated count too: a conservative figure),
   divided by the budget (goal <= 1), the batch size, the counted activation memory per image, the measured growth per
   batch image (what calibrates `explainers.memory.GRADIENT_FACTOR`), and the estimate against the measured time.

    python -m benchmarks.memory_budget [--budget 1GB] [--steps 16] [--cases demo,deeplab512] [--markdown PATH]

The rows go into their own section of benchmarks/RESULTS.md (between the memory-budget markers).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import sections

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- memory-budget:begin -->", "<!-- memory-budget:end -->"
CASES = ("demo", "deeplab512")
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    """This process's resident memory now (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class PeakResident:
    """Samples the resident memory every millisecond while the `with` body runs; `growth` = peak - start."""

    def __enter__(self) -> PeakResident:
        self.start = self.peak = resident_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, resident_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, resident_bytes())

    @property
    def growth(self) -> int:
        return self.peak - self.start


def _adapter(case: str):
    from explainers import SegmentationAdapter

    if case == "demo":
        import models

        return SegmentationAdapter(models.load_demo_model(), class_names=list(models.CLASS_NAMES))
    if case == "deeplab512":
        from benchmarks.deeplab import deeplabv3plus

        model = deeplabv3plus((512, 512))
        return SegmentationAdapter(model, class_names=[f"class {i}" for i in range(model.output_shape[-1])])
    raise ValueError(f"unknown case {case!r}; choose from {CASES}")


def measure_case(case: str, budget: int, steps: int) -> dict[str, Any]:
    """One case in this process (call it in a fresh process: see `main`)."""
    from explainers import memory, registry
    from explainers.estimate import estimated_seconds

    adapter = _adapter(case)
    adapter.memory_budget = budget
    size = adapter.input_size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    region = np.zeros(size, dtype=bool)
    region[size[0] // 4 : size[0] // 2, size[1] // 4 : size[1] // 2] = True
    before = resident_bytes()  # the model is built; no model call yet
    for _ in range(2):  # warm-up on one image: the first calls trace; the second ones set the measured throughput
        adapter.score(image[None], region, 1, batch_size=1)
        adapter.input_gradients(adapter.model_input(image[None]), region, 1, batch_size=1)
    params = {"steps": steps, "max_steps": steps}
    estimate = estimated_seconds(adapter, "integrated_gradients", params, size)
    counted = adapter.activation_bytes(size)
    batch = adapter.batch_size("gradient", size, steps + 1)
    start = time.perf_counter()
    with PeakResident() as peak:
        result = registry.get("integrated_gradients").explain(adapter, image, region, 1, params=params)
    seconds = time.perf_counter() - start
    return {
        "case": case, "size": list(size), "budget_bytes": budget, "steps": steps, "batch_size": batch,
        "diagnostics_batch_size": result.diagnostics.get("batch_size"),
        "activation_bytes_per_image": counted,
        "estimated_bytes_per_batch": None if counted is None else memory.per_image_bytes(counted, "gradient") * batch,
        # growth over the memory before the warm-up: what the run holds at its peak, traced graphs included
        "peak_growth_bytes": peak.peak - before, "growth_over_budget": (peak.peak - before) / budget,
        "measured_bytes_per_batch_image": (peak.peak - before) / batch,
        "estimated_s": estimate, "measured_s": seconds,
        "estimate_over_measured": None if estimate is None else estimate / seconds,
        "finite": bool(np.isfinite(result.heatmap).all()),
    }  # fmt: skip


def run_case_in_subprocess(case: str, budget: int, steps: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.memory_budget", "--one-case", case, "--budget", str(budget),
               "--steps", str(steps)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=HERE.parent)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"case {case} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return json.loads(lines[-1])


def markdown_section(rows: list[dict[str, Any]]) -> str:
    mb = 1024**2
    lines = [BEGIN, "", "## Memory budget: Integrated Gradients within `--memory-budget` (`python -m "
             "benchmarks.memory_budget`)", "", f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{os.cpu_count()} cores, load average at end {tuple(round(v, 2) for v in os.getloadavg())}. Each case "
             "in a fresh process; peak resident memory during the IG run over the resident memory before any model "
             "call.",
             "", "| case | budget | batch | counted activations / image | peak growth | growth / budget (<= 1) | "
             "growth / batch image | IG time | estimate / measured |", "| --- | --- | --- | --- | --- | --- | --- | "
             "--- | --- |"]  # fmt: skip
    for row in rows:
        estimate = row["estimate_over_measured"]
        lines.append(
            f"| {row['case']} {row['size'][0]}x{row['size'][1]} | {row['budget_bytes'] / mb:.0f} MB | "
            f"{row['batch_size']} | {(row['activation_bytes_per_image'] or 0) / mb:.1f} MB | "
            f"{row['peak_growth_bytes'] / mb:.0f} MB | {row['growth_over_budget']:.2f} | "
            f"{row['measured_bytes_per_batch_image'] / mb:.1f} MB | {row['measured_s']:.1f} s ({row['steps'] + 1} "
            f"points) | {'-' if estimate is None else f'{estimate:.2f}'} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="2GB")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--one-case", help=argparse.SUPPRESS)
    parser.add_argument("--markdown", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--json", default=str(HERE / "out" / "memory_budget.json"))
    args = parser.parse_args(argv)
    from explainers.memory import parse_bytes

    budget = parse_bytes(args.budget)
    if args.one_case:
        print(json.dumps(measure_case(args.one_case, budget, args.steps)))
        return
    rows = [run_case_in_subprocess(case, budget, args.steps) for case in args.cases.split(",") if case]
    for row in rows:
        print(json.dumps(row))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=2))
    section = markdown_section(rows)
    sections.write_section(Path(args.markdown), section, BEGIN, END)
    print(section)


if __name__ == "__main__":
    main()
