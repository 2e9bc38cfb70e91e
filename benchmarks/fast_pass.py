"""S1 (issue 15): the whole fast set from ONE forward+backward pass, against that pass's floor, at 128 and 512 pixels.

The fast set is what the app computes on every selection: the four CAM variants at every conv layer, saliency and
gradient x input, through the public `explain` (adapter cache cleared before each call, so every call is a real
pass; the per-method heatmaps are at image resolution). It is timed against

- the floor: one plain forward+backward of the region score with respect to the input (`backend.input_gradients`);
- two passes, the way it ran before S1: the CAM step (`backend.layer_maps`, every layer) plus a separate input
  gradient for saliency and gradient x input.

Models: the shipped demo U-Net at 128x128 (18 conv layers) and a DeepLabV3+ on ResNet50 at 512x512 (52 conv layers,
random weights, built here by benchmarks.deeplab; its 128x128 build too). With `--torch`, also the demo's torch twin
at 128x128. Timed variants are interleaved round-robin after one warm-up each (which pays tracing and XLA
compilation), so load from other processes hits them alike; the figure is the median. Goal: fast set / floor <= 1.5.

`python -m benchmarks.fast_pass [--quick] [--torch]` prints the rows and replaces its section of
benchmarks/RESULTS.md; `python -m benchmarks.run` runs it as part of the full benchmark.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import sections

BEGIN, END = "<!-- fast_pass:begin -->", "<!-- fast_pass:end -->"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
GOAL = 1.5


def fast_methods() -> list[str]:
    """The fast set: every registered CAM (all layers), saliency, gradient x input."""
    from explainers.cam import cam_explainers

    return [*cam_explainers(), "saliency", "gradient_x_input"]


def sample_question(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The first bundled demo sample resized to `size`, and a central box covering a quarter of it."""
    from PIL import Image

    from models import SAMPLES_DIR

    image = Image.open(sorted(SAMPLES_DIR.glob("*.png"))[0]).convert("RGB")
    image = np.asarray(image.resize((size[1], size[0]), Image.Resampling.BILINEAR))
    region = np.zeros(size, dtype=bool)
    region[size[0] // 4 : 3 * size[0] // 4, size[1] // 4 : 3 * size[1] // 4] = True
    return image, region


def measure(adapter: Any, image: np.ndarray, region: np.ndarray, target: int, repeats: int) -> dict[str, Any]:
    """Median ms of the fast set (one pass), the floor and the two-pass way, and the ratios to the floor."""
    from benchmarks.engine import interleaved_medians
    from explainers import explain
    from explainers.cam import cam_explainers

    methods = fast_methods()
    combiners = [explainer.combine for explainer in cam_explainers().values()]
    spec = adapter.score_spec(region, target, image.shape[:2])
    x = adapter.model_input(image[None])
    backend, layers = adapter.backend, adapter.conv_layers

    def fast_set() -> None:
        adapter.clear_cache()
        explain(adapter, image, region, target, methods=methods)

    def floor() -> None:
        backend.input_gradients(x, spec)

    def two_passes() -> None:
        backend.layer_maps(x, spec, combiners, layers)
        backend.input_gradients(x, spec)

    medians = interleaved_medians({"fast_set": fast_set, "floor": floor, "two_passes": two_passes}, repeats)
    return {
        "framework": adapter.framework,
        "size": list(image.shape[:2]),
        "layers": len(layers),
        "repeats": repeats,
        "fast_set_ms": 1000 * medians["fast_set"],
        "floor_ms": 1000 * medians["floor"],
        "two_passes_ms": 1000 * medians["two_passes"],
        "ratio_to_floor": medians["fast_set"] / medians["floor"],
        "two_passes_ratio": medians["two_passes"] / medians["floor"],
    }


def demo_row(repeats: int) -> dict[str, Any]:
    from benchmarks.methods import demo_question

    adapter, image, region, target = demo_question()
    return {"model": "demo U-Net", **measure(adapter, image, region, target, repeats)}


def torch_row(repeats: int, threads: int | None) -> dict[str, Any]:
    import torch

    from benchmarks.backends import torch_twin_question

    if threads is not None:  # see benchmarks.backends.run: torch's default threads stall on a busy shared machine
        torch.set_num_threads(threads)
    _, adapter, image, region, target = torch_twin_question()
    row = measure(adapter, image, region, target, repeats)
    threads = torch.get_num_threads()
    return {"model": f"demo U-Net, torch twin ({threads} thread{'' if threads == 1 else 's'})", **row}


def deeplab_row(size: tuple[int, int], repeats: int) -> dict[str, Any]:
    from benchmarks.deeplab import deeplabv3plus
    from explainers import SegmentationAdapter

    model = deeplabv3plus(size)
    adapter = SegmentationAdapter(model)
    image, region = sample_question(size)
    return {
        "model": "DeepLabV3+ ResNet50",
        "parameters": int(model.count_params()),
        **measure(adapter, image, region, 1, repeats),
    }


def run(repeats: int = 7, with_torch: bool = False, torch_threads: int | None = None) -> dict[str, Any]:
    """Every row: demo 128, DeepLabV3+ 128 and 512 (fewer repeats at 512), and optionally the torch twin."""
    start = os.getloadavg()
    rows = [demo_row(repeats)]
    if with_torch:
        rows.append(torch_row(repeats, torch_threads))
    rows.append(deeplab_row((128, 128), repeats))
    rows.append(deeplab_row((512, 512), max(3, repeats // 2)))
    return {"load_average_at_start": start, "load_average_at_end": os.getloadavg(), "rows": rows}


def markdown(results: dict[str, Any]) -> str:
    load = tuple(round(x, 2) for x in results["load_average_at_start"])
    end = tuple(round(x, 2) for x in results["load_average_at_end"])
    lines = [
        BEGIN,
        "## S1: the whole fast set from one pass (`python -m benchmarks.fast_pass`)",
        "",
        "Fast set = 4 CAMs at every conv layer + saliency + gradient x input, through `explain` (cache cleared per "
        "call); floor = one plain forward+backward of the region score (input gradient); two passes = the CAM step "
        f"plus a separate input gradient (how it ran before). Medians, interleaved. Load average {load} at start, "
        f"{end} at the end (a shared 2-core machine).",
        "",
        "| model | size | conv layers | floor ms | fast set ms | fast set / floor | two passes / floor | goal | met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["rows"]:
        met = "yes" if r["ratio_to_floor"] <= GOAL else "**no**"
        lines.append(
            f"| {r['model']} ({r['framework']}) | {r['size'][0]}x{r['size'][1]} | {r['layers']} | {r['floor_ms']:.1f} "
            f"| {r['fast_set_ms']:.1f} | {r['ratio_to_floor']:.2f} | {r['two_passes_ratio']:.2f} | <= {GOAL} | {met} |"
        )
    lines.append(END)
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace the S1 section of `path` (or append it)."""
    sections.write_section(path, section, BEGIN, END)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--torch", action="store_true", help="also the demo's torch twin (needs requirements-torch)")
    parser.add_argument("--torch-threads", type=int, help="torch intra-op threads (default: torch's, one per core)")
    parser.add_argument("--markdown", default=str(RESULTS))
    args = parser.parse_args()
    results = run(3 if args.quick else 7, with_torch=args.torch, torch_threads=args.torch_threads)
    section = markdown(results)
    print(section)
    write_section(Path(args.markdown), section)


if __name__ == "__main__":
    main()
