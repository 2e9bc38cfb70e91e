"""The batch report on the demo: the demo mushroom U-Net on held-out procedural mushrooms.

    python -m models.report --out docs/report [--regions gt|class] [--eval-seed N] [report flags ...]

Image i is drawn from `default_rng([seed, i])` with `models.mushrooms.EVAL_SEED` by default, a seed never used in
training. With `--regions gt` (the default) every ground-truth part present (background excluded) is one region with
its own class as the target; `--regions class` uses the predicted parts instead. Each case carries its image's ground
truth, so the report has an errors section (per-class IoU, false positives and negatives, the largest error
explained). Everything else is the engine's report (`explainers.report`): the same flags, measurements and files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from explainers.adapter import SegmentationAdapter
from explainers.report import Case, CaseSource, label_regions, run_report
from explainers.report.cli import command_line, parser
from models.mushrooms import BACKGROUND, EVAL_SEED, generate_sample


def procedural_cases(
    adapter: SegmentationAdapter, regions: str, limit: int, min_pixels: int, seed: int | None = None
) -> Iterator[Case]:
    """Held-out procedural mushrooms, image i drawn from default_rng([seed, i]); background is never a region."""
    seed = EVAL_SEED if seed is None else seed
    size = adapter.input_size or (128, 128)
    count, index = 0, 0
    while count < limit:
        image, truth = generate_sample(np.random.default_rng([seed, index]), size=size[0])
        labels = truth if regions == "gt" else adapter.predict(image).argmax(-1)
        source = "ground truth" if regions == "gt" else "predicted"
        for region, target in label_regions(adapter.num_classes, labels, {BACKGROUND}, min_pixels):
            if count >= limit:
                return
            yield Case(f"eval-{seed}-{index}", image, region, target, source, truth=truth)
            count += 1
        index += 1


def procedural_source(
    adapter: SegmentationAdapter, regions: str, limit: int, min_pixels: int, seed: int | None = None
) -> CaseSource:
    """`procedural_cases` with its description for the report."""
    what = "ground-truth parts" if regions == "gt" else "predicted parts"
    seed_text = f"seed {seed}" if seed is not None else f"EVAL_SEED = {EVAL_SEED}"
    return CaseSource(
        procedural_cases(adapter, regions, limit, min_pixels, seed),
        f"Held-out procedural mushrooms ({seed_text}, never used in training), {what}",
        f"one per (held-out image, {what[:-1]} present), background excluded, at least {min_pixels} px, "
        f"first {limit} in image order.",
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """`python -m models.report`: the engine's report on the demo model and the held-out procedural set."""
    from models import CLASS_NAMES, load_demo_model

    prog = "python -m models.report"
    flags = parser(prog, folder_required=False)
    flags.add_argument("--regions", choices=("gt", "class"), default="gt",
                       help="gt: ground-truth parts (default); class: predicted parts")  # fmt: skip
    flags.add_argument("--eval-seed", type=int, default=None, help="procedural image seed (default EVAL_SEED)")
    args = flags.parse_args(argv)
    adapter = SegmentationAdapter(load_demo_model(), class_names=list(CLASS_NAMES))
    source = procedural_source(adapter, args.regions, args.limit, args.min_pixels, args.eval_seed)
    return run_report(adapter, "demo mushroom U-Net", source, args, command_line(prog, argv))


if __name__ == "__main__":
    main()
