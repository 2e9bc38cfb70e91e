"""Run every benchmark in ONE run on the shipped demo model, print a table, write JSON and benchmarks/RESULTS.md.

`python -m benchmarks.run [--quick] [--skip-peers] [--skip-app]` (the torch rows need requirements-torch.txt).
Targets (issue 4) are checked as ratios measured in this run, never as absolute times in tests: P1 CAM family vs the
forward+backward floor (<= 1.3) and vs a per-layer loop (>= 5x), and vs xplique / tf-keras-vis (faster, Pearson
>= 0.99); P2 interactive latency over HTTP; P3 SHAP evaluations/s vs forward throughput (>= 0.8) and wall time
(< 5 s); P4 server peak RSS (< 1.5 GB); P5 the torch backend's CAM family vs its forward+backward floor (<= 1.3) and
every method on the demo model vs its torch twin; S1 (issue 15) the whole fast set from one pass vs the floor (<= 1.5),
on the demo model and a 512x512 DeepLabV3+ (benchmarks.fast_pass); S2 the first selection vs later ones after the
start-up preparation (<= 1.3, benchmarks.first_selection); S5 an Integrated Gradients run's peak memory growth vs the
memory budget (<= 1, benchmarks.memory_budget). `--only app,backends,fast_pass` (any of methods, app,
first_selection, memory_budget, backends, fast_pass) re-measures only those parts and keeps the other figures of the
last run (the header then says which parts are new).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"


def peers(repeats: int) -> dict[str, Any]:
    """P1(c) in the peers' venv (built by peers_env.sh when missing), as a subprocess."""
    if not PEERS_PYTHON.exists():
        subprocess.run(["bash", str(HERE / "peers_env.sh")], check=True)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([str(PEERS_PYTHON), "-m", "benchmarks.peers", "--repeats", str(repeats), "--json", out.name],
                       check=True, cwd=HERE.parent, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                       stdout=subprocess.DEVNULL)  # fmt: skip
        return json.loads(Path(out.name).read_text())


def devices() -> dict[str, str]:
    """The device each framework computes on here (S7): a CUDA device when there is one, else the CPU."""
    out: dict[str, str] = {}
    try:
        import torch

        out["torch"] = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
    except ImportError:
        out["torch"] = "not installed"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    out["tensorflow"] = f"{len(gpus)} GPU(s)" if gpus else "cpu"
    return out


def machine() -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in ("tensorflow-cpu", "keras", "shap", "dash", "numpy")},
        "load_average_at_start": os.getloadavg(),
        "devices": devices(),
    }


