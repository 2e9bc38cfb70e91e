"""Loading a PyTorch model from 'package.module:factory' (+ a state dict): what `python app.py --torch` serves, and the
one-line reasons it refuses a model (checked in-process, and once through `python app.py` as a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard.config import AppConfig
from dashboard.resources import get_adapter
from explainers.model_loading import ModelRefused
from explainers.torch_loading import load_torch_adapter
from models.torch_unet import TORCH_WEIGHTS_PATH, TorchUNet

REPO = Path(__file__).resolve().parents[2]
TINY = "tests.explainers.tiny_torch_models:TinyTorchUNet"


def test_the_demo_unet_served_by_torch_matches_the_keras_demo():
    import models

    adapter = load_torch_adapter("models.torch_unet:TorchUNet", TORCH_WEIGHTS_PATH, models.CLASS_NAMES)
    assert adapter.framework == "torch" and adapter.class_names == list(models.CLASS_NAMES)
    assert adapter.conv_layers[0] == "enc1.conv1" and adapter.conv_layers[-1] == "logits"
    keras_adapter = get_adapter(AppConfig())
    image = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(sorted(models.SAMPLES_DIR.glob("*.png"))[0])
                       .convert("RGB"))  # fmt: skip
    np.testing.assert_allclose(adapter.predict(image), keras_adapter.predict(image), atol=1e-4)


def test_the_dashboard_builds_the_torch_adapter_from_the_spec():
    config = AppConfig(torch_model=TINY, class_names=("w", "x", "y", "z"))
    adapter = get_adapter(config)
    assert adapter.framework == "torch" and adapter.class_names == ["w", "x", "y", "z"]
    assert config.model_label == TINY
    assert get_adapter(config) is adapter  # once per process


def test_a_wrapped_checkpoint_loads(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "state_dict": TorchUNet().state_dict()}, path)
    assert load_torch_adapter("models.torch_unet:TorchUNet", path).num_classes == 6


@pytest.mark.parametrize(
    ("spec", "weights", "reason"),
    [
        ("no_colon", None, "takes 'package.module:factory'"),
        ("no_such_package.nets:build", None, "cannot import no_such_package.nets"),
        ("models.torch_unet:missing", None, "has no attribute 'missing'"),
        ("models.torch_unet:TORCH_WEIGHTS_PATH", None, "is not callable"),
        ("models.torch_unet:Block", None, "failed: "),
        ("collections:OrderedDict", None, "not a torch.nn.Module"),
        ("torch.nn:Identity", None, "no convolution layer"),
        ("torch.nn:Flatten", None, "must be (N, C, H, W) per-pixel class scores"),
        ("models.torch_unet:TorchUNet", "missing.pt", "does not exist"),
        ("models.torch_unet:TorchUNet", "garbage", "cannot be read by torch.load(weights_only=True)"),
        ("models.torch_unet:TorchUNet", "pickled", "cannot be read by torch.load(weights_only=True)"),
        ("models.torch_unet:TorchUNet", "other", "do not fit the model"),
    ],
)
def test_unusable_models_are_refused_with_the_reason(tmp_path, spec, weights, reason):
    files = {"garbage": b"not a checkpoint", "missing.pt": None}
    path = None
    if weights is not None:
        path = tmp_path / weights
        if weights == "pickled":  # a checkpoint holding a pickled object: refused, never unpickled
            torch.save({"state_dict": TorchUNet().state_dict(), "hook": Path("x")}, path)
        elif weights == "other":
            torch.save(TorchUNet(num_classes=3).state_dict(), path)
        elif files.get(weights) is not None:
            path.write_bytes(files[weights])
    with pytest.raises(ModelRefused) as refused:
        load_torch_adapter(spec, path)
    assert reason in str(refused.value) and "\n" not in str(refused.value)


def test_the_app_refuses_at_start_up_with_one_line_and_exit_code_1():
    result = subprocess.run([sys.executable, "app.py", "--torch", "models.torch_unet:TorchUNet", "--class-names",
                             "a,b", "--port", "0"], cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == ("segxplain: cannot serve models.torch_unet:TorchUNet: class_names has 2 names but the model "
                    "predicts 6 classes.")  # fmt: skip
