"""Wall time of every registered attribution method on the shipped demo model, at its input size.

`python -m benchmarks.methods [--repeats 5]` prints a table: median and min over repeats after one warm-up call (which
pays tf.function tracing and numba compilation once). The per-layer CAM cache is cleared before every timed call, so
CAM times are real passes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


def demo_question() -> tuple[object, np.ndarray, np.ndarray, int]:
    """The demo adapter, the first bundled sample, the region of its largest non-background class, and that class."""
    from PIL import Image

    from explainers import SegmentationAdapter
    from models import CLASS_NAMES, SAMPLES_DIR, load_demo_model

    adapter = SegmentationAdapter(load_demo_model(), class_names=list(CLASS_NAMES))
    image = np.asarray(Image.open(sorted(SAMPLES_DIR.glob("*.png"))[0]).convert("RGB"))
    predicted = adapter.predict(image).argmax(-1)
    counts = np.bincount(predicted.ravel(), minlength=adapter.num_classes)
    counts[0] = 0
    target = int(counts.argmax())
    return adapter, image, predicted == target, target


def time_methods(repeats: int = 5) -> list[dict[str, object]]:
    """One row per registered method: name, median and min seconds over `repeats` timed calls."""
    from explainers import registry

    adapter, image, region, target = demo_question()
    rows = []
    for name in registry.available():
        explainer = registry.get(name)
        explainer.explain(adapter, image, region, target)  # warm-up: tracing, compilation
        seconds = []
        for _ in range(repeats):
            adapter.clear_cache()
            start = time.perf_counter()
            explainer.explain(adapter, image, region, target)
            seconds.append(time.perf_counter() - start)
        rows.append(
            {
                "method": name,
                "median_s": statistics.median(seconds),
                "min_s": min(seconds),
                "slow": explainer.slow,
                "size": list(image.shape[:2]),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = time_methods(args.repeats)
    print(f"{'method':<22} {'median ms':>10} {'min ms':>10}  runs as")
    for row in rows:
        kind = "background job" if row["slow"] else "in request"
        print(f"{row['method']:<22} {1000 * row['median_s']:>10.1f} {1000 * row['min_s']:>10.1f}  {kind}")
    print(
        f"(image {rows[0]['size'][0]}x{rows[0]['size'][1]}, {args.repeats} timed runs each, "
        f"total {time.perf_counter() - started:.0f} s)"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
