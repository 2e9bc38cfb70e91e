"""The app's configuration: a small frozen, picklable value.

It is what background jobs receive (never the model): a job in a thread of the web process finds the adapter there; a
job process or a Celery worker rebuilds it from `model_path` through `resources.get_adapter`; each opens the shared
state store from `state_dir` (and `redis_url` when scaled out).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

MiB = 1024 * 1024


def redis_url_from_env() -> str | None:
    """$REDIS_URL, or None when unset or empty (the embedded default)."""
    return os.environ.get("REDIS_URL") or None


def secret_key_from_env() -> str | None:
    """$DASH_SECRET_KEY: the Flask secret key every web worker shares (Dash signs background-job handles with it)."""
    return os.environ.get("DASH_SECRET_KEY") or None


def parse_positive_int(text: str) -> int:
    """An integer >= 1 written as `text`; ValueError saying why not."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise ValueError(f"must be at least 1, not {value}")
    return value


def job_settings(threads: int | None = None, processes: bool = False) -> dict[str, int | bool | None]:
    """AppConfig's job fields: from the flags (--job-threads, --job-processes) when given, else from
    $SEGX_JOB_THREADS and $SEGX_JOB_PROCESSES=1. ValueError, saying why, for a bad value or both at once (gunicorn's
    master checks this before it starts a worker: gunicorn.conf.py)."""
    if threads is not None or processes:
        if threads is not None and processes:
            raise ValueError("give either --job-threads or --job-processes, not both")
        return {"job_threads": threads, "job_processes": processes}
    text = os.environ.get("SEGX_JOB_THREADS") or None
    try:
        threads = parse_positive_int(text) if text else None
    except ValueError as err:
        raise ValueError(f"$SEGX_JOB_THREADS: {err}") from None
    processes = os.environ.get("SEGX_JOB_PROCESSES") == "1"
    if threads is not None and processes:
        raise ValueError("set either $SEGX_JOB_THREADS or $SEGX_JOB_PROCESSES=1, not both")
    return {"job_threads": threads, "job_processes": processes}


def default_state_dir() -> str:
    """Where server-side state and job results live unless told otherwise ($SEGX_STATE_DIR or a per-user temp dir)."""
    return os.environ.get("SEGX_STATE_DIR") or os.path.join(tempfile.gettempdir(), f"segx-state-{os.getuid()}")


def upload_cap(max_pixels: int) -> int:
    """The byte size of a `max_pixels` image stored as uncompressed 8-bit RGB (BMP, TIFF without compression): the
    largest file that can hold an image the pixel cap accepts (compressed formats are smaller; a 16-bit or RGBA file
    of that size holds fewer pixels)."""
    return 3 * int(max_pixels) + 64 * 1024  # plus room for the headers and metadata


