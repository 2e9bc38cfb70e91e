"""Model upload through the dashboard (only with `allow_model_upload`): hostile archives are refused with a message
and their payload never runs; a benign U-Net serves the uploading session end to end (status, prediction, CAM) while
another session keeps the demo model."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from dash import no_update

from dashboard import factory
from dashboard.callbacks import explain, model_upload, upload
from dashboard.config import AppConfig
from dashboard.state.resources import get_session_adapter, methods
from dashboard.state.store import StateStore, new_session_id
from dashboard.view import ids
from dashboard.view.components import TIMES
from tests import hostile_models as hostile
from tests.dashboard.test_upload_battery import good_upload

STATUS, MESSAGE = (ids.MODEL_STATUS, "children"), (ids.MESSAGE, "children")


def keras_uri(data: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def cfg(tmp_path_factory) -> AppConfig:
    return AppConfig(model_path=None, state_dir=str(tmp_path_factory.mktemp("upload-state")), allow_model_upload=True)


@pytest.fixture(scope="module")
def benign(tmp_path_factory) -> bytes:
    return hostile.benign_unet_bytes(tmp_path_factory.mktemp("benign"))


@pytest.fixture(scope="module")
def marker(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("marker") / "PWNED"


@pytest.fixture()
def mstore(cfg) -> StateStore:
    from dashboard.state.resources import get_store

    return get_store(cfg)


def assert_refused(out: dict, pattern: str) -> None:
    import re

    assert out[(ids.SESSION, "data")] is no_update and out[(ids.IMAGE, "data")] is no_update
    assert out[(ids.MESSAGE, "is_open")] is True and out[(ids.MESSAGE, "color")] == "danger"
    assert re.search(pattern, out[STATUS]), out[STATUS]
    assert out[STATUS] == out[MESSAGE]


def test_hostile_models_are_refused_and_their_payload_never_runs(cfg, mstore, benign, marker, tmp_path):
    session = new_session_id()
    cases = {
        "lambda.keras": (hostile.lambda_archive(tmp_path, marker), r"Lambda layer \(Python code"),
        "nested.keras": (hostile.nested_lambda_archive(benign, marker), r"Lambda layer"),
        "tfsm.keras": (hostile.with_layer_class(benign, "keras.layers", "TFSMLayer"), r"TFSMLayer"),
        "system.keras": (hostile.with_layer_class(benign, "os", "system"), r"os\.system"),
        "exec.keras": (hostile.with_activation(benign, {"module": "builtins", "class_name": "function",
                                                        "config": "exec", "registered_name": "exec"}), r"exec"),
        "traversal.keras": (hostile.rewrite(benign, extra=[("../x", b"x")]), r"path traversal"),
        "bomb.keras": (hostile.zip_bomb_weights(benign), r"inflates"),
        "big.keras": (bytes(51 * 1024 * 1024), r"too large \(51\.0 MiB\); the limit is 50\.0 MiB"),
    }  # fmt: skip
    for name, (data, pattern) in cases.items():
        out = model_upload.handle_model_upload(keras_uri(data), name, None, session, cfg, mstore)
        assert_refused(out, pattern)
        assert name in out[STATUS]
    assert not marker.exists()
    assert not Path(cfg.models_path).exists() or not any(Path(cfg.models_path).glob("*.keras"))
    assert get_session_adapter(cfg, session).class_names[0] == "background"  # still the demo model


@pytest.mark.parametrize(
    ("filename", "pattern"),
    [("model.h5", r"legacy HDF5 \(\.h5\) model; only Keras 3 \.keras"), ("saved_model.pb", "SavedModel"),
     ("model.zip", "zip archive"), ("model", "no extension")],
)  # fmt: skip
def test_only_keras_files_are_accepted(cfg, mstore, benign, filename, pattern):
    assert_refused(model_upload.handle_model_upload(keras_uri(benign), filename, None, new_session_id(), cfg, mstore),
                   pattern)  # fmt: skip


def test_model_upload_is_refused_without_the_flag(benign, tmp_path):
    cfg = AppConfig(state_dir=str(tmp_path), allow_model_upload=False)
    from dashboard.state.resources import get_store

    out = model_upload.handle_model_upload(keras_uri(benign), "m.keras", None, new_session_id(), cfg, get_store(cfg))
    assert_refused(out, r"disabled")
    dash_app = factory.create_app(config=cfg, manager_factory=lambda c: None, warmup=False)
    deps = json.dumps(dash_app.server.test_client().get("/_dash-dependencies").get_json())
    assert ids.MODEL_UPLOAD not in deps  # no callback, and (test_layout) no control


def test_a_benign_model_serves_its_session_while_another_keeps_the_demo_model(cfg, mstore, benign):
    import models

    old, other = new_session_id(), new_session_id()
    reports: list[tuple] = []
    out = model_upload.handle_model_upload(keras_uri(benign), "my_unet.keras", "sky, cap, stem", old, cfg, mstore,
                                           set_progress=reports.append)  # fmt: skip
    # the three stages, through the jobs' one progress reporter
    assert [r[:2] for r in reports] == [(0, "0%"), (33, "33%"), (67, "67%")]
    assert all(f"({i}/3)" in r[2] for i, r in enumerate(reports, 1)) and "sandboxed" in reports[0][2]
    session = out[(ids.SESSION, "data")]
    assert session not in (no_update, old) and len(session) == 32
    assert out[STATUS].startswith("Serving “my_unet.keras”") and "sky, cap, stem" in out[STATUS]
    assert out[(ids.MESSAGE, "color")] == "success"
    assert out[(ids.MODEL_FACTS, "children")] == f"my_unet.keras · input 32{TIMES}32 · 3 classes · 4 conv layers"
    assert [o["label"] for o in out[(ids.TARGET, "options")]] == ["sky", "cap", "stem"]
    assert out[(ids.LAYER, "max")] == 3 and out[(ids.IMAGE, "data")] is None
    assert len(json.loads(out[(ids.LAYER_NAMES, "data-layers")])) == 4

    mine, demo = get_session_adapter(cfg, session), get_session_adapter(cfg, other)
    assert mine.class_names == ["sky", "cap", "stem"] and mine.input_size == (32, 32)
    assert demo.class_names == list(models.CLASS_NAMES) and demo is not mine
    assert get_session_adapter(cfg, old) is demo  # the page's old session id is not switched

    for sess, adapter in ((session, mine), (other, demo)):
        ref, _ = upload.handle_upload(good_upload(), "photo.png", sess, adapter, mstore, cfg)
        assert ref is not no_update and (ref["height"], ref["width"]) == (adapter.input_size or (64, 64))
        labels = mstore.get(sess, "labels", ref["key"])
        assert labels.max() < len(adapter.class_names)
        region = np.zeros((ref["height"], ref["width"]), bool)
        region[4:20, 4:20] = True
        region_ref = {"key": mstore.put_array(sess, "region", region), "image": ref["key"], "kind": "box",
                      "pixels": int(region.sum())}  # fmt: skip
        fast, _, _, results, *_ = explain.handle_explain(
            region_ref, 1, ["gradcam", "saliency"], ref, sess, None, 0.8, None, None, adapter=adapter, store=mstore,
            infos=methods())  # fmt: skip
        assert len(fast) == 2 and results["question"]["image"] == ref["key"]
        summary = mstore.get(sess, "result", explain.analysis.result_key(results["question"], "gradcam"))
        assert summary["heatmap"].shape == (ref["height"], ref["width"]) and np.isfinite(summary["heatmap"]).all()
        assert summary["layer"] in adapter.conv_layers
    # The uploaded session's CAM comes from its own model's layers.
    assert set(mine.conv_layers) == {"enc_conv", "mid_conv", "dec_conv", "logits"}
    assert mine.conv_layers != demo.conv_layers


def test_class_name_mismatch_is_refused_with_the_reason(cfg, mstore, benign):
    out = model_upload.handle_model_upload(keras_uri(benign), "m.keras", "a,b", new_session_id(), cfg, mstore)
    assert_refused(out, r"class_names has 2 names but the model predicts 3 classes")
    out = model_upload.handle_model_upload(keras_uri(benign), "m.keras", "a,,b", new_session_id(), cfg, mstore)
    assert_refused(out, r"non-empty and comma-separated")


def test_a_forged_session_record_cannot_point_outside_the_models_directory(cfg, mstore, tmp_path):
    from dashboard.state.resources import session_config

    session = new_session_id()
    mstore.put(session, "model", "current", {"id": "../../etc/passwd", "class_names": None})
    assert session_config(cfg, session).model_path is None
    mstore.put(session, "model", "current", {"id": "0" * 64, "class_names": None})  # no such file
    assert session_config(cfg, session).model_path is None
