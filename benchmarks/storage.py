"""S4 (issue 15): what one question stores, and the export's size and time, on the 512x512 DeepLab-class model.

In one process: the DeepLabV3+ of `benchmarks.deeplab` (52 conv layers, 512x512, random weights) served by the
dashboard's own use cases over a disk state store. For `--questions` boxes on a sample image it runs the fast set
(the four CAMs at every layer, saliency, gradient x input) through `analysis.compute`, as a selection does, and
reports the bytes the store gained per question (goal <= 8 MB: maps are kept compact, `dashboard.state.records`).
Then it exports the last question through the streaming export (`trust.metrics.export_members` + `stream_zip`, what
the route sends) and reports the zip's size (goal < 50 MB) and the time to make it (goal < 5 s).

    python -m benchmarks.storage [--questions 5] [--markdown PATH]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import sections
from benchmarks.fast_pass import fast_methods, sample_question

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- storage:begin -->", "<!-- storage:end -->"


def folder_bytes(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def run(questions: int = 5) -> dict[str, Any]:
    from benchmarks.deeplab import deeplabv3plus
    from dashboard.state.resources import methods as method_infos
    from dashboard.state.store import DiskStore, new_session_id
    from dashboard.trust import metrics
    from dashboard.usecases import analysis, export
    from explainers import SegmentationAdapter

    model = deeplabv3plus((512, 512))
    adapter = SegmentationAdapter(model, class_names=[f"class {i}" for i in range(model.output_shape[-1])])
    image, region = sample_question((512, 512))
    methods = fast_methods()
    infos = {info.name: info for info in method_infos()}
    with tempfile.TemporaryDirectory() as folder:
        store = DiskStore(folder)
        session = new_session_id()
        image_ref = analysis.ingest_image(store, session, adapter, image, name="sample")
        per_question, seconds = [], []
        question: dict[str, Any] = {}
        for index in range(questions):
            mask = np.roll(region, 8 * index, axis=1)
            region_ref = analysis.ingest_region(store, session, image_ref["key"], mask, "box")
            question = {"image": image_ref["key"], "region": region_ref["key"], "target": 1, "contrast": None,
                        "label": "box"}  # fmt: skip
            before = folder_bytes(folder)
            start = time.perf_counter()
            analysis.compute(adapter, store, session, question, methods)
            seconds.append(time.perf_counter() - start)
            per_question.append(folder_bytes(folder) - before)
        start = time.perf_counter()
        members, _ = metrics.export_members(
            store, session, question, methods, adapter.default_layer, signed={m: infos[m].signed for m in methods},
            labels={m: infos[m].label for m in methods}, class_names=list(adapter.class_names), model="deeplab512")
        size = sum(len(chunk) for chunk in export.stream_zip(members))
        export_s = time.perf_counter() - start
    return {"conv_layers": len(adapter.conv_layers), "questions": questions,
            "stored_bytes_per_question": float(np.median(per_question)), "stored_bytes_all": per_question,
            "compute_s_median": float(np.median(seconds[1:] or seconds)), "export_bytes": size,
            "export_s": export_s}  # fmt: skip


def markdown_section(result: dict[str, Any]) -> str:
    mb = 1024**2
    stored, size, secs = result["stored_bytes_per_question"] / mb, result["export_bytes"] / mb, result["export_s"]
    return "\n".join([
        BEGIN, "", "## S4 storage and export at 512x512 (`python -m benchmarks.storage`)", "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, load average at end "
        f"{tuple(round(v, 2) for v in os.getloadavg())}. DeepLabV3+ (ResNet50, {result['conv_layers']} conv layers), "
        f"the fast set for {result['questions']} box questions through the dashboard's use cases and a disk store.",
        "", "| target | measured | goal | met |", "| --- | --- | --- | --- |",
        f"| stored per question (fast set, median) | {stored:.1f} MB | <= 8 MB | "
        f"{'yes' if stored <= 8 else '**no**'} |",
        f"| export zip size (streamed) | {size:.1f} MB | < 50 MB | {'yes' if size < 50 else '**no**'} |",
        f"| export time | {secs:.2f} s | < 5 s | {'yes' if secs < 5 else '**no**'} |",
        "", END])  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--markdown", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args(argv)
    result = run(args.questions)
    print(result)
    section = markdown_section(result)
    sections.write_section(Path(args.markdown), section, BEGIN, END)
    print(section)


if __name__ == "__main__":
    main()
