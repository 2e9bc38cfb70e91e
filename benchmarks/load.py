"""Load benchmark of the scaled-out deployment (issue 7): concurrent browser sessions over HTTP, on loopback.

`run()` starts a local deployment (`benchmarks.deployment`: redis-server, one Celery worker with a thread pool, and
``gunicorn -w 2 app:server`` with threaded workers; all on 127.0.0.1), waits until its start-up work has gone quiet and
warms it with one session, then runs `sessions` concurrent sessions for `duration` seconds. Each session is a thread
driving its own `app_server.DashClient` (the renderer model of the app benchmark: page load, the callbacks a prop
change triggers, background jobs started and polled with their signed handles) through cycles of

    select   a box on the mask (every third cycle a new gallery sample first) -> the fast methods' heatmaps
    explain  tick a slow method (`slow_method`, a background job on the worker) -> its card
    slider   two moves of the CAM layer slider -> patched heatmaps
    untick   the slow method again (cards re-rendered from stored results, no job)

with a think time (uniform in [think/2, 3 think/2]) between interactions, as a person has. Bounds: no interaction
starts after `duration`; each has `interaction_timeout`; every HTTP request counts against `max_requests` and the
whole run stops when it is spent; only loopback URLs are accepted.

Reported: throughput (requests/s, interactions/s, cycles), latency percentiles of every HTTP request and of each
interaction (select: user event -> fast heatmaps applied; slider: event -> figure patch applied; explain: tick -> job
card applied, i.e. queue + compute on the worker, not a request), errors (HTTP errors, timeouts, app error messages,
failed cards), and the CPU seconds each tier used, which tells a saturated machine from a slow component.
Target (issue 7): 0 errors, p95 < 2 s, checked for every request and for the requests that are not job polls (polls
are many and cheap, and would hide slow answers).

    python -m benchmarks.load [--sessions 16] [--duration 60] [--think 1.0] [--json benchmarks/out/load.json]

The results go to `--json` and into their own section of benchmarks/RESULTS.md (between the LOAD_BEGIN/LOAD_END
markers; `benchmarks.run` keeps that section when it re-renders the file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil

from benchmarks import sections
from benchmarks.app_server import (
    LAYER,
    METHODS,
    SLOW_GRID,
    BenchmarkError,
    DashClient,
    Interaction,
    _image_shape,
    _is_fast_grid,
    _is_heatmap_figure,
    _is_slow_grid,
    _pick_sample,
    _sample_ids,
    _select_box,
    random_boxes,
    summarize,
)
from benchmarks.deployment import Deployment, Service

HERE = Path(__file__).resolve().parent
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TARGET_P95_MS = 2000.0
LOAD_BEGIN = "<!-- LOAD_BEGIN (written by benchmarks/load.py) -->"
LOAD_END = "<!-- LOAD_END -->"


class BudgetSpent(BenchmarkError):
    """The run's request budget is used up."""


