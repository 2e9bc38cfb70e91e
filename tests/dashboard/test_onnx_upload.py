"""ONNX models in the dashboard: an uploaded `.onnx` passes the checks and the sandbox and serves its session (through
onnx2torch, or as a black box whose gradient methods say on their cards why they cannot run); hostile ONNX uploads
are refused with a message before the sandbox starts."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from dash import no_update

from dashboard.callbacks import explain, model_upload, upload
from dashboard.config import AppConfig
from dashboard.state.resources import get_session_adapter, methods
from dashboard.state.store import StateStore, new_session_id
from dashboard.view import ids
from tests.dashboard.test_model_upload import STATUS, assert_refused, keras_uri
from tests.dashboard.test_upload_battery import good_upload
from tests.explainers.onnx_exports import GridSampleNet, export
from tests.explainers.tiny_torch_models import TinyTorchUNet


@pytest.fixture(scope="module")
def cfg(tmp_path_factory) -> AppConfig:
    return AppConfig(model_path=None, state_dir=str(tmp_path_factory.mktemp("onnx-state")), allow_model_upload=True)


@pytest.fixture()
def mstore(cfg) -> StateStore:
    from dashboard.state.resources import get_store

    return get_store(cfg)


def ask(adapter, session, store, cfg, names):
    ref, _ = upload.handle_upload(good_upload(), "photo.png", session, adapter, store, cfg)
    region = np.zeros((ref["height"], ref["width"]), bool)
    region[4:20, 4:20] = True
    region_ref = {"key": store.put_array(session, "region", region), "image": ref["key"], "kind": "box",
                  "pixels": int(region.sum())}  # fmt: skip
    return explain.handle_explain(region_ref, 1, names, ref, session, None, 0.8, None, None, adapter=adapter,
                                  store=store, infos=methods())  # fmt: skip


def test_an_uploaded_onnx_model_serves_its_session(cfg, mstore):
    data = export(TinyTorchUNet(classes=3, seed=2), (32, 32)).SerializeToString()
    out = model_upload.handle_model_upload(keras_uri(data), "unet.onnx", "sky, cap, stem", new_session_id(), cfg,
                                           mstore)  # fmt: skip
    session = out[(ids.SESSION, "data")]
    assert session is not no_update, out[STATUS]
    assert out[STATUS].startswith("Serving “unet.onnx”") and "5 conv layers" in out[STATUS]
    adapter = get_session_adapter(cfg, session)
    assert adapter.framework == "torch" and adapter.class_names == ["sky", "cap", "stem"]
    assert adapter.input_size == (32, 32)
    fast, _, _, results, *_ = ask(adapter, session, mstore, cfg, ["gradcam", "saliency"])
    assert len(fast) == 2 and results["methods"] == ["gradcam", "saliency"]
    summary = mstore.get(session, "result", explain.analysis.result_key(results["question"], "gradcam"))
    assert np.isfinite(summary["heatmap"]).all() and summary["layer"] in adapter.conv_layers


def test_a_black_box_onnx_model_says_on_the_cards_why_gradient_methods_cannot_run(cfg, mstore):
    data = export(GridSampleNet((32, 32)), (32, 32)).SerializeToString()
    out = model_upload.handle_model_upload(keras_uri(data), "warp.onnx", None, new_session_id(), cfg, mstore)
    session = out[(ids.SESSION, "data")]
    assert session is not no_update, out[STATUS]
    assert out[(ids.LAYER, "disabled")] is True
    adapter = get_session_adapter(cfg, session)
    assert adapter.framework == "onnxruntime" and not adapter.gradients
    fast, slow, request, *_ = ask(adapter, session, mstore, cfg, ["gradcam", "saliency", "shap"])
    texts = {card["props"]["data-method"]: str(card) for card in map(lambda c: c.to_plotly_json(), fast)}
    for name in ("gradcam", "saliency"):
        assert "Unavailable for this model" in texts[name] and "GridSample" in texts[name]
    assert request["methods"] == ["shap"] and len(slow) == 1  # SHAP still runs, as a background job


def test_hostile_onnx_uploads_are_refused_before_the_sandbox(cfg, mstore, monkeypatch, tmp_path):
    from explainers import model_sandbox

    def forbidden(*args, **kwargs):
        raise AssertionError("the sandbox started")

    monkeypatch.setattr(model_sandbox, "_run_child", forbidden)
    benign = export(TinyTorchUNet(seed=0), (32, 32))
    traversal = onnx.ModelProto.FromString(benign.SerializeToString())
    weight = traversal.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"
    custom = onnx.ModelProto.FromString(benign.SerializeToString())
    custom.graph.node[1].domain = "com.evil"
    cases = {
        "traversal.onnx": (traversal.SerializeToString(), r"keeps its data in another file \('\.\./\.\./\.\./\.\./etc"),
        "custom.onnx": (custom.SerializeToString(), r"custom domain 'com\.evil'"),
        "truncated.onnx": (benign.SerializeToString()[:2000], r"truncated or corrupt"),
        "big.onnx": (bytes(51 * 1024 * 1024), r"too large \(51\.0 MiB\); the limit is 50\.0 MiB"),
    }  # fmt: skip
    for name, (data, pattern) in cases.items():
        out = model_upload.handle_model_upload(keras_uri(data), name, None, new_session_id(), cfg, mstore)
        assert_refused(out, pattern)


def test_the_command_line_refuses_an_unusable_onnx_model_in_one_line(tmp_path):
    import re

    from tests.dashboard.test_cli_models import run_cli
    from tests.explainers.onnx_exports import TinyTorchUNet as SigmoidUNet

    path = tmp_path / "multilabel.onnx"
    path.write_bytes(export(SigmoidUNet(classes=3, final="sigmoid"), (32, 32)).SerializeToString())
    result = run_cli("--model", str(path))
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert last.startswith(f"segxplain: cannot serve {path}: multilabel.onnx: ") and re.search(
        r"Sigmoid over 3 channels \(multi-label\)", last), result.stderr  # fmt: skip
