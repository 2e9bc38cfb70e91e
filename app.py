"""SegXplain: the interactive attribution explorer for segmentation networks.

    python app.py                                  # the bundled demo model on http://127.0.0.1:8050
    python app.py --model my_unet.keras --class-names background,road,car --port 8080
    python app.py --model exported.onnx            # ONNX: through onnx2torch, or onnxruntime as a black box
    python app.py --torch my_package.nets:build_unet --weights unet.pt   # a PyTorch model (requirements-torch.txt)
    gunicorn app:server                            # production: the module exposes `server` (and `app`)

With gunicorn, configure the model with environment variables: SEGX_MODEL (a .keras or .onnx file), or SEGX_TORCH_MODEL
('package.module:factory') and SEGX_TORCH_WEIGHTS (a state dict file), SEGX_CLASS_NAMES (comma-separated),
SEGX_STATE_DIR (shared server-side state; give every replica the same one), SEGX_ALLOW_MODEL_UPLOAD=1 (the same as
--allow-model-upload), SEGX_CAM_LAYER (--cam-layer), SEGX_MEMORY_BUDGET (--memory-budget), SEGX_JOB_THREADS
(--job-threads) and SEGX_JOB_PROCESSES=1 (--job-processes). To scale out, set REDIS_URL (jobs on Celery workers, state
in Redis) and DASH_SECRET_KEY; see README "Running on several machines".

Background jobs run in threads of the server by default. With --job-processes they start from a forkserver, whose
children re-import this file as `__mp_main__`; so nothing here runs at import time except definitions: `app` and
`server` are built lazily on first access.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Sequence
from typing import Any

from dash import Dash

from dashboard.config import AppConfig, job_settings, parse_positive_int, redis_url_from_env
from dashboard.factory import create_app, default_samples_dir
from dashboard.state.retention import start_retention

__all__ = ["create_app", "main", "parse_args"]


def parse_class_names(text: str | None) -> list[str] | None:
    """'a, b,c' -> ['a', 'b', 'c']; empty -> None."""
    if not text:
        return None
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise argparse.ArgumentTypeError("class names must be non-empty and comma-separated")
    return names


def positive_int(text: str) -> int:
    """An integer >= 1 (a flag's value)."""
    try:
        return parse_positive_int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description="Serve the SegXplain dashboard.")
    parser.add_argument("--model", help="a segmentation model: Keras 3 (.keras) or ONNX (.onnx); default: the bundled "
                                        "demo model")  # fmt: skip
    parser.add_argument("--torch", metavar="MODULE:FACTORY",
                        help="a PyTorch model: 'package.module:factory', a function or class returning the nn.Module "
                             "(trusted code, imported from the current directory or installed packages)")
    parser.add_argument("--weights", help="with --torch: a state dict file, loaded with torch.load(weights_only=True)")
    parser.add_argument("--class-names", type=parse_class_names, help="comma-separated class names, in class order")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    parser.add_argument("--cam-layer", help="the CAM layer shown first (a conv layer name); default: the last layer "
                        "before the classifier head that mixes spatial context")
    parser.add_argument("--memory-budget", help="memory the batched methods (Integrated Gradients, SmoothGrad, SHAP, "
                        "the faithfulness curves) may use for their images at once, e.g. 2GB or 800MB; default: "
                        "$SEGX_MEMORY_BUDGET, else a quarter of physical memory, at most 4GB")
    parser.add_argument("--state-dir", help="directory for server-side state and job results")
    parser.add_argument("--samples", help="folder of images for the sample gallery")
    parser.add_argument("--debug", action="store_true", help="Dash debug mode (dev tools, hot reload)")
    parser.add_argument("--redis-url", default=redis_url_from_env(),
                        help="scale out: jobs on Celery workers, state in this Redis (default: $REDIS_URL)")
    parser.add_argument("--job-threads", type=positive_int,
                        help="background jobs (the slow methods, the trust metrics) that run at once, each in a thread "
                             "of this process; more wait in a queue (default: $SEGX_JOB_THREADS, else the core count, "
                             "at most 4)")  # fmt: skip
    parser.add_argument("--job-processes", action="store_true",
                        help="run each background job in its own child process instead of a thread: a crash or a "
                             "stuck call cannot take the server with it, but every running job loads a second copy "
                             "of the model (default: $SEGX_JOB_PROCESSES=1)")  # fmt: skip
    parser.add_argument("--allow-model-upload", action="store_true",
                        help="let users upload their own .keras or .onnx model for their session (checked, then "
                             "loaded in a sandboxed process; off by default)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.model and args.torch:
        parser.error("give either --model or --torch, not both")
    if args.weights and not args.torch:
        parser.error("--weights goes with --torch")
    try:
        args.jobs = job_settings(args.job_threads, args.job_processes)  # the flags, else the environment
    except ValueError as err:
        parser.error(str(err))
    if args.model and not os.path.isfile(args.model):
        parser.error(f"model file not found: {args.model}")
    return args


def _model_sharing_from_env() -> dict[str, int]:
    """AppConfig fields from $SEGX_MAX_SHARED_MODEL_MB (the cap on models shared through Redis)."""
    mb = os.environ.get("SEGX_MAX_SHARED_MODEL_MB")
    return {"max_shared_model_bytes": int(float(mb) * 1024 * 1024)} if mb else {}


@functools.lru_cache(maxsize=1)
def _default_app(warmup: bool = True) -> Dash:
    """The app configured from the environment; also what the Celery worker builds (`dashboard.jobs.celery_worker`)."""
    model = os.environ.get("SEGX_MODEL") or None
    torch_model = os.environ.get("SEGX_TORCH_MODEL") or None
    names = parse_class_names(os.environ.get("SEGX_CLASS_NAMES"))
    config = AppConfig(
        model_path=model, class_names=tuple(names) if names else None, state_dir=os.environ.get("SEGX_STATE_DIR") or "",
        samples_dir=None if torch_model else default_samples_dir(model),
        allow_model_upload=os.environ.get("SEGX_ALLOW_MODEL_UPLOAD") == "1", redis_url=redis_url_from_env(),
        torch_model=torch_model, torch_weights=os.environ.get("SEGX_TORCH_WEIGHTS") or None,
        cam_layer=os.environ.get("SEGX_CAM_LAYER") or None, **job_settings(), **_model_sharing_from_env(),
    )  # fmt: skip
    dash_app = create_app(config=config, warmup=warmup)
    start_retention(config)  # uploaded models and local state: time to live and size caps (dashboard.state.retention)
    return dash_app


def __getattr__(name: str) -> Any:
    """`app` and `server` for WSGI servers (`gunicorn app:server`), built on first access."""
    if name == "app":
        return _default_app()
    if name == "server":
        return _default_app().server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_model(model: str, class_names: Sequence[str] | None) -> None:
    """Load the command-line model once (kept for serving) and exit with the reason if the app cannot use it."""
    from dashboard.state.resources import get_adapter
    from explainers.model_loading import ModelRefused, check_model_file, probe_adapter

    try:
        check_model_file(model)
        probe_adapter(get_adapter(AppConfig(model_path=model, class_names=tuple(class_names) if class_names else None)))
    except ModelRefused as err:
        raise SystemExit(f"segxplain: cannot serve {model}: {err}") from None


def check_torch_model(spec: str, weights: str | None, class_names: Sequence[str] | None) -> None:
    """Build the --torch model once (kept for serving) and exit with the reason if the app cannot use it."""
    from dashboard.state.resources import get_adapter
    from explainers.model_loading import ModelRefused, probe_adapter

    config = AppConfig(torch_model=spec, torch_weights=weights, class_names=tuple(class_names) if class_names else None)
    try:
        probe_adapter(get_adapter(config))
    except ModelRefused as err:
        raise SystemExit(f"segxplain: cannot serve {spec}: {err}") from None


def set_memory_budget(text: str) -> None:
    """Check --memory-budget and pass it on through $SEGX_MEMORY_BUDGET, which every adapter reads when it is built:
    the one this process serves and those of the background-job processes and workers it starts."""
    from explainers.memory import parse_bytes

    try:
        os.environ["SEGX_MEMORY_BUDGET"] = str(parse_bytes(text))
    except ValueError as err:
        raise SystemExit(f"segxplain: --memory-budget: {err}") from None


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the flags, check the model and serve the app."""
    args = parse_args(argv)
    if args.memory_budget:
        set_memory_budget(args.memory_budget)
    if args.model:
        check_model(args.model, args.class_names)
    if args.torch:
        check_torch_model(args.torch, args.weights, args.class_names)
    samples = args.samples or (None if args.torch else default_samples_dir(args.model))
    config = AppConfig(
        model_path=args.model, class_names=tuple(args.class_names) if args.class_names else None,
        state_dir=args.state_dir or "", samples_dir=samples, torch_model=args.torch, torch_weights=args.weights,
        allow_model_upload=args.allow_model_upload, redis_url=args.redis_url, cam_layer=args.cam_layer,
        **args.jobs,
    )  # fmt: skip
    if args.cam_layer:
        from dashboard.factory import cam_layer
        from dashboard.state.resources import get_adapter

        try:
            cam_layer(config, get_adapter(config))
        except ValueError as err:
            raise SystemExit(f"segxplain: {err}") from None
    dash_app = create_app(config=config)
    start_retention(config)
    dash_app.run(host=args.host, port=args.port, debug=args.debug)


if __name__ == "__main__":
    main()