def verdicts(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(target, measured, goal, met) rows for every target with a measurement."""
    rows = []
    p1 = results.get("p1")
    if p1:
        rows.append(
            ("P1a CAM family / fwd+bwd floor", f"{p1['ratio_to_floor']:.2f}", "<= 1.3", p1["ratio_to_floor"] <= 1.3)
        )
        rows.append(
            ("P1b speed-up vs per-layer loop", f"{p1['speedup_vs_loop']:.1f}x", ">= 5x", p1["speedup_vs_loop"] >= 5)
        )
    for name, peer in (results.get("peers") or {}).items():
        if isinstance(peer, dict) and "ms" in peer:
            ours, every = results["peers"]["ours_ms"], results["peers"].get("ours_all_layers_ms")
            measured = f"{ours:.1f} vs {peer['ms']:.1f} ms" + (f" (ours, all layers: {every:.1f})" if every else "")
            rows.append((f"P1c vs {name} (time, one layer)", measured, "ours faster", ours < peer["ms"]))
            rows.append((f"P1c vs {name} (Pearson)", f"{peer['pearson']:.4f}", ">= 0.99", peer["pearson"] >= 0.99))
        elif isinstance(peer, dict) and "error" in peer:
            rows.append((f"P1c vs {name}", peer["error"][:80], "runs", False))
    app = results.get("app")
    if app:
        selection, slider = app["selection"]["chain_ms"], app["slider"]["chain_ms"]
        rows.append(("P2 selection -> fast figures p50", f"{selection['p50']:.0f} ms (p95 {selection['p95']:.0f})",
                     "< 250 ms", selection["p50"] < 250))  # fmt: skip
        rows.append(("P2 layer slider -> figures p50", f"{slider['p50']:.0f} ms (p95 {slider['p95']:.0f})",
                     "< 80 ms", slider["p50"] < 80))  # fmt: skip
        memory = app["memory"]
        rows.append(("P4 peak RSS, server process", f"{memory['server_rss_peak_mb']:.0f} MB", "< 1536 MB",
                     memory["server_rss_peak_mb"] < 1536))  # fmt: skip
        jobs = " and a trust job" if app.get("trust") else ""
        processes = "--job-processes" in app["meta"].get("server_args", [])
        where = "server + its job processes" if processes else "server, jobs in its threads"
        rows.append((f"P4/S6 peak PSS, {where}, after a SHAP job{jobs}", f"{memory['total_pss_peak_mb']:.0f} MB",
                     "< 1536 MB", memory["total_pss_peak_mb"] < 1536))  # fmt: skip
    p5a = (results.get("backends") or {}).get("p5a")
    if p5a:
        rows.append(("P5a torch CAM family / fwd+bwd floor", f"{p5a['ratio_to_floor']:.2f}", "<= 1.3",
                     p5a["ratio_to_floor"] <= 1.3))  # fmt: skip
    for row in (results.get("fast_pass") or {}).get("rows", []):
        rows.append((f"S1 fast set / fwd+bwd floor, {row['model']} {row['size'][0]}x{row['size'][1]}",
                     f"{row['ratio_to_floor']:.2f}", "<= 1.5", row["ratio_to_floor"] <= 1.5))  # fmt: skip
    for row in results.get("first_selection") or []:
        if row["prepared"]:
            rows.append((f"S2 first selection / later, {row['case']} {row['size'][0]}x{row['size'][1]}",
                         f"{row['ratio']:.2f}", "<= 1.3", row["ratio"] <= 1.3))  # fmt: skip
    for row in results.get("memory_budget") or []:
        rows.append((f"S5 IG peak memory growth / budget, {row['case']} {row['size'][0]}x{row['size'][1]}",
                     f"{row['growth_over_budget']:.2f} (batch {row['batch_size']})", "<= 1",
                     row["growth_over_budget"] <= 1))  # fmt: skip
    p3 = results.get("p3")
    if p3:
        rows.append(("P3 SHAP evals/s / forward", f"{p3['ratio']:.2f}", ">= 0.8", p3["ratio"] >= 0.8))
        rows.append(("P3 default shap wall time", f"{p3['shap_s']:.2f} s", "< 5 s", p3["shap_s"] < 5))
    onnx_p3 = results.get("p3_onnx")
    if onnx_p3:  # benchmarks.onnx_blackbox
        rows.append(("P3 ONNX black box: SHAP evals/s / onnxruntime forward", f"{onnx_p3['ratio']:.2f}", ">= 0.8",
                     onnx_p3["ratio"] >= 0.8))  # fmt: skip
    return rows


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Latest `python -m benchmarks.run`: {m['date']}, {m['cpu_count']} cores, {m['platform']},",
        f"Python {m['python']};",
        "versions "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + f"; load average at start {tuple(round(x, 2) for x in m['load_average_at_start'])}.",
        "Devices used: " + ", ".join(f"{k} on {v}" for k, v in (m.get("devices") or {}).items())
        + (" (S7: no CUDA device on this machine; the torch backend moves to one when `torch.cuda.is_available()`)."
           if "cuda" not in str(m.get("devices")) else "."),
        "",
        *([f"Re-measured in this run: {m['parts_measured_now']}; the other rows are from the run before.", ""]
          if m.get("parts_measured_now") else []),
        "| target | measured | goal | met |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {name} | {measured} | {goal} | {'yes' if met else '**no**'} |" for name, measured, goal, met in
              verdicts(results)]  # fmt: skip
    if results.get("methods"):
        lines += ["", "## Each method on the demo model (128x128)", "", "| method | median ms | runs as |",
                  "| --- | --- | --- |"]  # fmt: skip
        lines += [f"| {r['method']} | {1000 * r['median_s']:.1f} | {'background job' if r['slow'] else 'request'} |"
                  for r in results["methods"]]  # fmt: skip
    # Every part's raw numbers (the backends and fast-pass ones too, though their sections render them), so that
    # `--only` keeps the rows of the parts it does not re-measure.
    lines += ["", "## Raw numbers", "", "```json", json.dumps(results, indent=2, default=str), "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--skip-app", action="store_true")
    parser.add_argument("--torch-threads", type=int, help="torch intra-op threads (default: torch's, one per core; "
                        "1 on a machine shared with busy processes, see benchmarks.backends.run)")  # fmt: skip
    parser.add_argument("--json", default=str(HERE / "out" / "results.json"))
    parser.add_argument("--markdown", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--from-json", help="only re-render the table and RESULTS.md from an earlier run's JSON")
    parser.add_argument("--only", help=f"re-measure only these parts (comma-separated: {', '.join(PARTS)}), keeping "
                        "the other figures of the last run (its raw numbers in RESULTS.md)")
    args = parser.parse_args()
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        report(results, args)
        return
    if args.only:
        results = previous_results(Path(args.markdown))
        results.update(measure_parts([p.strip() for p in args.only.split(",") if p.strip()], args))
        results["machine"] = {**machine(), "parts_measured_now": args.only}
        report(results, args)
        return
    from benchmarks import engine, methods

    repeats = 5 if args.quick else 20
    results: dict[str, Any] = {"machine": machine()}
    results["methods"] = methods.time_methods(2 if args.quick else 5)
    results["p1"] = engine.p1_cam_family(repeats)
    results["p3"] = engine.p3_shap(2 if args.quick else 3)
    from benchmarks import backends, onnx_blackbox

    results["backends"] = backends.run(3 if args.quick else 10, args.torch_threads)
    from benchmarks import fast_pass

    results["fast_pass"] = fast_pass.run(3 if args.quick else 7, with_torch=True, torch_threads=args.torch_threads)
    results["p3_onnx"] = onnx_blackbox.p3_onnx_shap(2 if args.quick else 3)
    if not args.skip_peers:
        results["peers"] = peers(repeats)
    if not args.skip_app:
        results.update(measure_parts(["app"], args))
    results.update(measure_parts(["first_selection", "memory_budget"], args))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    report(results, args)


PARTS = ("methods", "p1", "app", "first_selection", "memory_budget", "backends", "fast_pass")


def measure_parts(parts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Measure the named parts of the run (each its own process where it needs a clean one)."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"--only: unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")
    out: dict[str, Any] = {}
    if "methods" in parts:
        from benchmarks import methods

        out["methods"] = methods.time_methods(2 if args.quick else 5)
    if "p1" in parts:
        from benchmarks import engine

        out["p1"] = engine.p1_cam_family(5 if args.quick else 20)
    if "app" in parts:
        from benchmarks import app_server

        out["app"] = app_server.run()
    if "backends" in parts:
        from benchmarks import backends

        out["backends"] = backends.run(3 if args.quick else 10, args.torch_threads)
    if "fast_pass" in parts:
        from benchmarks import fast_pass

        out["fast_pass"] = fast_pass.run(3 if args.quick else 7, with_torch=True, torch_threads=args.torch_threads)
    if "first_selection" in parts:
        from benchmarks import first_selection

        out["first_selection"] = [first_selection.run_in_subprocess(case, prepared) for case in first_selection.CASES
                                  for prepared in (False, True)]  # fmt: skip
    if "memory_budget" in parts:
        from benchmarks import memory_budget
        from explainers.memory import parse_bytes

        out["memory_budget"] = [memory_budget.run_case_in_subprocess(case, parse_bytes("2GB"), 16)
                                for case in memory_budget.CASES]  # fmt: skip
    return out


def previous_results(path: Path) -> dict[str, Any]:
    """The raw numbers of the last run, from the JSON block of RESULTS.md ({} if there is none)."""
    text = path.read_text() if path.exists() else ""
    start = text.find("## Raw numbers")
    block = text.find("```json", start)
    end = text.find("```", block + 7)
    return json.loads(text[block + 7 : end]) if start >= 0 and block >= 0 and end > block else {}


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    for name, measured, goal, met in verdicts(results):
        print(f"{name:<38} {measured:>28}  goal {goal:<12} {'met' if met else 'MISSED'}")
    path = Path(args.markdown)
    from benchmarks import backends, fast_pass, first_selection, load, memory_budget
    from benchmarks.sections import extract_section, write_section

    # The sections of the benchmarks with their own commands (every `<!-- name:begin -->` ... `<!-- name:end -->`, and
    # the load benchmark's) are kept as they are unless this run measured them.
    old = path.read_text() if path.exists() else ""
    markers = [(load.LOAD_BEGIN, load.LOAD_END)]
    names = re.findall(r"<!-- ([\w-]+):begin -->", old)
    markers += [(f"<!-- {name}:begin -->", f"<!-- {name}:end -->") for name in names]
    kept = [extract_section(old, begin, end) for begin, end in markers]
    path.write_text(markdown(results) + "".join(f"\n{section}\n" for section in kept if section))
    if results.get("backends"):
        backends.write_section(path, backends.markdown(results["backends"]))
    if results.get("fast_pass"):
        fast_pass.write_section(path, fast_pass.markdown(results["fast_pass"]))
    if results.get("first_selection"):
        write_section(path, first_selection.markdown_section(results["first_selection"]), first_selection.BEGIN,
                      first_selection.END)  # fmt: skip
    if results.get("memory_budget"):
        write_section(path, memory_budget.markdown_section(results["memory_budget"]), memory_budget.BEGIN,
                      memory_budget.END)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