class RequestBudget:
    """A thread-safe count of HTTP requests against a maximum."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used, self._lock = limit, 0, threading.Lock()

    def take(self) -> None:
        with self._lock:
            if self.used >= self.limit:
                raise BudgetSpent(f"request budget of {self.limit} spent")
            self.used += 1

    @property
    def spent(self) -> bool:
        return self.used >= self.limit


class LoadClient(DashClient):
    """A DashClient whose every POST counts against the shared budget."""

    def __init__(self, base_url: str, budget: RequestBudget, timeout: float) -> None:
        super().__init__(base_url, timeout=timeout, max_workers=4)
        self.budget = budget

    def _post(self, url: str, body: Mapping[str, Any]) -> tuple[float, float, float, int, bytes]:
        self.budget.take()
        return super()._post(url, body)


def check_loopback(url: str) -> str:
    """`url` if its host is a loopback address; ValueError otherwise (this benchmark never leaves the machine)."""
    host = urlparse(url).hostname
    if host not in LOOPBACK:
        raise ValueError(f"refusing to load {url}: only loopback hosts ({', '.join(sorted(LOOPBACK))})")
    return url


@dataclass
class SessionLog:
    """What one session did: (kind, interaction) pairs, and errors as (kind, message)."""

    index: int
    interactions: list[tuple[str, Interaction]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    cycles: int = 0
    page_load_ms: float = math.nan


def app_error(client: DashClient, kind: str) -> str | None:
    """An error the app showed after an interaction (a danger message, a failure card), or None."""
    page = client.page
    assert page is not None
    if page.get("message", "is_open") and page.get("message", "color") == "danger":
        return f"message: {page.get('message', 'children')}"
    if kind == "explain":
        for card in page.get(SLOW_GRID, "children") or []:
            if "hm-card-failed" in str(card.get("props", {}).get("className", "")):
                return f"failed card: {card['props'].get('data-method')}"
    return None


def chain_ms(kind: str, inter: Interaction) -> float | None:
    """The user-facing latency of an interaction: event -> the update the user waits for."""
    if kind == "select":
        return inter.first_update(_is_fast_grid)
    if kind == "slider":
        return inter.first_update(_is_heatmap_figure)
    if kind == "explain":
        return inter.last_update(_is_slow_grid)
    return inter.settle_ms


def run_session(
    index: int,
    url: str,
    *,
    deadline: float,
    budget: RequestBudget,
    think: float,
    slow_method: str,
    interaction_timeout: float,
    seed: int,
) -> SessionLog:
    """One browser session: page load, then select -> explain -> slider -> untick cycles until `deadline`."""
    log = SessionLog(index)
    rng = random.Random(seed * 1000 + index)
    client = LoadClient(url, budget, timeout=interaction_timeout)

    def pause() -> None:
        time.sleep(rng.uniform(think / 2, 3 * think / 2) if think > 0 else 0.0)

    def step(kind: str, action: Callable[[], Interaction]) -> bool:
        """Run one interaction; False when the run must stop (deadline, budget)."""
        if time.monotonic() >= deadline or budget.spent:
            return False
        try:
            inter = action()
        except BudgetSpent:
            return False
        except Exception as err:
            log.errors.append((kind, f"{type(err).__name__}: {str(err)[:300]}"))
            return True
        log.interactions.append((kind, inter))
        problem = app_error(client, kind)
        if problem:
            log.errors.append((kind, problem))
        pause()
        return True

    try:
        start = time.perf_counter()
        client.load_page()
        log.page_load_ms = 1000 * (time.perf_counter() - start)
        page = client.page
        assert page is not None
        samples = _sample_ids(page)
        base_methods = [m for m in page.get(METHODS, "value") or [] if m != slow_method]
        n_layers = int(page.index[LAYER]["props"].get("max", 0)) + 1
        pause()
        while True:
            if log.cycles % 3 == 0 and samples:
                sample = samples[(index + log.cycles // 3) % len(samples)]
                if not step("sample", lambda s=sample: _pick_sample(client, s)):
                    break
            box = random_boxes(1, *_image_shape(page), rng)[0]
            if not step("select", lambda b=box: _select_box(client, b)):
                break
            explain = [(METHODS, "value", [*base_methods, slow_method])]
            if not step("explain", lambda e=explain: client.interact("explain", e, timeout=interaction_timeout)):
                break
            for _ in range(2):
                position = rng.randrange(n_layers)
                if not step("slider", lambda p=position: client.interact("slider", [(LAYER, "value", p)])):
                    break
            untick = [(METHODS, "value", list(base_methods))]
            if not step("untick", lambda u=untick: client.interact("untick", u)):
                break
            log.cycles += 1
    except Exception as err:
        log.errors.append(("session", f"{type(err).__name__}: {str(err)[:300]}"))
    finally:
        client.close()
    return log


def warm_up(url: str, slow_method: str) -> None:
    """One session's select and explain, so the worker has loaded the model before the measured run."""
    client = DashClient(url, timeout=180)
    try:
        client.load_page()
        page = client.page
        assert page is not None
        samples = _sample_ids(page)
        if samples:
            _pick_sample(client, samples[0])
        _select_box(client, random_boxes(1, *_image_shape(page), random.Random(-1))[0])
        methods = [*list(page.get(METHODS, "value") or []), slow_method]
        client.interact("explain", [(METHODS, "value", methods)], timeout=180)
        problem = app_error(client, "explain")
        if problem:
            raise BenchmarkError(f"warm-up failed: {problem}")
    finally:
        client.close()


