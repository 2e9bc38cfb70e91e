"""Scale-out test set-up: real components started by the tests themselves, on free loopback ports, in temp dirs.

- `RedisServer`: Debian's ``/usr/bin/redis-server`` (no persistence), stoppable and restartable on the same port.
- `Service`: a subprocess in its own process group, managed like the benchmark's app server
  (`benchmarks.app_server.AppServer`: log file, descendants remembered, SIGTERM then SIGKILL to the group): the web
  tier under gunicorn (``gunicorn -w 2 app:server``, reading the repository's gunicorn.conf.py) and the Celery worker
  (``celery -A dashboard.celery_worker worker -P threads``).

Without redis-server the tests skip locally and fail in CI (CI=true), where they must run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import psutil
import pytest

from benchmarks.app_server import REPO_ROOT, AppServer, BenchmarkError, free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
SECRET = "scaleout-tests-shared-secret"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _require_redis_server() -> None:
    """Without redis-server: skip locally, fail in CI."""
    if os.path.isfile(REDIS_SERVER) and os.access(REDIS_SERVER, os.X_OK):
        return
    reason = f"redis-server not found at {REDIS_SERVER} (apt-get install redis-server)"
    if _in_ci():
        pytest.fail(f"scale-out tests must run in CI: {reason}")
    pytest.skip(reason)


class RedisServer:
    """A throw-away redis-server on a free loopback port (no RDB/AOF files)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory, self.port = directory, port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> None:
        import redis

        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Service(AppServer):
    """Any command run like the benchmark's app server (own process group, log file, stop() ends the whole tree)."""

    def __init__(self, cmd: Sequence[str], env: Mapping[str, str], log_path: Path, url: str = "") -> None:
        super().__init__(0, "", str(log_path))
        self.cmd, self.env, self.url = list(cmd), dict(env), url

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True)  # fmt: skip
        self.ps = psutil.Process(self.proc.pid)
        self._known_children = {}

    def kill(self) -> None:
        """SIGKILL to the whole process group: a crash, as abrupt as it gets."""
        if self.proc is None:
            return
        self.children()
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.stop()

    def wait_log(self, text: str, timeout: float = 120.0) -> None:
        """Wait until `text` appears in the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise BenchmarkError(f"{self.cmd[:3]} exited:\n{self.log_tail()}")
            if text in Path(self.log_path).read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise BenchmarkError(f"{text!r} not in the log of {self.cmd[:3]} after {timeout} s:\n{self.log_tail()}")


def service_env(redis_url: str, state_dir: Path) -> dict[str, str]:
    """The environment of a web or worker process of the deployment under test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGX_", "REDIS_URL", "DASH_SECRET_KEY"))}
    env.update(REDIS_URL=redis_url, SEGX_STATE_DIR=str(state_dir), DASH_SECRET_KEY=SECRET, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONUNBUFFERED="1")  # fmt: skip
    return env


def worker_service(redis_url: str, directory: Path) -> Service:
    """The Celery worker, with its own state directory (as on another machine: only Redis is shared)."""
    cmd = [sys.executable, "-m", "celery", "-A", "dashboard.celery_worker", "worker", "-P", "threads", "-c", "2",
           "--loglevel=INFO", "--without-mingle", "--without-gossip"]  # fmt: skip
    return Service(cmd, service_env(redis_url, directory / "worker-state"), directory / "worker.log")


def web_service(redis_url: str, directory: Path, workers: int = 2) -> Service:
    """The web tier: ``gunicorn -w N app:server`` on a free port."""
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "app:server"]
    return Service(cmd, service_env(redis_url, directory / "web-state"), directory / "web.log",
                   url=f"http://127.0.0.1:{port}")  # fmt: skip


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
