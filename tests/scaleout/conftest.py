"""Scale-out test set-up: real components started by the tests themselves, on free loopback ports, in temp dirs.

The components (redis-server, the Celery worker, gunicorn) are managed by `benchmarks.deployment`, which the load
benchmark uses too. Without redis-server the tests skip locally and fail in CI (CI=true), where they must run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from benchmarks.deployment import REDIS_SERVER, RedisServer


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_redis_server() -> None:
    """Without redis-server: skip locally, fail in CI."""
    if os.path.isfile(REDIS_SERVER) and os.access(REDIS_SERVER, os.X_OK):
        return
    reason = f"redis-server not found at {REDIS_SERVER} (apt-get install redis-server)"
    if _in_ci():
        pytest.fail(f"scale-out tests must run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
