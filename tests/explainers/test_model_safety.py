"""Untrusted `.keras` archives: refused by the static checks (before anything is deserialised) with a reason, their
payload never runs; the sandboxed loader keeps a benign model and enforces its limits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from explainers import model_safety
from explainers.model_safety import ArchiveLimits, ArchiveRefused, check_archive
from explainers.model_sandbox import ModelUploadRefused, SandboxLimits, install_model, trusted_path
from tests import hostile_models as hostile

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("archives")


@pytest.fixture(scope="module")
def benign(folder) -> bytes:
    return hostile.benign_unet_bytes(folder)


@pytest.fixture(scope="module")
def marker(folder) -> Path:
    return folder / "PWNED"


@pytest.fixture(scope="module")
def lambda_bytes(folder, marker) -> bytes:
    return hostile.lambda_archive(folder, marker)


def test_the_benign_unet_passes_and_its_config_is_returned(benign):
    config = check_archive(benign)
    assert config["class_name"] == "Functional" and len(config["config"]["layers"]) >= 6


def test_the_lambda_payload_is_live_when_loaded_unsafely(lambda_bytes, folder, tmp_path):
    """Control: the payload is real (Keras with safe_mode=False runs it on load), so the refusals below mean something.
    Run in a child process, with its own marker, so this test process never deserialises it."""
    live_marker = tmp_path / "LIVE"
    armed = hostile.rewrite(lambda_bytes, lambda c: hostile._layer(c, "Lambda")["config"]["function"]["config"]
                            .update(code=hostile.payload_code(live_marker)))  # fmt: skip
    path = tmp_path / "armed.keras"
    path.write_bytes(armed)
    script = "import keras, sys; keras.saving.load_model(sys.argv[1], safe_mode=False)"
    subprocess.run([sys.executable, "-c", script, str(path)], cwd=REPO, capture_output=True, timeout=300)
    assert live_marker.read_text() == "pwned"


HOSTILE_CONFIGS = {
    "lambda": (None, r"Lambda layer \(Python code"),
    "nested-lambda": (None, r"Lambda layer \(Python code"),
    "tfsmlayer": (("keras.layers", "TFSMLayer", None, {"name": "sm", "filepath": "/tmp/saved", "call_endpoint":
                   "serve"}), r"keras\.layers\.TFSMLayer \(layer 'sm'\) is not on the allowlist"),
    "os-system": (("os", "system", None, {"name": "boom", "command": "touch /tmp/x"}),
                  r"refers to os\.system"),
    "builtins-exec": (("builtins", "exec", None, {"name": "boom"}), r"refers to builtins\.exec"),
    "registered-custom": (("keras.layers", "Conv2D", "Custom>EvilConv", None),
                          r"custom or registered object 'Custom>EvilConv'"),
    "keras-internal-module": (("keras.src.layers.core.lambda_layer", "Lambda", None, None), r"Lambda layer"),
    "jax-layer": (("keras.layers", "JaxLayer", None, None), r"JaxLayer .* not on the allowlist"),
    "torch-wrapper": (("keras.layers", "TorchModuleWrapper", None, None), r"not on the allowlist"),
    "no-module": ((None, "MyLayer", None, None), r"without its Keras module"),
}  # fmt: skip


def hostile_config_archive(name: str, benign: bytes, lambda_bytes: bytes, marker: Path) -> bytes:
    if name == "lambda":
        return lambda_bytes
    if name == "nested-lambda":
        return hostile.nested_lambda_archive(benign, marker)
    module, class_name, registered, config = HOSTILE_CONFIGS[name][0]
    return hostile.with_layer_class(benign, module, class_name, registered, config)


@pytest.mark.parametrize("name", list(HOSTILE_CONFIGS))
def test_hostile_configs_are_refused_before_deserialisation(name, benign, lambda_bytes, marker):
    archive = hostile_config_archive(name, benign, lambda_bytes, marker)
    with pytest.raises(ArchiveRefused, match=HOSTILE_CONFIGS[name][1]):
        check_archive(archive)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("activation", "message"),
    [
        ({"module": "builtins", "class_name": "function", "config": "exec", "registered_name": "exec"},
         r"function builtins\.exec"),
        ({"module": "os", "class_name": "function", "config": "system", "registered_name": "system"},
         r"function os\.system"),
        ({"module": "keras.activations", "class_name": "function", "config": "relu", "registered_name": "evil>relu"},
         r"custom or registered object 'evil>relu'"),
        ("my_package.evil", r"Unknown activation 'my_package\.evil'"),
        ({"class_name": "__lambda__", "config": {"code": "AA==", "defaults": None, "closure": None}},
         r"Lambda layer"),
    ],
)  # fmt: skip
def test_activations_must_be_built_in(benign, activation, message):
    with pytest.raises(ArchiveRefused, match=message):
        check_archive(hostile.with_activation(benign, activation))


def test_built_in_function_activations_pass(benign):
    relu = {"module": "keras.activations", "class_name": "function", "config": "relu", "registered_name": "relu"}
    check_archive(hostile.with_activation(benign, relu))


@pytest.mark.parametrize(
    ("module", "class_name", "message"),
    [("keras.initializers", "EvilInit", r"EvilInit .* not on the allowlist"),
     ("subprocess", "Popen", r"refers to subprocess\.Popen")],
)  # fmt: skip
def test_initializers_are_checked(benign, module, class_name, message):
    with pytest.raises(ArchiveRefused, match=message):
        check_archive(hostile.with_initializer(benign, module, class_name))


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    ("extra", "drop", "message"),
    [
        ([("../x", b"escape")], (), r"'\.\./x' points outside the archive"),
        ([("assets/../../x", b"escape")], (), r"points outside the archive"),
        ([("/etc/cron.d/x", b"* * * * * root id")], (), r"absolute path"),
        ([("C:/x", b"x")], (), r"absolute path"),
        ([hostile.symlink_member("link")], (), r"symbolic link"),
        ([("assets/evil.py", b"import os")], (), r"Unexpected archive member 'assets/evil\.py'"),
        ([("model.weights.h5", b"\x89HDF\r\n\x1a\n")], (), r"lists a member twice"),
        ([], ("model.weights.h5",), r"no model\.weights\.h5"),
        ([("model.weights.h5", b"not hdf5")], ("model.weights.h5",), r"not an HDF5 file"),
        ([("config.json", b"{not json")], ("config.json",), r"config\.json is not valid JSON"),
        ([("config.json", b'{"class_name": "Functional", "module": "os", "config": {}}')], ("config.json",),
         r"holds a os\.Functional"),
    ],
)  # fmt: skip
def test_zip_members_are_checked(benign, extra, drop, message):
    with pytest.raises(ArchiveRefused, match=message):
        check_archive(hostile.rewrite(benign, extra=extra, drop=drop))


def test_an_oversized_weights_zip_bomb_is_refused_from_the_headers(benign):
    bomb = hostile.zip_bomb_weights(benign)
    assert len(bomb) < 2 * 1024 * 1024  # ~300 MB inflated
    with pytest.raises(ArchiveRefused, match=r"inflates \d+-fold|inflates to 3\d\d MiB"):
        check_archive(bomb)


def test_size_caps(benign):
    with pytest.raises(ArchiveRefused, match=r"too large .* the limit is 0 MiB"):
        check_archive(benign, ArchiveLimits(max_bytes=1000))
    with pytest.raises(ArchiveRefused, match=r"inflates to 0 MiB; the limit is 0 MiB"):
        check_archive(benign, ArchiveLimits(max_uncompressed=10_000))
    with pytest.raises(ArchiveRefused, match="legacy HDF5"):
        check_archive(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ArchiveRefused, match=r"not a \.keras archive"):
        check_archive(b"PK\x03\x04 garbage")
    with pytest.raises(ArchiveRefused, match="empty"):
        check_archive(b"")


def test_a_member_larger_than_it_declares_is_refused(benign):
    """A zip whose central directory under-reports a member's size (a lying bomb): reading it is bounded."""
    data = bytearray(benign)
    start = data.find(b"PK\x01\x02")
    while start != -1:  # central-directory entries: signature, ..., sizes at +20/+24, name length at +28, name at +46
        name_length = int.from_bytes(data[start + 28 : start + 30], "little")
        if data[start + 46 : start + 46 + name_length] == b"config.json":
            data[start + 24 : start + 28] = (10).to_bytes(4, "little")
            break
        start = data.find(b"PK\x01\x02", start + 4)
    assert start != -1
    with pytest.raises(ArchiveRefused, match=r"config\.json' is (larger than it declares|damaged)"):
        check_archive(bytes(data))


