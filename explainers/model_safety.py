"""Static checks of an untrusted `.keras` archive, before anything in it is deserialised.

A Keras 3 `.keras` file is a zip archive of `config.json` (the model's architecture as nested serialised objects),
`metadata.json` and `model.weights.h5`. Loading one runs `from_config` of every class the config names, so an uploaded
archive is checked here first, with the standard library only (no Keras, no TensorFlow, no h5py):

- the archive: a size cap; a real zip; only the expected members (`config.json`, `metadata.json`,
  `model.weights.h5`), no directories, no path traversal (`..`), no absolute paths, no symlinks, no encryption, only
  stored/deflated members, the uncompressed total under a cap and a sane compression ratio (zip bombs), readable
  members whose CRC matches;
- the config: every serialised object (a dict with a `class_name`), however deeply nested (Functional / Sequential
  sub-models, activations, initializers, regularizers, constraints, dtype policies, compile settings), must be a
  Keras built-in from an allowlist: `(module, class_name)` pairs for the models, `keras.layers` classes a
  segmentation CNN uses (no `Lambda`, no `TFSMLayer`, no JAX/Flax/Torch wrappers), the built-in initializers,
  regularizers, constraints and dtype policies, built-in activation names; no `registered_name` other than the class
  name (that is how custom / registered objects are named), no serialised functions except built-in activations, no
  `__lambda__` bytecode.

`explainers.model_sandbox` then loads the archive with `safe_mode=True` in a separate, resource-limited process.
"""

from __future__ import annotations

import io
import json
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
REQUIRED_MEMBERS = ("config.json", "model.weights.h5")
ALLOWED_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5"})
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
MAX_JSON_BYTES = 8 * MiB
MAX_RATIO = 200  # uncompressed / compressed, per member (weights of a real model compress ~1.1x; zeros ~1000x)

MODEL_CLASSES = frozenset({
    ("keras.src.models.functional", "Functional"), ("keras", "Functional"), ("keras.models", "Functional"),
    ("keras", "Sequential"), ("keras.src.models.sequential", "Sequential"), ("keras.models", "Sequential"),
})  # fmt: skip

LAYERS = frozenset({
    "InputLayer", "Conv1D", "Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D", "Dense",
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization", "Normalization",
    "Rescaling", "Resizing", "CenterCrop", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "UpSampling2D", "ZeroPadding2D", "Cropping2D", "Concatenate",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot", "Reshape", "Permute", "Flatten",
    "RepeatVector", "Identity", "Masking", "ActivityRegularization",
})  # fmt: skip

INITIALIZERS = frozenset({
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity", "IdentityInitializer",
    "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "OrthogonalInitializer", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "VarianceScaling", "Zeros",
})  # fmt: skip
REGULARIZERS = frozenset({"L1", "L2", "L1L2", "OrthogonalRegularizer"})
CONSTRAINTS = frozenset({"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"})
DTYPE_POLICIES = frozenset({"DTypePolicy", "FloatDTypePolicy"})
# Only inside `compile_config` (the app loads with compile=False, so these are never built; still only built-ins).
OPTIMIZERS = frozenset({"Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "Ftrl", "Lamb", "Lion",
                        "LossScaleOptimizer", "Muon", "Nadam", "RMSprop", "SGD"})  # fmt: skip
COMPILE_MODULES = ("keras.optimizers", "keras.losses", "keras.metrics", "keras.optimizers.schedules")

ACTIVATIONS = frozenset({
    "celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu", "hard_swish",
    "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "selu", "sigmoid",
    "silu", "soft_shrink", "softmax", "softplus", "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax",
    "squareplus", "swish", "tanh", "tanh_shrink", "threshold",
})  # fmt: skip

ALLOWED_BY_MODULE: dict[str, frozenset[str]] = {
    "keras.layers": LAYERS,
    "keras.initializers": INITIALIZERS,
    "keras.regularizers": REGULARIZERS,
    "keras.constraints": CONSTRAINTS,
    "keras": DTYPE_POLICIES,
    "keras.dtype_policies": DTYPE_POLICIES,
}
INTERNAL_CLASSES = frozenset({"__keras_tensor__"})  # references between layers in `inbound_nodes`
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


class ArchiveRefused(ValueError):
    """An uploaded model archive that is not accepted; the message says why, for the user."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on an uploaded archive (bytes)."""

    max_bytes: int = 50 * MiB  # the .keras file itself
    max_uncompressed: int = 200 * MiB  # all members together, inflated


