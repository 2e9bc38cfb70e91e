"""Backend benchmarks: the torch backend's CAM family against its own floor, and every method on the Keras demo model
against its torch twin (the same U-Net and weights, `models.torch_unet`), as ratios measured in one run.

P5a times the four CAM variants for every conv layer of the torch twin (one forward with hooks + one autograd.grad,
through the public `explain`) against one plain forward+backward of the same torch model (autograd.grad of the region
score with respect to the input): target <= 1.3. P5b is the per-method table (median seconds, both backends, same
image, region and class). Timed variants are interleaved round-robin, so load from other processes hits them alike.

`python -m benchmarks.backends [--quick]` prints the rows and replaces the backends section of benchmarks/RESULTS.md;
`python -m benchmarks.run` runs it as part of the full benchmark.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks import sections

BEGIN, END = "<!-- backends:begin -->", "<!-- backends:end -->"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def torch_twin_question() -> tuple[Any, Any, Any, Any, int]:
    """The Keras demo adapter, its torch twin's adapter, the first sample, its largest class region and that class."""
    from benchmarks.methods import demo_question
    from explainers.torch_loading import load_torch_adapter
    from models import CLASS_NAMES
    from models.torch_unet import TORCH_WEIGHTS_PATH

    keras_adapter, image, region, target = demo_question()
    torch_adapter = load_torch_adapter("models.torch_unet:TorchUNet", TORCH_WEIGHTS_PATH, CLASS_NAMES)
    return keras_adapter, torch_adapter, image, region, target


def torch_cam_family(torch_adapter: Any, image: Any, region: Any, target: int, repeats: int) -> dict[str, Any]:
    from benchmarks.engine import interleaved_medians
    from explainers import explain
    from explainers.cam import cam_explainers

    cams = list(cam_explainers())
    spec = torch_adapter.score_spec(region, target, image.shape[:2])
    x = torch_adapter.model_input(image[None])

    def ours() -> None:
        torch_adapter.clear_cache()
        explain(torch_adapter, image, region, target, methods=cams)

    def floor() -> None:
        torch_adapter.backend.input_gradients(x, spec)

    medians = interleaved_medians({"ours": ours, "floor": floor}, repeats)
    return {
        "layers": len(torch_adapter.conv_layers),
        "device": str(torch_adapter.backend.device),
        "ours_ms": 1000 * medians["ours"],
        "floor_ms": 1000 * medians["floor"],
        "ratio_to_floor": medians["ours"] / medians["floor"],
    }


def method_table(adapters: dict[str, Any], image: Any, region: Any, target: int, repeats: int) -> list[dict]:
    """Median seconds of every registered method on each adapter (one warm-up call each, cache cleared per call).

    A method an adapter refuses (a ValueError with the reason, e.g. DeepSHAP on a torch model whose operations shap's
    DeepExplainer cannot handle) gets its reason in `{label}_refused` instead of a time; the table goes on."""
    from explainers import registry

    rows = []
    for name in registry.available():
        explainer = registry.get(name)
        row: dict[str, Any] = {"method": name, "slow": explainer.slow}
        for label, adapter in adapters.items():
            try:
                explainer.explain(adapter, image, region, target)
            except ValueError as error:
                row[f"{label}_s"], row[f"{label}_refused"] = None, str(error)
                continue
            seconds = []
            for _ in range(repeats if not explainer.slow else max(1, repeats // 3)):
                adapter.clear_cache()
                start = time.perf_counter()
                explainer.explain(adapter, image, region, target)
                seconds.append(time.perf_counter() - start)
            row[f"{label}_s"] = statistics.median(seconds)
        rows.append(row)
    return rows


def run(repeats: int = 10, torch_threads: int | None = None) -> dict[str, Any]:
    """Both measurements, on the demo image (128x128); `torch_threads` sets torch's intra-op threads first (None:
    torch's default, one per core). On a machine shared with other busy processes the default is pathological: every
    parallel region waits for a thread the OS has descheduled (measured 10-30x slower at load average 3-5), while one
    thread degrades with the machine's load like TensorFlow does."""
    import torch

    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    keras_adapter, torch_adapter, image, region, target = torch_twin_question()
    return {
        "load_average_at_start": os.getloadavg(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "p5a": torch_cam_family(torch_adapter, image, region, target, repeats),
        "p5b": method_table({"keras": keras_adapter, "torch": torch_adapter}, image, region, target, repeats),
        "load_average_at_end": os.getloadavg(),
    }


def markdown(results: dict[str, Any]) -> str:
    p5a, threads = results["p5a"], results["torch_threads"]
    load = tuple(round(x, 2) for x in results["load_average_at_start"])
    end = tuple(round(x, 2) for x in results["load_average_at_end"])
    lines = [
        BEGIN,
        "## Backends: the torch backend, and the Keras demo model vs its torch twin (`python -m benchmarks.backends`)",
        "",
        f"torch {results['torch']} ({threads} thread{'' if threads == 1 else 's'}, device {p5a['device']}); "
        "demo image 128x128; "
        f"load average {load} at start, {end} at the end (a shared 2-core machine: absolute times are noisy, the "
        "ratio is measured interleaved).",
        "",
        "| target | measured | goal | met |",
        "| --- | --- | --- | --- |",
        f"| P5a torch: 4 CAMs x {p5a['layers']} layers / one fwd+bwd | {p5a['ratio_to_floor']:.2f} "
        f"({p5a['ours_ms']:.1f} vs {p5a['floor_ms']:.1f} ms) | <= 1.3 | "
        f"{'yes' if p5a['ratio_to_floor'] <= 1.3 else '**no**'} |",
        "",
        "| method | Keras demo, ms | torch twin, ms | torch / Keras |",
        "| --- | --- | --- | --- |",
    ]
    lines += [method_row(r) for r in results["p5b"]]
    refused = [(r["method"], label, r[f"{label}_refused"]) for r in results["p5b"] for label in ("keras", "torch")
               if r.get(f"{label}_refused")]  # fmt: skip
    if refused:
        lines += ["", *(f"- {method} refused on {label}: {why}" for method, label, why in refused)]
    lines.append(END)
    return "\n".join(lines)


def method_row(row: dict[str, Any]) -> str:
    """One line of the per-method table; a method a backend refused reads "refused" (the reason is listed below)."""
    keras_s, torch_s = row["keras_s"], row["torch_s"]
    cells = ["refused" if s is None else f"{1000 * s:.1f}" for s in (keras_s, torch_s)]
    ratio = "-" if keras_s is None or torch_s is None else f"{torch_s / keras_s:.2f}"
    return f"| {row['method']} | {cells[0]} | {cells[1]} | {ratio} |"


def extract_section(text: str) -> str:
    """The backends section of a RESULTS.md text (markers included), or ''."""
    return sections.extract_section(text, BEGIN, END)


def write_section(path: Path, section: str) -> None:
    """Replace the backends section of `path` (or append it)."""
    sections.write_section(path, section, BEGIN, END)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--markdown", default=str(RESULTS))
    parser.add_argument("--torch-threads", type=int, help="torch intra-op threads (default: torch's, one per core)")
    args = parser.parse_args()
    results = run(3 if args.quick else 10, args.torch_threads)
    section = markdown(results)
    print(section)
    write_section(Path(args.markdown), section)


if __name__ == "__main__":
    main()
