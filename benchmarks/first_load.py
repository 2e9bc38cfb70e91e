"""The first page load after gunicorn starts: fresh ``gunicorn -w 2 app:server`` starts, each hit at once by many
threads that load the index and every script it lists, as browsers arriving right after a restart or scale-up do.

Dash fills its registry of servable component-suite files while it renders the index page, so a worker asked for a
script before it rendered the index answered 500 ("dash" is not a registered library; plotly/dash#3971).
`gunicorn.conf.py`'s `post_worker_init` hook renders the index in each worker before it takes traffic.

    python -m benchmarks.first_load --starts 10        # prints failures per start and in total

Needs Debian's ``redis-server`` (the web tier is started as in the scale-out deployment, with REDIS_URL).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

from benchmarks.deployment import RedisServer, web_service

SCRIPT_RE = re.compile(r"<script[^>]*\ssrc=\"([^\"]+)\"")


def listed_scripts(index_html: str) -> list[str]:
    """The `src` of every script tag of an index page, in order."""
    return SCRIPT_RE.findall(index_html)


@dataclass
class LoadProbe:
    """What one start's burst of page loads saw."""

    requests: int = 0
    failures: Counter = field(default_factory=Counter)  # "status path" -> count
    first_errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def wait_listening(url: str, timeout: float = 120.0) -> None:
    """Wait until the server's port accepts TCP connections (gunicorn binds before its workers are ready: requests
    then wait in the backlog for the first worker)."""
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {url} after {timeout} s")


def burst(url: str, threads: int = 16, rounds: int = 4, timeout: float = 180.0) -> LoadProbe:
    """Many browsers arriving at once: the index is read once (so the script list is known), then `threads` threads
    each request the index and every script it lists, `rounds` times, in a shuffled order and each over a new
    connection. A page's scripts are fetched over several connections, so they reach workers that never served that
    page's index (a browser that got the index from one worker asks another for the scripts)."""
    probe = LoadProbe()
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def record(path: str, status: int | str, body: str = "") -> None:
        with lock:
            probe.requests += 1
            if status != 200:
                probe.failures[f"{status} {path.split('?')[0]}"] += 1
                if len(probe.first_errors) < 3:
                    probe.first_errors.append(f"{status} {path}: {body[:300]}")

    def get(path: str) -> requests.Response | None:
        try:
            with requests.Session() as session:
                resp = session.get(url + path, timeout=timeout)
        except requests.RequestException as err:
            record(path, type(err).__name__, str(err))
            return None
        record(path, resp.status_code, resp.text if resp.status_code != 200 else "")
        return resp

    index = get("/")
    if index is None or index.status_code != 200:
        return probe
    paths = ["/", *(src if src.startswith("/") else "/" + src for src in listed_scripts(index.text))]

    def load(seed: int) -> None:
        order = random.Random(seed)
        start.wait()
        for _ in range(rounds):
            for path in order.sample(paths, len(paths)):
                get(path)

    pool = [threading.Thread(target=load, args=(k,), name=f"first-load-{k}") for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return probe


def fresh_start(redis_url: str, directory: Path, threads: int = 16, rounds: int = 4) -> LoadProbe:
    """Start ``gunicorn -w 2 app:server``, hit it the moment it listens, stop it."""
    directory.mkdir(parents=True, exist_ok=True)
    web = web_service(redis_url, directory)
    web.start()
    try:
        wait_listening(web.url)
        return burst(web.url, threads=threads, rounds=rounds)
    finally:
        web.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="segx-first-load-") as tmp:
        redis = RedisServer(Path(tmp) / "redis")
        redis.start()
        try:
            results = []
            for k in range(args.starts):
                probe = fresh_start(redis.url, Path(tmp) / f"start-{k}", args.threads, args.rounds)
                results.append(probe)
                print(json.dumps({"start": k, "requests": probe.requests, "failed": probe.failed,
                                  "failures": dict(probe.failures)}), flush=True)  # fmt: skip
        finally:
            redis.stop()
    broken = sum(1 for p in results if p.failed)
    print(json.dumps({"starts": len(results), "starts_with_failures": broken,
                      "failed_requests": sum(p.failed for p in results),
                      "requests": sum(p.requests for p in results)}))  # fmt: skip


if __name__ == "__main__":
    main()
