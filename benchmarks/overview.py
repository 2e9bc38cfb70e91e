"""Benchmark of the every-class overview: one request whose backward passes share one forward pass, against one
separate explanation per class, on the Keras demo model and its torch twin, as ratios measured in one run.

For the first sample and each backend: `explain_classes(adapter, image, "gradcam")` (every predicted class, every
conv layer's maps, all four CAM variants as the app computes them) against `explain(..., methods=["gradcam"])` once
per class on the same whole-class regions; and the same with `all_layers=False` at the default layer. The adapter's
cache is cleared before every call; the variants are interleaved round-robin, so load from other processes hits them
alike. The ratio separate / overview is the speed-up (> 1: the shared forward pass pays).

`python -m benchmarks.overview [--repeats N]` prints the rows and replaces the overview section of
benchmarks/RESULTS.md.
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

from benchmarks import sections

BEGIN, END = "<!-- overview:begin -->", "<!-- overview:end -->"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def measure(adapter: Any, image: Any, repeats: int, all_layers: bool) -> dict[str, Any]:
    """Median seconds of the shared overview and of the separate per-class explanations on one adapter."""
    from benchmarks.engine import interleaved_medians
    from explainers import explain
    from explainers.overview import class_questions, explain_classes

    labels = adapter.predict(image).argmax(-1)
    questions = class_questions(adapter, image, labels=labels)
    params = {"all_layers": all_layers}

    def overview() -> None:
        adapter.clear_cache()
        explain_classes(adapter, image, "gradcam", params=params, labels=labels)

    def separate() -> None:
        adapter.clear_cache()
        for question in questions.values():
            explain(adapter, image, question, methods=["gradcam"], params={"gradcam": params})

    medians = interleaved_medians({"overview": overview, "separate": separate}, repeats)
    return {
        "framework": adapter.framework,
        "classes": len(questions),
        "layers": len(adapter.conv_layers) if all_layers else 1,
        "overview_ms": 1000 * medians["overview"],
        "separate_ms": 1000 * medians["separate"],
        "speedup": medians["separate"] / medians["overview"],
    }


def run_backend(framework: str, repeats: int) -> list[dict[str, Any]]:
    """The rows of one backend ("keras" or "torch"), measured in this process."""
    from benchmarks.backends import torch_twin_question

    keras_adapter, torch_adapter, image, _, _ = torch_twin_question()
    adapter = keras_adapter if framework == "keras" else torch_adapter
    return [measure(adapter, image, repeats, all_layers) for all_layers in (True, False)]


def run(repeats: int) -> list[dict[str, Any]]:
    """Every backend's rows, each backend in its own process (TensorFlow's busy thread pools after a Keras run slow
    a torch run in the same process down)."""
    rows = []
    for framework in ("keras", "torch"):
        command = [sys.executable, "-m", "benchmarks.overview", "--backend", framework, "--repeats", str(repeats)]
        done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        for row in measured:
            print(row, flush=True)
        rows.extend(measured)
    return rows


def section(rows: list[dict[str, Any]], load: tuple[float, float, float], repeats: int) -> str:
    import torch

    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        BEGIN,
        "## Overview: every class at once (`python -m benchmarks.overview`)",
        "",
        f"{stamp}, demo model 128x128 (Keras) and its torch twin (torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, CPU), first sample, Grad-CAM on each predicted class's whole region, "
        f"median of {repeats} interleaved calls, load average {tuple(round(v, 2) for v in load)}.",
        "",
        "| backend | classes | layers | overview (one forward) | separate explains | speed-up |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['framework']} | {row['classes']} | {row['layers']} | {row['overview_ms']:.1f} ms | "
            f"{row['separate_ms']:.1f} ms | {row['speedup']:.2f}x |"
        )
    lines += [
        "",
        "Speed-up = separate / overview. With every layer's maps the K backward passes down to the first conv layer "
        "dominate, so sharing the one forward pass saves its K - 1 repeats only; at one layer near the output the "
        "backward passes are short and the shared forward pass is most of the cost.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backend", choices=("keras", "torch"), help="measure one backend and print its rows as JSON")
    args = parser.parse_args()
    if args.backend:
        print(json.dumps(run_backend(args.backend, args.repeats)))
        return
    rows = run(args.repeats)
    text = section(rows, os.getloadavg(), args.repeats)
    print(text)
    sections.write_section(RESULTS, text, BEGIN, END)


if __name__ == "__main__":
    main()