class TreeCpu:
    """CPU seconds used by each service's process tree since `start()`."""

    def __init__(self, services: Mapping[str, Service | psutil.Process]) -> None:
        self.services = services
        self.before: dict[str, float] = {}

    def _tree(self, service: Service | psutil.Process) -> list[psutil.Process]:
        if isinstance(service, psutil.Process):
            return [service]
        return [p for p in [service.ps, *service.children()] if p is not None]

    def read(self) -> dict[str, float]:
        totals = {}
        for name, service in self.services.items():
            total = 0.0
            for proc in self._tree(service):
                try:
                    times = proc.cpu_times()
                    total += times.user + times.system
                except psutil.Error:
                    pass
            totals[name] = total
        return totals

    def start(self) -> None:
        self.before = self.read()

    def used(self) -> dict[str, float]:
        return {name: round(value - self.before.get(name, 0.0), 1) for name, value in self.read().items()}


def summarize_run(logs: Sequence[SessionLog], elapsed: float) -> dict[str, Any]:
    """Throughput, latencies and errors of all sessions."""
    requests = [rec for log in logs for _, inter in log.interactions for rec in inter.requests]
    by_kind: dict[str, list[float]] = {}
    for log in logs:
        for kind, inter in log.interactions:
            value = chain_ms(kind, inter)
            if value is not None:
                by_kind.setdefault(kind, []).append(value)
    request_kinds: dict[str, list[float]] = {}
    for rec in requests:
        request_kinds.setdefault(rec.kind, []).append(rec.total_ms)
    errors = [(log.index, kind, text) for log in logs for kind, text in log.errors]
    n_interactions = sum(len(log.interactions) for log in logs)
    request_stats = summarize([rec.total_ms for rec in requests])
    answer_stats = summarize([rec.total_ms for rec in requests if rec.kind != "job-poll"])
    interactive = by_kind.get("select", []) + by_kind.get("slider", []) + by_kind.get("untick", [])
    return {
        "elapsed_s": round(elapsed, 1),
        "throughput": {
            "requests": len(requests),
            "requests_per_s": round(len(requests) / elapsed, 1) if elapsed else None,
            "interactions": n_interactions,
            "interactions_per_s": round(n_interactions / elapsed, 2) if elapsed else None,
            "cycles": sum(log.cycles for log in logs),
        },
        "request_ms": request_stats,
        "answer_ms": answer_stats,
        "request_ms_by_kind": {kind: summarize(values) for kind, values in sorted(request_kinds.items())},
        "request_ms_values": {kind: [round(v, 1) for v in values] for kind, values in sorted(request_kinds.items())},
        "interaction_ms": {kind: summarize(values) for kind, values in sorted(by_kind.items())},
        "interactive_ms": summarize(interactive),
        "page_load_ms": summarize([log.page_load_ms for log in logs if not math.isnan(log.page_load_ms)]),
        "errors": {"count": len(errors), "samples": [list(e) for e in errors[:10]]},
        "target": {
            "errors": 0,
            "request_p95_ms": TARGET_P95_MS,
            "met": bool(not errors and all(stats["p95"] is not None and stats["p95"] < TARGET_P95_MS
                                           for stats in (request_stats, answer_stats))),
        },
    }