def check_archive(source: bytes | str | Path, limits: ArchiveLimits = ArchiveLimits()) -> dict[str, Any]:
    """Check an untrusted `.keras` archive (bytes or a path) without deserialising it; returns the parsed config.

    Raises ArchiveRefused with the reason.
    """
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    if not data:
        raise ArchiveRefused("The file is empty.")
    if len(data) > limits.max_bytes:
        raise ArchiveRefused(f"The model file is too large ({len(data) / MiB:.1f} MiB); the limit is "
                             f"{limits.max_bytes / MiB:.0f} MiB.")  # fmt: skip
    if data.startswith(HDF5_MAGIC):
        raise ArchiveRefused("This is a legacy HDF5 (.h5) model; only Keras 3 '.keras' files are accepted.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        raise ArchiveRefused("The file is not a .keras archive (a .keras file is a zip archive).") from None
    with archive:
        _check_members(archive, limits)
        config = _read_json(archive, "config.json")
        if "metadata.json" in archive.namelist():
            metadata = _read_json(archive, "metadata.json")
            if not isinstance(metadata, dict):
                raise ArchiveRefused("metadata.json is not a JSON object.")
        with archive.open("model.weights.h5") as weights:
            if weights.read(len(HDF5_MAGIC)) != HDF5_MAGIC:
                raise ArchiveRefused("model.weights.h5 is not an HDF5 file.")
    check_config(config)
    return config


def _check_members(archive: zipfile.ZipFile, limits: ArchiveLimits) -> None:
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(names) != len(set(names)):
        raise ArchiveRefused("The archive lists a member twice.")
    total = 0
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\\" in name:
            raise ArchiveRefused(f"The archive member {name!r} has an absolute path.")
        if ".." in parts:
            raise ArchiveRefused(f"The archive member {name!r} points outside the archive (path traversal).")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ArchiveRefused(f"The archive member {name!r} is a symbolic link.")
        if info.is_dir():
            raise ArchiveRefused(f"The archive contains a directory ({name!r}); a .keras file has none.")
        if name not in ALLOWED_MEMBERS:
            raise ArchiveRefused(f"Unexpected archive member {name!r}: a .keras model holds only "
                                 f"{', '.join(sorted(ALLOWED_MEMBERS))}.")  # fmt: skip
        if info.flag_bits & 0x1:
            raise ArchiveRefused(f"The archive member {name!r} is encrypted.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ArchiveRefused(f"The archive member {name!r} uses an unsupported compression method.")
        if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > MiB:
            ratio = info.file_size / max(info.compress_size, 1)
            raise ArchiveRefused(f"The archive member {name!r} inflates {ratio:.0f}-fold (a zip bomb?).")
        total += info.file_size
    if total > limits.max_uncompressed:
        raise ArchiveRefused(f"The archive inflates to {total / MiB:.0f} MiB; the limit is "
                             f"{limits.max_uncompressed / MiB:.0f} MiB.")  # fmt: skip
    missing = [name for name in REQUIRED_MEMBERS if name not in names]
    if missing:
        raise ArchiveRefused(f"The archive has no {' or '.join(missing)}: it is not a saved Keras model.")
    # The sizes above come from the archive's own headers: read every member (bounded) so a lie fails here.
    for info in infos:
        with archive.open(info) as member:
            read = 0
            try:
                while chunk := member.read(MiB):
                    read += len(chunk)
                    if read > info.file_size:
                        raise ArchiveRefused(f"The archive member {info.filename!r} is larger than it declares.")
            except zipfile.BadZipFile as err:
                raise ArchiveRefused(f"The archive member {info.filename!r} is damaged ({err}).") from None
            except (zlib.error, EOFError) as err:
                raise ArchiveRefused(f"The archive member {info.filename!r} is damaged ({err}).") from None


def _read_json(archive: zipfile.ZipFile, name: str) -> Any:
    info = archive.getinfo(name)
    if info.file_size > MAX_JSON_BYTES:
        raise ArchiveRefused(f"{name} is too large ({info.file_size / MiB:.1f} MiB).")
    try:
        return json.loads(archive.read(name).decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as err:
        raise ArchiveRefused(f"{name} is not valid JSON ({err}).") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _objects(node: Any, path: str, in_compile: bool = False) -> Iterator[tuple[dict[str, Any], str, bool]]:
    """Every serialised object (dict with a class_name) under `node`, with its path in the config."""
    if isinstance(node, dict):
        if "class_name" in node:
            yield node, path, in_compile
        for key, value in node.items():
            yield from _objects(value, f"{path}.{key}", in_compile or key == "compile_config")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{path}[{index}]", in_compile)


def _values_of(node: Any, key: str) -> Iterator[Any]:
    """Values of every `key` entry under `node` (e.g. every "activation")."""
    if isinstance(node, dict):
        for k, value in node.items():
            if k == key:
                yield value
            yield from _values_of(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from _values_of(value, key)


def describe(obj: dict[str, Any]) -> str:
    """'module.ClassName' (and the layer's name) of a serialised object, for messages."""
    name = obj.get("config", {}).get("name") if isinstance(obj.get("config"), dict) else None
    where = f" (layer {name!r})" if isinstance(name, str) else ""
    return f"{obj.get('module')}.{obj.get('class_name')}{where}"


def check_object(obj: dict[str, Any], path: str, in_compile: bool = False) -> None:
    """Refuse one serialised object unless it is an allowlisted Keras built-in."""
    class_name, module = obj.get("class_name"), obj.get("module")
    registered = obj.get("registered_name")
    if not isinstance(class_name, str) or not (IDENTIFIER.match(class_name) or class_name in INTERNAL_CLASSES):
        raise ArchiveRefused(f"The config names an invalid class {class_name!r} at {path}.")
    if class_name in ("__lambda__", "Lambda"):
        raise ArchiveRefused(f"The model contains a Lambda layer (Python code, at {path}); code inside a model is not "
                             "accepted.")  # fmt: skip
    if class_name.startswith("__") and class_name not in INTERNAL_CLASSES:
        raise ArchiveRefused(f"The config holds a serialised {class_name} value at {path}; it is not accepted.")
    if class_name == "function":  # a serialised function: `config` is its name, `registered_name` too for built-ins
        fn = obj.get("config")
        if registered not in (None, fn):
            raise ArchiveRefused(f"The model uses a custom or registered object {registered!r} (a function); only "
                                 "built-in Keras activations are accepted.")  # fmt: skip
        if module in ("keras.activations", "builtins") and fn in ACTIVATIONS:
            return
        raise ArchiveRefused(f"The model refers to the function {module}.{fn} (at {path}); only built-in "
                             "activations are accepted.")  # fmt: skip
    if registered is not None and registered != class_name:
        raise ArchiveRefused(f"The model uses a custom or registered object {registered!r} ({describe(obj)}); only "
                             "built-in Keras layers are accepted.")  # fmt: skip
    if class_name in INTERNAL_CLASSES:
        if module is not None:
            raise ArchiveRefused(f"The config names {module}.{class_name} at {path}.")
        return
    if not isinstance(module, str):
        raise ArchiveRefused(f"The config names {class_name} without its Keras module (a custom object?) at {path}.")
    if (module, class_name) in MODEL_CLASSES:
        return
    if in_compile and module in COMPILE_MODULES and (module != "keras.optimizers" or class_name in OPTIMIZERS):
        return
    allowed = ALLOWED_BY_MODULE.get(module)
    if allowed is None:
        raise ArchiveRefused(f"The model refers to {module}.{class_name} (at {path}); only built-in Keras layers are "
                             "accepted (module keras.layers and the built-in initializers, regularizers, "
                             "constraints and dtype policies).")  # fmt: skip
    if class_name not in allowed:
        raise ArchiveRefused(f"The layer or object {describe(obj)} is not on the allowlist of built-in Keras classes "
                             "(Lambda, TFSMLayer, wrappers of other frameworks and custom layers are refused).")


def check_config(config: Any) -> None:
    """Walk a parsed config.json and refuse anything that is not an allowlisted Keras built-in."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ArchiveRefused("config.json does not describe a Keras model.")
    if (config.get("module"), config.get("class_name")) not in MODEL_CLASSES:
        raise ArchiveRefused(f"The archive holds a {config.get('module')}.{config.get('class_name')}, not a "
                             "functional or Sequential Keras model.")  # fmt: skip
    for obj, path, in_compile in _objects(config, "config"):
        check_object(obj, path, in_compile)
    for value in _values_of(config, "activation"):
        if isinstance(value, str) and value not in ACTIVATIONS:
            raise ArchiveRefused(f"Unknown activation {value!r}: only built-in Keras activations are accepted.")
