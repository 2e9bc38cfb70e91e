"""Uploaded models shared with every host of a scaled-out deployment, through Redis, by sha256.

An uploaded model is checked and re-saved by the web process that received it (`explainers.model_sandbox`) and stored
in that host's models directory as `<sha256>.keras`. A Celery worker on another machine has its own state directory,
so the web host also puts the re-saved file in Redis under ``segx:model:<sha256>`` (with the state store's time to
live, refreshed on every fetch), and a host that lacks the file fetches it into its own models directory on demand
(`fetch_model`, from `resources.session_config`). The bytes are checked against the digest before the file is
written, so only the file the web host checked is ever loaded.

Redis holds each model whole: `AppConfig.max_shared_model_bytes` caps what is shared (64 MiB by default;
`SEGX_MAX_SHARED_MODEL_MB`); a larger model is refused at upload time when Redis is configured.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from dashboard.config import AppConfig, MiB
from dashboard.state.store import redis_client

log = logging.getLogger(__name__)
MODEL_PREFIX = "segx:model:"


class ModelTooLarge(ValueError):
    """The model is larger than what the deployment shares through Redis."""


def model_key(model_id: str) -> str:
    """The Redis key of a shared model."""
    return MODEL_PREFIX + model_id


def _ttl(config: AppConfig) -> int | None:
    ttl = config.model_ttl_s or config.state_expire_s
    return max(1, round(ttl)) if ttl else None


def check_shareable(config: AppConfig, size: int) -> None:
    """ModelTooLarge if a file of `size` bytes cannot be shared with the workers (only when Redis is configured)."""
    if config.redis_url and size > config.max_shared_model_bytes:
        raise ModelTooLarge(
            f"the checked model is {size / MiB:.1f} MiB; this deployment shares models with its workers up to "
            f"{config.max_shared_model_bytes / MiB:.0f} MiB (SEGX_MAX_SHARED_MODEL_MB)."
        )


def publish_model(config: AppConfig, model_id: str, path: str | Path) -> bool:
    """Put the trusted file of `model_id` in Redis for the other hosts; False (logged) if Redis is unreachable or
    not configured. ModelTooLarge over the cap."""
    if not config.redis_url:
        return False
    data = Path(path).read_bytes()
    check_shareable(config, len(data))
    try:
        redis_client(config.redis_url, timeout=10.0).set(model_key(model_id), data, ex=_ttl(config))
    except Exception as err:  # redis.exceptions.RedisError, OSError
        log.warning("could not share model %s through Redis: %s", model_id, err)
        return False
    return True


def fetch_model(config: AppConfig, model_id: str, path: str | Path) -> Path | None:
    """Fetch the shared model `model_id` from Redis into `path` (atomically, after checking its sha256), with the
    suffix its bytes call for (`.keras` for a zip archive, `.onnx` otherwise: the model's own host stored it under the
    kind it checked); returns the file that now holds it, or None."""
    path = Path(path)
    if path.is_file():
        return path
    if not config.redis_url:
        return None
    try:
        client = redis_client(config.redis_url, timeout=10.0)
        data = client.get(model_key(model_id))
        ttl = _ttl(config)
        if data is not None and ttl:
            client.expire(model_key(model_id), ttl)
    except Exception as err:
        log.warning("could not fetch model %s from Redis: %s", model_id, err)
        return None
    if data is None:
        log.warning("model %s is neither in %s nor in Redis (expired?)", model_id, path.parent)
        return None
    if hashlib.sha256(data).hexdigest() != model_id:
        log.error("model %s fetched from Redis does not match its digest; not used", model_id)
        return None
    path = path.with_suffix(".keras" if data[:4] == b"PK\x03\x04" else ".onnx")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".fetch-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("model %s fetched from Redis into %s", model_id, path)
    return path
