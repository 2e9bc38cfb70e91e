"""A local scaled-out deployment for benchmarks and tests: redis-server, a Celery worker and gunicorn, on loopback.

- `RedisServer`: Debian's ``redis-server`` on a free loopback port, without persistence; stoppable and restartable on
  the same port.
- `Service`: a command in its own process group, managed like the app benchmark's server (`app_server.AppServer`: a
  log file, descendants remembered, SIGTERM then SIGKILL to the whole group): the web tier under gunicorn
  (``gunicorn -w 2 app:server``, reading the repository's gunicorn.conf.py; `web_service`) and the Celery worker
  (``celery -A dashboard.jobs.celery_worker worker -P threads``; `worker_service`).
- `Deployment`: the three together, started in order and stopped in reverse (a context manager).

The worker gets its own state directory, so everything it reads and writes goes through Redis, as on another machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import psutil

from benchmarks.app_server import REPO_ROOT, AppServer, BenchmarkError, free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
SECRET = "segx-local-deployment-secret"  # loopback only; a real deployment sets its own DASH_SECRET_KEY


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


def worker_service(redis_url: str, directory: Path, threads: int = 2) -> Service:
    """The Celery worker, with its own state directory (as on another machine: only Redis is shared)."""
    cmd = [sys.executable, "-m", "celery", "-A", "dashboard.jobs.celery_worker", "worker", "-P", "threads",
           "-c", str(threads), "--loglevel=INFO", "--without-mingle", "--without-gossip"]  # fmt: skip
    return Service(cmd, service_env(redis_url, directory / "worker-state"), directory / "worker.log")


def web_service(redis_url: str, directory: Path, workers: int = 2) -> Service:
    """The web tier: ``gunicorn -w N app:server`` on a free port."""
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5",
           "app:server"]  # fmt: skip
    return Service(cmd, service_env(redis_url, directory / "web-state"), directory / "web.log",
                   url=f"http://127.0.0.1:{port}")  # fmt: skip



class Deployment:
    """redis-server + a Celery worker + ``gunicorn -w N app:server``, in `directory`; `url` is the web tier's."""

    def __init__(self, directory: Path, web_workers: int = 2, worker_threads: int = 2) -> None:
        self.directory = Path(directory)
        self.redis = RedisServer(self.directory / "redis")
        self.worker = worker_service(self.redis.url, self.directory, threads=worker_threads)
        self.web = web_service(self.redis.url, self.directory, workers=web_workers)
        self.url = self.web.url

    def start(self, timeout: float = 240.0) -> float:
        """Start everything; returns the seconds until the web tier serves and the worker is ready."""
        begin = time.perf_counter()
        self.redis.start()
        self.worker.start()
        self.web.start()
        self.web.wait_serving(timeout=timeout)
        self.worker.wait_log("ready.", timeout=timeout)
        return time.perf_counter() - begin

    def stop(self) -> None:
        self.web.stop()
        self.worker.stop()
        self.redis.stop()

    def __enter__(self) -> Deployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