@dataclass(frozen=True)
class AppConfig:
    """Everything a web worker or a job process needs to serve one model.

    Attributes:
        model_path: a `.keras` file, or None for the bundled demo model (or for the torch model below).
        torch_model: a PyTorch model as 'package.module:factory' (`--torch`); every process builds it from this
            spec (`explainers.torch_loading`), so the module is never pickled. Takes precedence over model_path.
        torch_weights: a state dict file for `torch_model` (`--weights`).
        class_names: class names overriding the model's (None: the adapter's defaults / the demo model's names).
        state_dir: directory of the diskcache stores (server-side state and background-job results).
        samples_dir: folder of sample images for the gallery (None: none).
        max_upload_bytes: largest accepted upload (file size). Default (None): `upload_cap(max_upload_pixels)`, the
            size of the largest image the app accepts stored as uncompressed 8-bit RGB; the app only keeps a resized
            copy at the model's input size, so a bigger file can only be one the pixel cap refuses anyway.
        max_upload_pixels: largest accepted decoded image (width x height); guards against decompression bombs.
        max_side: for models without a fixed input size, uploads are scaled to fit this side length.
        job_interval_ms: how often the browser polls a background job for progress.
        state_expire_s: server-side state is dropped after this many seconds without use.
        redis_url: a Redis server for scale-out (`dashboard.jobs.scaleout`): background jobs on Celery workers, state
            shared in Redis (with a local tier in `state_dir`). None: the embedded default (jobs in this process).
        job_threads: without Redis, how many background jobs run at once, each in a thread of the web process
            (`dashboard.jobs.thread_jobs`; `--job-threads`). None: the core count, at most 4.
        job_processes: without Redis, run each background job in its own child process started from a forkserver
            instead (`dashboard.jobs.background`; `--job-processes`): a crash or a stuck call cannot take the web
            process with it, at the cost of a second model and TensorFlow in memory per running job.
        job_heartbeat_s, job_lost_after_s: with Redis, a running job beats every `job_heartbeat_s`; one silent for
            `job_lost_after_s` lost its worker and is reported to the user.
        job_queue_timeout_s: with Redis, a job no worker picked up within this time is reported and given up.
        allow_model_upload: show a model upload control; an uploaded `.keras` model is checked, loaded in a sandboxed
            process and then serves the uploading session only (`--allow-model-upload`; off by default).
        max_model_bytes: largest accepted model upload (.keras file size).
        max_shared_model_bytes: with Redis, the largest checked model shared with the workers through Redis
            (`dashboard.state.model_store`; $SEGX_MAX_SHARED_MODEL_MB); a larger upload is refused.
        model_ttl_s: an uploaded model is deleted after this many seconds without use (`dashboard.state.retention`).
        models_max_bytes: uploaded models on one host together; beyond it the least recently used are deleted.
        state_max_bytes: the local state store's entries together; beyond it the least recently used are evicted.
        retention_period_s: how often each web and worker process applies the retention policy.
        cam_layer: the CAM layer the layer slider starts at (`--cam-layer`); None: the engine's default rule
            (explainers.layer_choice).
    """

    model_path: str | None = None
    class_names: tuple[str, ...] | None = None
    state_dir: str = ""
    torch_model: str | None = None
    torch_weights: str | None = None
    samples_dir: str | None = None
    max_upload_bytes: int | None = None
    cam_layer: str | None = None
    max_upload_pixels: int = 40_000_000
    max_side: int = 512
    job_interval_ms: int = 400
    state_expire_s: int = 6 * 3600
    redis_url: str | None = None
    job_threads: int | None = None
    job_processes: bool = False
    job_heartbeat_s: float = 2.0
    job_lost_after_s: float = 10.0
    job_queue_timeout_s: float = 120.0
    allow_model_upload: bool = False
    max_model_bytes: int = 50 * MiB
    max_shared_model_bytes: int = 64 * MiB
    model_ttl_s: int = 24 * 3600
    models_max_bytes: int = 2048 * MiB
    state_max_bytes: int = 1024 * MiB
    retention_period_s: float = 600.0

    def __post_init__(self) -> None:
        if self.max_upload_bytes is None:
            object.__setattr__(self, "max_upload_bytes", upload_cap(self.max_upload_pixels))
        if not self.state_dir:
            object.__setattr__(self, "state_dir", default_state_dir())
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(self.class_names))

    @property
    def model_label(self) -> str:
        """The served model in words: the torch factory spec (and weights file), the model file, or "demo"."""
        if self.torch_model:
            weights = f" ({os.path.basename(self.torch_weights)})" if self.torch_weights else ""
            return f"{self.torch_model}{weights}"
        return self.model_path or "demo"

    @property
    def state_path(self) -> str:
        """Directory of the server-side state store."""
        return os.path.join(self.state_dir, "state")

    @property
    def models_path(self) -> str:
        """Directory of uploaded models that passed the checks (the trusted location they are loaded from)."""
        return os.path.join(self.state_dir, "models")

    @property
    def jobs_path(self) -> str:
        """Directory of the background-callback result cache."""
        return os.path.join(self.state_dir, "jobs")
