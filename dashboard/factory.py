"""`create_app`: build the Dash app for one model.

The app is cheap to create: the model is loaded lazily (first page load, or the warm-up thread), so importing or
creating the app never runs TensorFlow in a process that might later fork. The layout is a function, so every page
load gets a fresh session id and two browser tabs never share state.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import dash_bootstrap_components as dbc  # noqa: F401  (registers the component library with Dash)
from dash import Dash, html

from dashboard import layout
from dashboard.callbacks import register_callbacks
from dashboard.config import AppConfig, secret_key_from_env
from dashboard.inputs.samples import gallery_items
from dashboard.jobs.background import ManagerFactory, default_manager, runs_jobs_in_threads
from dashboard.state.resources import get_adapter, methods
from dashboard.state.store import new_session_id
from dashboard.trust.download import register_export_route
from dashboard.view.photos import register_photo_route

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
TITLE = "SegXplain"


def default_samples_dir(model_path: str | None) -> str | None:
    """The bundled samples for the demo model; none for other models."""
    if model_path is not None:
        return None
    try:
        import models

        return str(models.SAMPLES_DIR)
    except (ImportError, AttributeError):
        return None


def cam_layer(config: AppConfig, adapter: Any) -> str | None:
    """The CAM layer the slider starts at: `config.cam_layer` (--cam-layer) or the adapter's default rule;
    ValueError naming the choices if `config.cam_layer` is not one of the model's CAM layers."""
    if config.cam_layer is None:
        return adapter.default_layer
    if config.cam_layer not in adapter.conv_layers:
        raise ValueError(f"--cam-layer: {adapter.unknown_layer_message([config.cam_layer])}")
    return config.cam_layer


def page_context(config: AppConfig) -> layout.PageContext:
    """Model facts and method metadata for the layout (loads the model on first use)."""
    adapter = get_adapter(config)
    infos = methods()
    name = config.model_label if config.torch_model else Path(config.model_path).name if config.model_path else (
        "demo mushroom U-Net")  # fmt: skip
    return layout.PageContext(
        model_name=name, class_names=list(adapter.class_names), conv_layers=list(adapter.conv_layers),
        layer_shapes=dict(adapter.layer_shapes), input_size=adapter.input_size, methods=infos,
        samples=gallery_items(config.samples_dir), default_methods=layout.default_methods(infos, adapter.gradients),
        max_upload_bytes=config.max_upload_bytes, session=new_session_id(),
        allow_model_upload=config.allow_model_upload, max_model_bytes=config.max_model_bytes,
        default_layer=cam_layer(config, adapter),
    )  # fmt: skip


def serve_layout(config: AppConfig) -> Any:
    """The page for one page load (a new session each time)."""
    try:
        return layout.build_layout(page_context(config))
    except Exception as err:
        log.exception("could not build the page")
        return html.Div([html.H3("The model could not be loaded"), html.Pre(str(err))], className="p-4")


def warm_up(config: AppConfig) -> None:
    """Load the model and trace the fast pass once (at its input size; a model of dynamic size is prepared for each
    new image size when the image arrives), so the first real selection is fast. When background jobs run in threads
    of this process, then compile shap's numba code here too (what the forkserver does for process jobs), so the first
    SHAP job does not pay for it."""
    try:
        from explainers.warmup import prepare_in_background

        adapter = get_adapter(config)
        if adapter.input_size is not None and (thread := prepare_in_background(adapter, adapter.input_size)):
            thread.join()  # tracked, so that an image arriving meanwhile is told the model is still being prepared
        if runs_jobs_in_threads(config):
            import dashboard.jobs.preload  # noqa: F401  (compiles on import, once per process)
    except Exception:
        log.exception("warm-up failed")


def create_app(
    model_path: str | None = None,
    class_names: list[str] | tuple[str, ...] | None = None,
    *,
    state_dir: str | None = None,
    samples_dir: str | None = None,
    redis_url: str | None = None,
    manager_factory: ManagerFactory = default_manager,
    warmup: bool = True,
    config: AppConfig | None = None,
) -> Dash:
    """Build the dashboard for a Keras segmentation model (`model_path`, a .keras file; None: the demo model).

    Args:
        model_path: the model file; None serves the bundled demo model.
        class_names: names overriding the model's class names.
        state_dir: directory for server-side state and job results (default: $SEGX_STATE_DIR or a temp dir).
        samples_dir: folder of gallery images (default: the bundled samples for the demo model, none otherwise).
        redis_url: a Redis server: jobs on Celery workers, state shared in Redis (see `dashboard.jobs.scaleout`).
        manager_factory: builds the background-callback manager from the config (default: jobs in threads of this
            process, in child processes with `config.job_processes`, or on Celery workers with `redis_url`).
        warmup: load the model and trace the fast methods in a background thread right away.
        config: a complete configuration, overriding the arguments above.
    """
    if config is None:
        config = AppConfig(
            model_path=model_path, class_names=tuple(class_names) if class_names else None,
            state_dir=state_dir or "", samples_dir=samples_dir or default_samples_dir(model_path), redis_url=redis_url,
        )  # fmt: skip
    manager = manager_factory(config)
    app = Dash(
        __name__, title=TITLE, update_title=None, assets_folder=str(ASSETS_DIR), background_callback_manager=manager,
        suppress_callback_exceptions=False, serve_locally=True,
    )  # fmt: skip
    # Dash signs background-job handles with the Flask secret key: every web worker must share it (DASH_SECRET_KEY).
    app.server.secret_key = secret_key_from_env() or app.server.secret_key
    # Dash validates callbacks against the layout; a model-free skeleton with every id avoids loading the model here.
    app.validation_layout = layout.build_layout(layout.skeleton_context())
    app.layout = lambda: serve_layout(config)
    register_callbacks(app, config)
    register_photo_route(app.server, config, app.config.routes_pathname_prefix)
    register_export_route(app.server, config, app.config.routes_pathname_prefix)
    if warmup:
        threading.Thread(target=warm_up, args=(config,), name="segx-warmup", daemon=True).start()
    return app