def run(
    sessions: int = 16,
    duration: float = 60.0,
    *,
    think: float = 1.0,
    slow_method: str = "smoothgrad",
    max_requests: int = 40_000,
    interaction_timeout: float = 60.0,
    url: str | None = None,
    seed: int = 0,
    verbose: bool = True,
    log_dir: str | Path = HERE / "out" / "load-logs",
) -> dict[str, Any]:
    """Start a local deployment (unless `url` names a loopback one), warm it, load it; JSON-ready results."""
    started = time.perf_counter()

    def say(text: str) -> None:
        if verbose:
            print(f"[{time.perf_counter() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    meta: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sessions": sessions,
        "duration_s": duration,
        "think_s": think,
        "slow_method": slow_method,
        "max_requests": max_requests,
        "deployment": "redis-server + 1 Celery worker (-P threads -c 2) + gunicorn -w 2 (gthread, 4 threads)"
        if url is None else url,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="segx-load-") as tmp:
        deployment = None if url else Deployment(Path(tmp))
        try:
            if deployment is not None:
                say("starting redis-server, the Celery worker and gunicorn -w 2")
                meta["startup_s"] = round(deployment.start(), 1)
                say(f"serving after {meta['startup_s']} s; waiting for start-up work to go quiet")
                deployment.web.wait_quiet(timeout=180)
                deployment.worker.wait_quiet(timeout=180)
                url = deployment.url
            target = check_loopback(str(url))
            budget = RequestBudget(max_requests)
            say("warm-up session (the model in the worker, its first job)")
            warm_up(target, slow_method)
            cpu = TreeCpu(
                {"web": deployment.web, "worker": deployment.worker, "redis": psutil.Process(deployment.redis.proc.pid)}
                if deployment is not None and deployment.redis.proc is not None else {}
            )  # fmt: skip
            cpu.start()
            machine_before = psutil.cpu_times()
            say(f"{sessions} sessions for {duration:.0f} s")
            deadline = time.monotonic() + duration
            logs: list[SessionLog] = [SessionLog(k) for k in range(sessions)]

            def worker(k: int) -> None:
                time.sleep(k * 0.1)  # ramp up over ~1.6 s
                logs[k] = run_session(
                    k, target, deadline=deadline, budget=budget, think=think, slow_method=slow_method,
                    interaction_timeout=interaction_timeout, seed=seed,
                )  # fmt: skip

            load_start = time.perf_counter()
            threads = [threading.Thread(target=worker, args=(k,), name=f"session-{k}") for k in range(sessions)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=duration + interaction_timeout + 60)
            elapsed = time.perf_counter() - load_start
            machine_after = psutil.cpu_times()
            result = summarize_run(logs, elapsed)
            result["cpu_s"] = cpu.used()
            busy = (sum(machine_after) - machine_after.idle) - (sum(machine_before) - machine_before.idle)
            result["cpu_s"]["machine_busy"] = round(busy, 1)
            result["cpu_s"]["machine_capacity"] = round(elapsed * (os.cpu_count() or 1), 1)
            result["requests_budget_used"] = budget.used
        finally:
            if deployment is not None:
                deployment.stop()
                logs_dir = Path(log_dir)
                logs_dir.mkdir(parents=True, exist_ok=True)
                for name, path in (("web.log", deployment.web.log_path), ("worker.log", deployment.worker.log_path),
                                   ("redis.log", deployment.redis.directory / "redis.log")):  # fmt: skip
                    if Path(path).exists():
                        shutil.copyfile(path, logs_dir / name)
                say(f"deployment stopped; its logs are in {logs_dir}")
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["wall_s"] = round(time.perf_counter() - started, 1)
    return {"meta": meta, **result}


def _fmt(stats: Mapping[str, Any], key: str) -> str:
    value = stats.get(key)
    return "-" if value is None else f"{value:.0f}"


