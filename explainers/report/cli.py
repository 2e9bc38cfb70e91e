"""The batch report's command line: `python -m explainers.report --model M --images DIR --out DIR [...]`.

It loads the model with the app's own loader (`explainers.model_loading.load_adapter`), makes one case per
(image, predicted class) of the folder, measures every case (`explainers.report.measure`) and writes report.md,
results.json and results.csv (`explainers.report.outputs`). `run_report` takes any case source, which is how
`python -m models.report` runs the same report on the demo model and its held-out procedural set.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from explainers import registry
from explainers.adapter import SegmentationAdapter
from explainers.report.cases import CaseSource, folder_source
from explainers.report.errors import TruthImage, errors_section, truth_image
from explainers.report.measure import default_methods, evaluate_case, summarise
from explainers.report.outputs import write_outputs
from explainers.sanity import DEFAULT_THRESHOLD, RandomizationCascade

DEFAULT_LIMIT = 32
DEFAULT_MIN_PIXELS = 32


def parser(prog: str = "python -m explainers.report", folder_required: bool = True) -> argparse.ArgumentParser:
    """The report's flags (`folder_required=False` for a caller that brings its own cases and model)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Faithfulness, sanity and agreement of attribution methods over many images and regions."
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md, results.json, results.csv")
    if folder_required:
        parser.add_argument("--images", type=Path, required=True, help="a folder of images")
        parser.add_argument("--model", type=Path, required=True, help="a model file the app can serve")
        parser.add_argument("--class-names", help="comma-separated class names for --model")
        parser.add_argument("--ignore-classes", default="", help="comma-separated class names never used as regions")
    parser.add_argument("--methods", nargs="+", help="registry names (default: fast methods + integrated_gradients)")
    parser.add_argument("--shap", action="store_true", help="add the shap (Partition) method")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="at most this many regions (%(default)s)")
    parser.add_argument("--min-pixels", type=int, default=DEFAULT_MIN_PIXELS, help="skip smaller regions")
    parser.add_argument("--steps", type=int, default=20, help="deletion/insertion steps (%(default)s)")
    parser.add_argument("--baseline", default="blur", help="removed-pixel baseline: blur, black or mean")
    parser.add_argument("--ig-steps", type=int, default=32, help="Integrated Gradients: a fixed number of path "
                        "steps (%(default)s; 0 = the method's own defaults, refining to completeness)")  # fmt: skip
    parser.add_argument("--cam-layer", help="conv layer for the CAM methods (default: the last conv layer)")
    parser.add_argument("--sanity-depths", type=int, default=None, help="cascading steps (default 8)")
    parser.add_argument("--no-sanity", action="store_true", help="skip the randomization check")
    parser.add_argument("--sanity-every", type=int, default=2, help="run the randomization check on every k-th "
                        "region (%(default)s; it is the costliest part)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="random order / randomization seed")
    return parser


def method_params(adapter: SegmentationAdapter, args: argparse.Namespace) -> tuple[list[str], dict[str, dict]]:
    """The methods to run and their parameters, from the flags; SystemExit with the reason for a bad choice."""
    methods = list(dict.fromkeys(args.methods or default_methods()))
    if args.shap and "shap" not in methods:
        methods.append("shap")
    for name in methods:
        registry.get(name)  # unknown names fail here, with the choices
    params: dict[str, dict[str, Any]] = {}
    if args.cam_layer:
        if args.cam_layer not in adapter.conv_layers:
            raise SystemExit(f"--cam-layer {args.cam_layer!r} is not a conv layer; choose from {adapter.conv_layers}.")
        params.update({name: {"layer": args.cam_layer} for name in methods if registry.get(name).family == "cam"})
    if "integrated_gradients" in methods and args.ig_steps > 0:
        # A fixed path (no refinement): the check runs IG once per randomization step, where refinement to
        # completeness is costly and beside the point; the completeness error reached is reported.
        params["integrated_gradients"] = {"steps": args.ig_steps, "max_steps": args.ig_steps}
    return methods, params


def run_report(
    adapter: SegmentationAdapter, model_name: str, source: CaseSource, args: argparse.Namespace, command: str
) -> dict[str, Any]:
    """Measure every case of `source` and write the report to `args.out`; returns {"settings", "summary", "cases"}."""
    if args.sanity_every < 1:
        raise SystemExit("--sanity-every must be at least 1.")
    methods, params = method_params(adapter, args)
    sanity_methods = [] if args.no_sanity else [n for n in methods if n not in ("shap", "deep_shap")]
    start, cpu_start = time.perf_counter(), time.process_time()
    cascade = RandomizationCascade(adapter, seed=args.seed, max_depths=args.sanity_depths) if sanity_methods else None
    load_before = os.getloadavg()[0]
    cases = []
    truths: dict[str, TruthImage] = {}
    with tqdm(total=args.limit, desc="regions", unit="region") as bar:
        for index, case in enumerate(source.cases):
            checked = sanity_methods if index % args.sanity_every == 0 else []
            cases.append(evaluate_case(adapter, cascade, case, methods, params, args.steps, args.baseline, checked))
            if case.truth is not None and case.image_id not in truths:
                truths[case.image_id] = truth_image(adapter, case.image_id, case.image, case.truth)
            bar.set_postfix_str(f"{case.image_id} {adapter.class_names[case.target]}")
            bar.update(1)
        bar.total = bar.n  # fewer regions than --limit: end the bar full
        bar.refresh()
    if not cases:
        raise SystemExit("No regions to evaluate (all smaller than --min-pixels?).")
    errors = errors_section(adapter, list(truths.values()), methods, params, args.steps, args.baseline)
    settings = {
        "command": command,
        "model": model_name,
        "class_names": list(adapter.class_names),
        "input": source.input_text,
        "regions_text": source.regions_text,
        "methods": methods,
        "params": params,
        "steps": args.steps,
        "baseline": args.baseline,
        "seed": args.seed,
        "sanity_methods": sanity_methods,
        "cam_layer": args.cam_layer or adapter.default_layer,
        "sanity_threshold": DEFAULT_THRESHOLD,
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {load_before:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end (shared machine)",
        "sanity_every": args.sanity_every,
        "versions": versions(),
    }
    summary = summarise(cases, methods)
    if errors is not None:
        summary["errors"] = errors
    write_outputs(args.out, settings, summary, cases)
    print(f"wrote {args.out / 'report.md'} ({len(cases)} regions, {settings['seconds']:.0f} s)")
    return {"settings": settings, "summary": summary, "cases": cases}


def command_line(prog: str, argv: Sequence[str] | None) -> str:
    """The command as typed, for the report's "Command" line."""
    given = sys.argv[1:] if argv is None else list(argv)
    return f"{prog} " + " ".join(shlex.quote(a) for a in given)


def versions() -> str:
    """Python and the installed versions of the packages the report's numbers depend on (frameworks if present)."""
    names = ("tensorflow-cpu", "tensorflow", "keras", "torch", "onnxruntime", "numpy", "scipy", "scikit-image", "shap")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return f"Python {platform.python_version()}, " + ", ".join(found) + f" (numpy in use {np.__version__})"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """`python -m explainers.report`: a model file and a folder of images."""
    from explainers.model_loading import ModelRefused, load_adapter

    prog = "python -m explainers.report"
    args = parser(prog).parse_args(argv)
    try:
        adapter = load_adapter(args.model, args.class_names.split(",") if args.class_names else None)
    except ModelRefused as refusal:
        raise SystemExit(f"{args.model}: {refusal}") from None
    ignore = {adapter.class_names.index(n) for n in args.ignore_classes.split(",") if n}
    source = folder_source(adapter, args.images, args.limit, args.min_pixels, ignore)
    return run_report(adapter, args.model.name, source, args, command_line(prog, argv))