# --- the sandboxed loader -------------------------------------------------------------------------------------------
def test_install_keeps_a_benign_model_in_the_trusted_directory(benign, tmp_path):
    installed = install_model(benign, tmp_path / "models", ["sky", "cap", "stem"])
    assert installed.class_names == ("sky", "cap", "stem") and installed.input_size == (32, 32)
    assert installed.conv_layers == 4
    assert Path(installed.path) == trusted_path(tmp_path / "models", installed.model_id)
    check_archive(installed.path)
    assert [p.name for p in (tmp_path / "models").iterdir()] == [f"{installed.model_id}.keras"]  # no leftovers


def test_install_refuses_hostile_archives_without_running_them(lambda_bytes, benign, marker, tmp_path):
    for archive in (lambda_bytes, hostile.nested_lambda_archive(benign, marker)):
        with pytest.raises(ModelUploadRefused, match="Lambda layer"):
            install_model(archive, tmp_path / "models")
    assert not marker.exists()
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_the_sandbox_reports_adapter_refusals(benign, tmp_path):
    with pytest.raises(ModelUploadRefused, match="class_names has 2 names but the model predicts 3 classes"):
        install_model(benign, tmp_path, ["a", "b"])


def test_the_sandbox_limits_memory_and_time(benign, tmp_path):
    with pytest.raises(ModelUploadRefused, match=r"memory|stopped by the sandbox"):
        install_model(benign, tmp_path, limits=SandboxLimits(memory_bytes=1024 * 1024))
    with pytest.raises(ModelUploadRefused, match=r"took longer than 1 s"):
        install_model(benign, tmp_path, limits=SandboxLimits(wall_seconds=1))


def test_trusted_path_accepts_only_digests(tmp_path):
    for bad in ("../../etc/passwd", "a" * 63, "A" * 64, None):
        with pytest.raises(ValueError):
            trusted_path(tmp_path, bad)  # type: ignore[arg-type]
    assert trusted_path(tmp_path, "0" * 64).parent == tmp_path


def test_the_safety_module_imports_neither_keras_nor_dash():
    source = Path(model_safety.__file__).read_text()
    assert "import keras" not in source and "import dash" not in source and "import tensorflow" not in source
