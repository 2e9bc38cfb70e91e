"""The app factory, the command line and the background-job set-up."""

from __future__ import annotations

import importlib
import json
import time

import pytest
from dash import Dash

import app as app_module
from dashboard import factory
from dashboard.config import AppConfig
from dashboard.jobs import background
from dashboard.view import ids


@pytest.fixture(scope="module")
def built(config):
    calls = []

    def manager_factory(cfg: AppConfig):
        calls.append(cfg)
        return background.diskcache_manager(cfg)

    dash_app = factory.create_app(config=config, manager_factory=manager_factory, warmup=False)
    return dash_app, calls


def test_create_app_uses_the_pluggable_manager_factory(built, config):
    dash_app, calls = built
    assert isinstance(dash_app, Dash) and calls == [config]
    assert dash_app.server is not None


def test_every_page_load_gets_its_own_session(built):
    dash_app, _ = built
    client = dash_app.server.test_client()
    sessions = []
    for _ in range(2):
        layout = client.get("/_dash-layout").get_json()
        text = json.dumps(layout)
        assert ids.MASK_GRAPH in text and ids.METHODS in text
        stores = [c for c in _walk(layout) if c.get("props", {}).get("id") == ids.SESSION]
        sessions.append(stores[0]["props"]["data"])
    assert sessions[0] != sessions[1] and all(len(s) == 32 for s in sessions)


def _walk(node):
    if isinstance(node, dict):
        if "props" in node:
            yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_dependencies_include_a_background_job_with_progress_and_cancel(built):
    dash_app, _ = built
    deps = dash_app.server.test_client().get("/_dash-dependencies").get_json()
    background_deps = {d["output"]: d for d in deps if d.get("background")}
    # Two jobs: the slow attribution methods, and the trust metrics (faithfulness + sanity check).
    assert set(background_deps) == {f"{ids.SLOW_RESULT}.data", f"{ids.TRUST_RESULT}.data"}
    for output, cancel, panel in ((ids.SLOW_RESULT, ids.CANCEL, ids.SLOW_PANEL),
                                  (ids.TRUST_RESULT, ids.TRUST_CANCEL, ids.TRUST_PANEL)):  # fmt: skip
        job = background_deps[f"{output}.data"]
        assert job["background"]["interval"] > 0
        text = json.dumps(job)
        assert cancel in text and panel in text  # cancel input, running outputs


def test_index_page_is_served_without_external_resources(built):
    dash_app, _ = built
    html = dash_app.server.test_client().get("/").get_data(as_text=True)
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
    assert "bootstrap-5.3.8.min.css" in html and "dashboard.css" in html


def test_creating_the_app_does_not_load_the_model(config, monkeypatch):
    import dashboard.state.resources as resources

    def fail(*args, **kwargs):
        raise AssertionError("create_app must not load the model")

    monkeypatch.setattr(resources, "_load_adapter", fail)
    factory.create_app(config=config, manager_factory=lambda cfg: None, warmup=False)


def test_parse_args():
    args = app_module.parse_args(["--class-names", "bg, cap,stem", "--port", "9000", "--host", "0.0.0.0", "--debug"])
    assert args.class_names == ["bg", "cap", "stem"] and args.port == 9000 and args.debug and args.model is None
    with pytest.raises(SystemExit):
        app_module.parse_args(["--model", "/no/such/model.keras"])
    with pytest.raises(SystemExit):
        app_module.parse_args(["--class-names", "a,,b"])


def test_memory_budget_flag_reaches_every_adapter_through_the_environment(monkeypatch):
    monkeypatch.setenv("SEGX_MEMORY_BUDGET", "1GB")  # so the variable is restored after the test
    app_module.set_memory_budget("1.5GB")
    from explainers import SegmentationAdapter
    from tests.explainers.tiny_models import tiny_unet

    assert SegmentationAdapter(tiny_unet((16, 16))).memory_budget == int(1.5 * 1024**3)
    with pytest.raises(SystemExit, match="--memory-budget: Cannot read"):
        app_module.set_memory_budget("plenty")


def test_module_exposes_server_lazily_for_wsgi(config, monkeypatch):
    monkeypatch.setenv("SEGX_MODEL", config.model_path)
    monkeypatch.setenv("SEGX_CLASS_NAMES", ",".join(config.class_names))
    monkeypatch.setenv("SEGX_STATE_DIR", config.state_dir)
    module = importlib.reload(app_module)
    try:
        assert module.server is module.app.server
        assert module.create_app is factory.create_app
        with pytest.raises(AttributeError):
            module.no_such_attribute  # noqa: B018
    finally:
        module._default_app.cache_clear()


def _tf_in_child(model_path: str) -> float:
    import numpy as np

    from dashboard.config import AppConfig
    from dashboard.state.resources import get_adapter

    adapter = get_adapter(AppConfig(model_path=model_path))
    return float(adapter.predict(np.zeros((32, 32, 3), dtype=np.uint8)).sum())