def markdown_section(result: Mapping[str, Any]) -> str:
    """The RESULTS.md section of a load run, between the LOAD markers."""
    meta, thr, req = result["meta"], result["throughput"], result["request_ms"]
    answer = result.get("answer_ms") or {}
    errors = result["errors"]
    lines = [
        LOAD_BEGIN,
        "## Load: scaled-out deployment (`python -m benchmarks.load`)",
        "",
        f"{meta['date']}, {meta['cpus']} cores (shared), {meta['deployment']}; {meta['sessions']} concurrent sessions "
        f"for {meta['duration_s']:.0f} s, think time ~{meta['think_s']} s, slow method `{meta['slow_method']}`; "
        f"load average {tuple(meta['loadavg_start'])} at start, {tuple(meta['loadavg_end'])} at end.",
        "",
        "| target | measured | goal | met |",
        "| --- | --- | --- | --- |",
        f"| errors | {errors['count']} | 0 | {'yes' if errors['count'] == 0 else '**no**'} |",
        *[f"| {name} p95 | {_fmt(stats, 'p95')} ms (p50 {_fmt(stats, 'p50')}) | < {TARGET_P95_MS:.0f} ms | "
          f"{'yes' if stats.get('p95') is not None and stats['p95'] < TARGET_P95_MS else '**no**'} |"
          for name, stats in (("every HTTP request", req), ("requests without job polls", answer))],
        "",
        f"Throughput: {thr['requests']} requests ({thr['requests_per_s']}/s), {thr['interactions']} interactions "
        f"({thr['interactions_per_s']}/s), {thr['cycles']} full cycles in {result['elapsed_s']} s.",
        "",
        "| latency (ms) | n | p50 | p95 | max |",
        "| --- | --- | --- | --- | --- |",
    ]
    rows = [("every request", req)]
    rows += [(f"request: {kind}", stats) for kind, stats in result["request_ms_by_kind"].items()]
    labels = {"select": "select -> fast heatmaps", "slider": "slider -> heatmap patch", "untick": "untick -> cards",
              "explain": "explain -> job card (queue + compute)", "sample": "new sample -> mask"}  # fmt: skip
    rows += [(labels.get(kind, kind), stats) for kind, stats in result["interaction_ms"].items()]
    rows.append(("page load", result["page_load_ms"]))
    lines += [f"| {name} | {s['n']} | {_fmt(s, 'p50')} | {_fmt(s, 'p95')} | {_fmt(s, 'max')} |" for name, s in rows]
    lines += ["", "Requests are what the web tier answers; “explain -> job card” is the wait for a background job, "
              "mostly in the queue of the one Celery worker (every session submits one per cycle), so it shrinks with "
              "more workers, not with a faster web tier."]  # fmt: skip
    cpu = result.get("cpu_s") or {}
    if cpu:
        ours = sum(v for k, v in cpu.items() if k in ("web", "worker", "redis"))
        lines += ["", "CPU seconds used during the run: " + ", ".join(f"{k} {v}" for k, v in cpu.items())
                  + f"; other processes on the (shared) machine: {cpu.get('machine_busy', 0) - ours:.1f}."]  # fmt: skip
    if errors["samples"]:
        first = "; ".join(f"session {i} {kind}: {text}" for i, kind, text in errors["samples"])
        lines += ["", f"First errors: {first}"]
    lines += [LOAD_END]
    return "\n".join(lines)


def extract_section(text: str) -> str:
    """The load section of a RESULTS.md text (markers included), or ''."""
    return sections.extract_section(text, LOAD_BEGIN, LOAD_END)


def write_section(path: Path, section: str) -> None:
    """Replace the load section of `path` (or append it)."""
    sections.write_section(path, section, LOAD_BEGIN, LOAD_END)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--think", type=float, default=1.0, help="mean think time between interactions (s)")
    parser.add_argument("--slow-method", default="smoothgrad", help="the background-job method of the explain step")
    parser.add_argument("--max-requests", type=int, default=40_000, help="stop when this many requests were made")
    parser.add_argument("--url", help="a running loopback deployment instead of starting one")
    parser.add_argument("--json", default=str(HERE / "out" / "load.json"))
    parser.add_argument("--markdown", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--from-json", help="only re-render the RESULTS.md section from an earlier run's JSON")
    args = parser.parse_args(argv)
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
    else:
        result = run(args.sessions, args.duration, think=args.think, slow_method=args.slow_method,
                     max_requests=args.max_requests, url=args.url)  # fmt: skip
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    section = markdown_section(result)
    write_section(Path(args.markdown), section)
    print(section)
    return result


if __name__ == "__main__":
    main()
