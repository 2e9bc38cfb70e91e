"""An uploaded model serves a slow job on a Celery worker with its own state directory (as on another machine): real
redis-server, ``gunicorn app:server`` and a ``-P threads`` worker, model upload allowed on both.

The worker has never seen the upload, so it must fetch the checked, re-saved file from Redis (by its sha256): the
job's Integrated Gradients map must equal the map computed here with that model, and the worker's copy must be the
web host's file byte for byte.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from benchmarks import app_server as bench
from benchmarks.deployment import RedisServer, web_service, worker_service
from dashboard.config import AppConfig
from dashboard.state.model_store import ModelTooLarge, check_shareable, fetch_model, model_key, publish_model
from dashboard.state.store import RedisStore
from dashboard.usecases.analysis import result_key
from dashboard.view import ids
from tests import hostile_models as hostile

METHOD = "integrated_gradients"


@pytest.fixture(scope="module")
def deployment(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    directory = Path(tmp_path_factory.mktemp("shared-models"))
    model = hostile.benign_unet_bytes(directory)  # built before the services start (TensorFlow in this process)
    worker = worker_service(redis_server.url, directory)
    web = web_service(redis_server.url, directory, workers=1)
    for service in (worker, web):
        service.env["SEGX_ALLOW_MODEL_UPLOAD"] = "1"
    worker.start()
    web.start()
    try:
        web.wait_serving(timeout=240)
        worker.wait_log("ready.", timeout=240)
        yield {"web": web, "worker": worker, "model": model, "dir": directory}
    finally:
        web.stop()
        worker.stop()


def upload(client: bench.DashClient, data: bytes, name: str, class_names: str) -> bench.Interaction:
    client.page.set_props(ids.MODEL_UPLOAD, {"filename": name})
    client.page.set_props(ids.MODEL_CLASS_NAMES, {"value": class_names})
    uri = "data:application/octet-stream;base64," + base64.b64encode(data).decode()
    return client.interact("model", [(ids.MODEL_UPLOAD, "contents", uri)], timeout=240)


def test_a_slow_job_on_an_uploaded_model_runs_on_a_worker_with_its_own_state_dir(deployment, redis_server):
    web, worker = deployment["web"], deployment["worker"]
    client = bench.DashClient(web.url, timeout=240)
    client.load_page()
    upload(client, deployment["model"], "my_unet.keras", "sky, cap, stem")
    status = str(client.page.get(ids.MODEL_STATUS, "children"))
    assert "Serving “my_unet.keras”" in status, (status, web.log_tail())
    session = client.page.get(ids.SESSION, "data")
    bench._pick_sample(client, bench._sample_ids(client.page)[0])
    height, width = bench._image_shape(client.page)
    assert (height, width) == (32, 32)  # fitted to the uploaded model's input
    bench._select_box(client, bench.random_boxes(1, height, width, random.Random(1))[0])
    chosen = [*list(client.page.get(bench.METHODS, "value") or []), METHOD]
    client.interact("slow", [(bench.METHODS, "value", chosen)], timeout=240)
    client.close()

    [web_file] = list((deployment["dir"] / "web-state" / "models").glob("*.keras"))
    worker_file = deployment["dir"] / "worker-state" / "models" / web_file.name
    assert worker_file.is_file(), worker.log_tail()
    assert worker_file.read_bytes() == web_file.read_bytes()

    store = RedisStore(redis_server.url)
    image_key, region_key = client.page.get(ids.IMAGE, "data")["key"], client.page.get(ids.REGION, "data")["key"]
    image, region = store.get(session, "image", image_key), store.get(session, "region", region_key)
    found = {t: store.get(session, "result", result_key({"image": image_key, "region": region_key, "target": t},
                                                         METHOD)) for t in range(3)}  # fmt: skip
    [(target, summary)] = [(t, s) for t, s in found.items() if s is not None]
    store.close()

    from explainers import explain
    from explainers.model_loading import load_adapter

    adapter = load_adapter(str(web_file), ["sky", "cap", "stem"], probe=False)
    expected = explain(adapter, image, region, target, methods=[METHOD])[METHOD]
    from dashboard.usecases.analysis import heatmap_of

    scale = float(np.abs(expected.heatmap).max())  # stored compactly: to 2^-11 of the largest magnitude
    np.testing.assert_allclose(heatmap_of(summary), expected.heatmap, rtol=0, atol=scale * 2.0**-11 + 1e-6)


def test_the_shared_copy_is_checked_and_capped(tmp_path, redis_server):
    config = AppConfig(state_dir=str(tmp_path), redis_url=redis_server.url, max_shared_model_bytes=1000)
    small = tmp_path / "small.bin"
    small.write_bytes(b"PK\x03\x04" + b"x" * 10)  # a zip archive's first bytes: a .keras file
    import hashlib

    digest = hashlib.sha256(small.read_bytes()).hexdigest()
    assert publish_model(config, digest, small)
    target = tmp_path / "other-host" / f"{digest}.keras"
    assert fetch_model(config, digest, target) == target and target.read_bytes() == small.read_bytes()
    onnx_bytes = b"\x08\x08" + b"y" * 10  # any other bytes: an .onnx protobuf, stored under its own suffix
    onnx_digest = hashlib.sha256(onnx_bytes).hexdigest()
    (tmp_path / "model.onnx").write_bytes(onnx_bytes)
    assert publish_model(config, onnx_digest, tmp_path / "model.onnx")
    fetched = fetch_model(config, onnx_digest, tmp_path / "other-host" / f"{onnx_digest}.keras")
    assert fetched == tmp_path / "other-host" / f"{onnx_digest}.onnx" and fetched.read_bytes() == onnx_bytes
    import redis

    client = redis.Redis.from_url(redis_server.url)
    assert 0 < client.ttl(model_key(digest)) <= config.model_ttl_s
    client.set(model_key("0" * 64), b"not the file of that digest")
    assert fetch_model(config, "0" * 64, tmp_path / "other-host" / ("0" * 64 + ".keras")) is None
    assert not (tmp_path / "other-host" / ("0" * 64 + ".keras")).exists()
    with pytest.raises(ModelTooLarge, match="SEGX_MAX_SHARED_MODEL_MB"):
        check_shareable(config, 1001)
    check_shareable(AppConfig(state_dir=str(tmp_path), max_shared_model_bytes=1000), 10**9)  # no Redis: no cap
