"""Custom models from the command line: any input size works; a model the adapter cannot use is refused at start-up
with the reason (exit code != 0, no traceback), checked by running `python app.py` as a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from explainers.model_loading import ModelRefused, load_adapter
from tests.dashboard.conftest import build_tiny_unet

REPO = Path(__file__).resolve().parents[2]


def _save(model, path: Path) -> str:
    model.save(path)
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    import keras

    folder = tmp_path_factory.mktemp("cli-models")
    out = {"unet": _save(build_tiny_unet(), folder / "unet.keras")}

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out["classifier"] = _save(keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x)),
                              folder / "classifier.keras")  # fmt: skip

    signal = keras.Input((64, 3))
    out["rank"] = _save(keras.Model(signal, keras.layers.Conv1D(3, 3, padding="same")(signal)), folder / "rank.keras")

    pixels = keras.Input((16, 16, 3))
    out["noconv"] = _save(keras.Model(pixels, keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(pixels))),
                          folder / "noconv.keras")  # fmt: skip

    (folder / "legacy.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    out["h5"] = str(folder / "legacy.h5")
    (folder / "garbage.keras").write_bytes(os.urandom(4096))
    out["garbage"] = str(folder / "garbage.keras")
    with zipfile.ZipFile(out["unet"]) as archive, zipfile.ZipFile(folder / "broken.keras", "w") as broken:
        broken.writestr("config.json", archive.read("config.json"))
        broken.writestr("metadata.json", archive.read("metadata.json"))
        broken.writestr("model.weights.h5", archive.read("model.weights.h5")[:500])
    out["broken"] = str(folder / "broken.keras")
    return out


def run_cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "app.py", "--port", "1", *args]  # port 1: the app must never get as far as serving
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("model", "extra", "reason"),
    [
        ("classifier", (), r"output must be \(N, H, W, C\) per-pixel class scores; got shape \(None, 5\)"),
        ("rank", (), r"expected an image input \(N, H, W, 3\), got \(None, 64, 3\)"),
        ("noconv", (), r"no convolution layer"),
        ("unet", ("--class-names", "sky,road"), r"class_names has 2 names but the model predicts 3 classes"),
        ("h5", (), r"legacy HDF5 \(\.h5\) file; only Keras 3 '\.keras' and ONNX '\.onnx' files are accepted"),
        ("garbage", (), r"not a valid \.keras file"),
        ("broken", (), r"Keras could not load broken\.keras"),
    ],
)
def test_unusable_models_are_refused_at_start_up_with_the_reason(models, model, extra, reason):
    result = run_cli("--model", models[model], *extra)
    assert result.returncode != 0
    assert re.search(reason, result.stderr), result.stderr
    last = result.stderr.strip().splitlines()[-1]  # (TensorFlow may log its start-up lines before)
    assert last.startswith(f"segxplain: cannot serve {models[model]}: ") and re.search(reason, last), result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_a_missing_model_file_is_refused_by_the_argument_parser():
    result = run_cli("--model", "/no/such/model.keras")
    assert result.returncode == 2 and "model file not found" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("shape", [(None, None), (48, 80), (32, 32)])
def test_any_input_size_is_adapted(tmp_path, shape):
    import keras

    inputs = keras.Input((*shape, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.UpSampling2D()(x)
    outputs = keras.layers.Conv2D(4, 1, activation="softmax", name="head")(x)
    path = _save(keras.Model(inputs, outputs), tmp_path / "model.keras")
    adapter = load_adapter(path, ["a", "b", "c", "d"])
    assert adapter.input_size == (None if shape[0] is None else shape)
    assert adapter.conv_layers == ["c1", "c2", "head"] and adapter.logits_source.strip == "activation"
    size = adapter.input_size or (96, 64)
    probabilities = adapter.predict(np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8))
    assert probabilities.shape == (*size, 4) and np.allclose(probabilities.sum(-1), 1, atol=1e-4)


def test_load_adapter_refusals_are_model_refused(models):
    for name in ("classifier", "rank", "noconv", "h5", "garbage", "broken"):
        with pytest.raises(ModelRefused):
            load_adapter(models[name])


def test_cam_layer_refuses_a_block_conv_and_names_its_rectified_output():
    """--cam-layer with a conv -> BN -> ReLU block's raw conv (listed as the block's ReLU) says which name to use."""
    from dashboard.config import AppConfig
    from dashboard.factory import cam_layer
    from explainers import SegmentationAdapter
    from models import load_demo_model

    adapter = SegmentationAdapter(load_demo_model())
    conv, relu = next(iter(adapter.backend.listed_as.items()))
    assert cam_layer(AppConfig(cam_layer=relu), adapter) == relu
    with pytest.raises(ValueError, match=f"--cam-layer: '{conv}' is not a conv layer of the model \\('{conv}' is "
                                         f"listed as its rectified output '{relu}'\\)"):  # fmt: skip
        cam_layer(AppConfig(cam_layer=conv), adapter)