def test_a_job_process_runs_tensorflow_after_the_parent_did(adapter, config):
    """The measured hazard: a fork after TF ran hangs. Jobs start from the forkserver instead."""
    import numpy as np
    from multiprocess import Pool

    adapter.predict(np.zeros((32, 32, 3), dtype=np.uint8))  # TF has run in this process
    background.use_forkserver()
    import multiprocess

    assert multiprocess.get_start_method() == "forkserver"
    start = time.monotonic()
    with Pool(1) as pool:
        result = pool.apply_async(_tf_in_child, (config.model_path,))
        total = result.get(timeout=180)
    assert total == pytest.approx(32 * 32, rel=1e-3)
    print(f"job process with TF finished in {time.monotonic() - start:.1f} s (forkserver start included)")


def test_photo_is_served_once_by_url_and_figures_point_at_it(built, config, adapter):
    """The photo under the mask figure and every card is one cacheable URL, with the stored image's PNG bytes."""
    import io

    import numpy as np
    from PIL import Image

    from dashboard.callbacks import mask
    from dashboard.state.resources import get_store
    from dashboard.state.store import new_session_id
    from dashboard.usecases import analysis

    dash_app, _ = built
    store, session = get_store(config), new_session_id()
    image = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ref = analysis.ingest_image(store, session, adapter, image, name="noise")
    figure = mask.mask_output(mask.MaskChange(redraw=True, image=ref), session, store, list(adapter.class_names))
    url = figure["layout"]["images"][0]["source"]
    assert url == f"_segx/photo/{session}/{ref['key']}.png" and not url.startswith("data:")

    client = dash_app.server.test_client()
    response = client.get("/" + url)
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert "immutable" in response.headers["Cache-Control"]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(response.data))), image)
    for unknown in (f"/_segx/photo/{session}/{'0' * 16}.png", f"/_segx/photo/not-a-session/{ref['key']}.png",
                    f"/_segx/photo/{new_session_id()}/{ref['key']}.png"):  # fmt: skip
        assert client.get(unknown).status_code == 404


def test_a_process_jobs_function_pickles_for_the_forkserver(tmp_path):
    """The forkserver child receives the job function pickled by value (dill, module globals included): the cancel
    wrapper must not drag anything unpicklable along (a ContextVar did, once, and no job ever started)."""
    import dill
    import diskcache

    from dashboard.jobs.background import SegxDiskcacheManager

    manager = SegxDiskcacheManager(diskcache.Cache(str(tmp_path)))
    job = manager.make_job_fn(lambda x: x, False, "key")
    assert callable(dill.loads(dill.dumps(job)))


def test_job_runner_flags_win_over_the_environment_and_bad_values_are_refused(monkeypatch):
    from dashboard.config import job_settings

    monkeypatch.setenv("SEGX_JOB_THREADS", "x")
    assert app_module.parse_args(["--job-threads", "3"]).jobs == {"job_threads": 3, "job_processes": False}
    with pytest.raises(ValueError, match=r"\$SEGX_JOB_THREADS: not a whole number"):
        job_settings()  # what gunicorn's master checks before starting a worker
    monkeypatch.setenv("SEGX_JOB_THREADS", "2")
    assert app_module.parse_args(["--job-processes"]).jobs == {"job_threads": None, "job_processes": True}
    assert app_module.parse_args([]).jobs == {"job_threads": 2, "job_processes": False}
    monkeypatch.setenv("SEGX_JOB_PROCESSES", "1")
    with pytest.raises(SystemExit):
        app_module.parse_args([])  # both from the environment: which one is meant?
    monkeypatch.delenv("SEGX_JOB_THREADS")
    assert app_module.parse_args([]).jobs == {"job_threads": None, "job_processes": True}
    with pytest.raises(SystemExit):
        app_module.parse_args(["--job-threads", "2", "--job-processes"])
    with pytest.raises(SystemExit):
        app_module.parse_args(["--job-threads", "0"])


def test_a_job_says_it_loads_the_model_only_where_it_is_not_loaded(config, monkeypatch):
    """A thread job finds the web process's model loaded: no "Loading the model…" note; a job process (or a worker)
    loading it first says so."""
    from dashboard.callbacks.jobs import start_job
    from dashboard.state import resources

    notes = []
    resources.get_adapter(config)
    start_job(notes.append, {"session": None, "question": {}}, config, 1)
    assert notes == []
    monkeypatch.setattr(resources, "_ADAPTERS", type(resources._ADAPTERS)())  # a process that holds no model yet
    monkeypatch.setattr(resources, "_load_adapter", lambda *key: object())
    start_job(notes.append, {"session": None, "question": {}}, config, 1)
    assert [text for _, _, text in notes] == ["Loading the model…"]
    assert resources.adapter_loaded(config)
