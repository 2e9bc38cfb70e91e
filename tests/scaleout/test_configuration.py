"""Scale-out configuration without running services: the manager choice, the secret key, gunicorn's guard, and the
job-error path the lost-job messages take to the user."""

from __future__ import annotations

import runpy
from types import SimpleNamespace

import pytest
from dash.exceptions import BackgroundCallbackError, PreventUpdate

import app as app_module
from dashboard.callbacks import jobs
from dashboard.config import AppConfig
from dashboard.factory import create_app
from dashboard.jobs import background
from dashboard.jobs.scaleout import LOST_MESSAGE, SegxCeleryManager, celery_manager

GUNICORN_CONF = app_module.__file__.replace("app.py", "gunicorn.conf.py")


def test_default_manager_is_threads_without_redis_processes_on_request_and_celery_with_redis(tmp_path, monkeypatch):
    from dashboard.jobs.thread_jobs import ThreadJobManager

    monkeypatch.setattr(background, "use_forkserver", lambda *a, **k: None)  # no forkserver for this check
    threads = background.default_manager(AppConfig(state_dir=str(tmp_path), job_threads=3))
    assert isinstance(threads, ThreadJobManager) and threads.workers == 3
    assert background.runs_jobs_in_threads(AppConfig(state_dir=str(tmp_path)))
    processes = background.default_manager(AppConfig(state_dir=str(tmp_path), job_processes=True))
    assert isinstance(processes, background.SegxDiskcacheManager) and not isinstance(processes, ThreadJobManager)
    assert not background.runs_jobs_in_threads(AppConfig(state_dir=str(tmp_path), job_processes=True))
    manager = background.default_manager(AppConfig(state_dir=str(tmp_path), redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(manager, SegxCeleryManager)
    assert manager.handle.conf.broker_url == "redis://127.0.0.1:1/0"
    assert manager.handle.conf.task_track_started and manager.handle.conf.worker_pool == "threads"
    with pytest.raises(ValueError):
        celery_manager(AppConfig(state_dir=str(tmp_path)))


def test_the_flask_secret_key_comes_from_dash_secret_key(tmp_path, monkeypatch):
    monkeypatch.setenv("DASH_SECRET_KEY", "shared-by-every-replica")
    dash_app = create_app(state_dir=str(tmp_path), manager_factory=lambda cfg: None, warmup=False)
    assert dash_app.server.secret_key == "shared-by-every-replica"
    assert dash_app._get_signing_secret() == b"shared-by-every-replica"  # what Dash signs job handles with


def test_redis_url_flag_and_environment(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://10.0.0.5:6379/0")
    assert app_module.parse_args([]).redis_url == "redis://10.0.0.5:6379/0"
    assert app_module.parse_args(["--redis-url", "redis://h:1/2"]).redis_url == "redis://h:1/2"
    monkeypatch.delenv("REDIS_URL")
    assert app_module.parse_args([]).redis_url is None


@pytest.mark.parametrize(("workers", "secret", "refused"), [(2, None, True), (2, "s", False), (1, None, False)])
def test_gunicorn_refuses_several_workers_without_a_shared_secret(monkeypatch, workers, secret, refused):
    settings = runpy.run_path(GUNICORN_CONF)
    assert settings["preload_app"] is False and settings["worker_class"] == "gthread"
    if secret:
        monkeypatch.setenv("DASH_SECRET_KEY", secret)
    else:
        monkeypatch.delenv("DASH_SECRET_KEY", raising=False)
    arbiter = SimpleNamespace(cfg=SimpleNamespace(workers=workers))
    if refused:
        with pytest.raises(SystemExit, match="DASH_SECRET_KEY"):
            settings["on_starting"](arbiter)
    else:
        settings["on_starting"](arbiter)


def test_a_failed_job_becomes_a_message_and_failure_cards():
    err = BackgroundCallbackError(
        f"An error occurred inside a background callback: {LOST_MESSAGE}\nTraceback (most recent call last):\n  x"
    )
    marker = jobs.job_error_marker(err)
    assert marker == {"job_error": LOST_MESSAGE}
    assert jobs.job_error_marker(RuntimeError("")) == {"job_error": "The background job failed."}
    request = {"token": "t1", "methods": ["shap", "smoothgrad"], "session": "s", "question": {}}
    cards, result, text, color, is_open = jobs.handle_job_error(marker, request)
    assert [card.to_plotly_json()["props"]["data-method"] for card in cards] == ["shap", "smoothgrad"]
    assert all("hm-card-failed" in card.className for card in cards)
    assert result == {"token": "t1", "failed": LOST_MESSAGE} and "job_error" not in result  # no second round
    assert (text, color, is_open) == (LOST_MESSAGE, "danger", True)
    for other in (None, {"question": {}, "methods": [], "token": "t1"}, {"token": "t1", "cancelled": True}, result):
        with pytest.raises(PreventUpdate):
            jobs.handle_job_error(other, request)
