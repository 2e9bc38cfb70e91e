"""Model archives for the model-upload tests: a benign U-Net, and hostile `.keras` archives built from it.

Each hostile archive is a real saved model rewritten the way an attacker would: a Lambda layer whose bytecode writes a
marker file when the model is deserialised, a TFSMLayer, an arbitrary module function as a layer or activation, a
registered custom object, a nested Sequential hiding a Lambda, zip members with path traversal / absolute paths /
symlinks / unexpected files, and a zip bomb as weights.
"""

from __future__ import annotations

import copy
import io
import json
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

Config = dict[str, Any]


def benign_unet_bytes(tmp: Path, size: int = 32, classes: int = 3) -> bytes:
    """A small functional U-Net (conv, pooling, upsampling, skip concatenation, softmax) saved with model.save."""
    from tests.dashboard.conftest import build_tiny_unet

    path = tmp / "benign_unet.keras"
    build_tiny_unet(size=size, classes=classes, seed=3).save(path)
    return path.read_bytes()


def rewrite(archive: bytes, edit_config: Callable[[Config], None] | None = None,
            extra: list[tuple[zipfile.ZipInfo | str, bytes]] = (), drop: tuple[str, ...] = ()) -> bytes:  # fmt: skip
    """`archive` with its config.json edited in place by `edit_config`, members added (`extra`) or dropped."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename in drop:
                continue
            data = source.read(info.filename)
            if info.filename == "config.json" and edit_config is not None:
                config = json.loads(data)
                edit_config(config)
                data = json.dumps(config).encode()
            target.writestr(info.filename, data)
        for info, data in extra:
            target.writestr(info, data)
    return out.getvalue()


def layers_of(config: Config) -> list[Config]:
    return config["config"]["layers"]


def _layer(config: Config, class_name: str) -> Config:
    return next(layer for layer in layers_of(config) if layer["class_name"] == class_name)


def payload_code(marker: Path) -> str:
    """Keras' serialised form (base64 marshalled bytecode) of a function that writes `marker`; never called here."""
    from keras.src.utils.python_utils import func_dump

    payload = eval(f"lambda t: (__import__('pathlib').Path({str(marker)!r}).write_text('pwned'), t)[1]")
    return func_dump(payload)[0]


def lambda_archive(tmp: Path, marker: Path) -> bytes:
    """A model with a Lambda layer whose code writes `marker` as soon as Keras rebuilds the graph (on load)."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.Lambda(lambda t: t * 1.0, name="payload")(x)
    outputs = keras.layers.Conv2D(3, 1, activation="softmax", name="logits")(x)
    path = tmp / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    code = payload_code(marker)

    def arm(config: Config) -> None:
        _layer(config, "Lambda")["config"]["function"]["config"]["code"] = code

    return rewrite(path.read_bytes(), arm)


def nested_lambda_archive(benign: bytes, marker: Path) -> bytes:
    """The benign U-Net with a Sequential sub-model holding the armed Lambda inserted in its config."""
    code = payload_code(marker)

    def hide(config: Config) -> None:
        conv = copy.deepcopy(_layer(config, "Conv2D"))
        conv["config"]["layers"] = [{"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
                                     "config": {"name": "inner", "function": {"class_name": "__lambda__",
                                                "config": {"code": code, "defaults": None, "closure": None}},
                                                "arguments": {}}}]  # fmt: skip
        conv.update(module="keras", class_name="Sequential", registered_name=None)
        layers_of(config).append(conv)

    return rewrite(benign, hide)


def with_layer_class(benign: bytes, module: str, class_name: str, registered: str | None = None,
                     config: Config | None = None) -> bytes:  # fmt: skip
    """The benign U-Net with its first Conv2D swapped for another class (kept its inbound nodes)."""

    def swap(cfg: Config) -> None:
        layer = _layer(cfg, "Conv2D")
        layer.update(module=module, class_name=class_name, registered_name=registered)
        if config is not None:
            layer["config"] = config

    return rewrite(benign, swap)


def with_activation(benign: bytes, activation: Any) -> bytes:
    def swap(cfg: Config) -> None:
        _layer(cfg, "Conv2D")["config"]["activation"] = activation

    return rewrite(benign, swap)


def with_initializer(benign: bytes, module: str, class_name: str) -> bytes:
    def swap(cfg: Config) -> None:
        _layer(cfg, "Conv2D")["config"]["kernel_initializer"] = {"module": module, "class_name": class_name,
                                                                 "config": {}, "registered_name": None}  # fmt: skip

    return rewrite(benign, swap)


def symlink_member(name: str = "model.weights.h5", target: str = "/etc/passwd") -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def zip_bomb_weights(benign: bytes, inflated: int = 300 * 1024 * 1024) -> bytes:
    """The benign archive whose model.weights.h5 is an HDF5 signature followed by `inflated` zero bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(benign)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename == "model.weights.h5":
                bomb = zipfile.ZipInfo("model.weights.h5")
                bomb.compress_type = zipfile.ZIP_DEFLATED
                with target.open(bomb, "w", force_zip64=True) as member:
                    member.write(b"\x89HDF\r\n\x1a\n")
                    block = bytes(8 * 1024 * 1024)
                    for _ in range(inflated // len(block)):
                        member.write(block)
            else:
                target.writestr(info.filename, source.read(info.filename))
    return out.getvalue()
