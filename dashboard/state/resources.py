"""Process-local, lazily built resources: the model adapter, the state store and method metadata.

Nothing here is built at import time. A web worker builds the adapter on first use, and its background jobs, threads
of the same process by default, use that one; a job process (`--job-processes`: forked from the forkserver, which has
only *imported* TensorFlow) or a Celery worker builds its own on first use from the model path in the `AppConfig` (or
its torch factory spec), so the model is never pickled. The caches are keyed by immutable arguments
and guarded by a lock so two threads do not load the same model twice.
"""

from __future__ import annotations

import collections
import functools
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dashboard.config import AppConfig
from dashboard.state.store import StateStore, open_store

if TYPE_CHECKING:
    from explainers import SegmentationAdapter

_LOAD_LOCK = threading.Lock()


MAX_ADAPTERS = 8  # models held at once per process (the configured one and uploaded ones); the least recent goes


def _load_adapter(
    model_path: str | None,
    class_names: tuple[str, ...] | None,
    torch_model: str | None = None,
    torch_weights: str | None = None,
) -> SegmentationAdapter:
    from explainers import SegmentationAdapter

    if torch_model is not None:
        from explainers.torch_loading import load_torch_adapter

        return load_torch_adapter(torch_model, torch_weights, class_names, probe=False)
    if model_path is None:
        import models

        model = models.load_demo_model()
        names = list(class_names) if class_names else list(models.CLASS_NAMES)
        return SegmentationAdapter(model, class_names=names)
    from explainers.model_loading import load_adapter

    return load_adapter(model_path, class_names, probe=False)


ModelKey = tuple[str | None, tuple[str, ...] | None, str | None, str | None]
_ADAPTERS: collections.OrderedDict[ModelKey, SegmentationAdapter] = collections.OrderedDict()


def _model_key(config: AppConfig) -> ModelKey:
    return config.model_path, config.class_names, config.torch_model, config.torch_weights


def get_adapter(config: AppConfig) -> SegmentationAdapter:
    """The adapter for the configured model, loaded once per process (at most `MAX_ADAPTERS` held)."""
    key = _model_key(config)
    with _LOAD_LOCK:
        if key in _ADAPTERS:
            _ADAPTERS.move_to_end(key)
            return _ADAPTERS[key]
        adapter = _load_adapter(*key)
        _ADAPTERS[key] = adapter
        while len(_ADAPTERS) > MAX_ADAPTERS:
            _ADAPTERS.popitem(last=False)
        return adapter


def adapter_loaded(config: AppConfig) -> bool:
    """Whether this process holds the configured model now (so `get_adapter` returns at once). Does not wait for a
    load in progress (a dict lookup is atomic), which would then answer False."""
    return _model_key(config) in _ADAPTERS


def session_config(config: AppConfig, session: str | None) -> AppConfig:
    """The configuration serving `session`: `config`, or with the model the session uploaded (see
    `callbacks.model_upload`) when model upload is allowed. The store records only the model's id (a sha256); the
    path is derived here, inside the trusted models directory."""
    if not config.allow_model_upload or not session:
        return config
    try:
        record = get_store(config).get(session, "model", "current")
    except ValueError:  # not a valid session id
        return config
    if not record:
        return config
    from explainers.model_sandbox import trusted_path

    try:
        path = trusted_path(config.models_path, record["id"])
    except (ValueError, KeyError, TypeError):
        return config
    if not path.is_file():
        from dashboard.state.model_store import fetch_model

        fetched = fetch_model(config, record["id"], path)  # uploaded on another host: shared through Redis
        if fetched is None:
            return config
        path = fetched
    from dashboard.state.retention import touch_model

    touch_model(path)  # in use: its retention clock restarts
    names = record.get("class_names")
    return replace(config, model_path=str(path), class_names=tuple(names) if names else None, torch_model=None,
                   torch_weights=None)  # fmt: skip


def get_session_adapter(config: AppConfig, session: str | None) -> SegmentationAdapter:
    """The adapter serving `session` (its uploaded model, or the configured one)."""
    return get_adapter(session_config(config, session))


@functools.lru_cache(maxsize=8)
def _open_store(directory: str, redis_url: str | None, expire: int) -> StateStore:
    return open_store(directory, redis_url=redis_url, expire=expire)


def get_store(config: AppConfig) -> StateStore:
    """The server-side state store of the configuration (diskcache, or diskcache + Redis); one per process."""
    return _open_store(config.state_path, config.redis_url, config.state_expire_s)


@dataclass(frozen=True)
class MethodInfo:
    """What the dashboard needs to know about one registered attribution method."""

    name: str
    label: str
    family: str
    is_cam: bool
    slow: bool
    signed: bool
    defaults: dict[str, Any]
    requires_gradients: bool = True  # False: runs on a black-box model too (forward passes only)


@functools.lru_cache(maxsize=1)
def _methods() -> tuple[MethodInfo, ...]:
    from explainers import registry

    infos = []
    for name in registry.available():
        ex = registry.get(name)
        infos.append(
            MethodInfo(
                name=name, label=str(getattr(ex, "label", name)), family=str(getattr(ex, "family", "")),
                is_cam=bool(getattr(ex, "is_cam", False)), slow=bool(getattr(ex, "slow", False)),
                signed=bool(getattr(ex, "signed", True)), defaults=dict(getattr(ex, "defaults", {}) or {}),
                requires_gradients=bool(getattr(ex, "requires_gradients", True)),
            )
        )  # fmt: skip
    return tuple(infos)


def methods() -> list[MethodInfo]:
    """Every registered method, in the registry's display order."""
    return list(_methods())


def method_info(name: str) -> MethodInfo:
    """Metadata of one registered method; ValueError for unknown names."""
    for info in _methods():
        if info.name == name:
            return info
    raise ValueError(f"Unknown attribution method {name!r}.")
