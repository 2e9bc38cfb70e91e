"""Load a `.keras` or `.onnx` segmentation model and check that the adapter can explain it, with a reason when not.

`load_adapter` is the one way the app turns a model file into a `SegmentationAdapter`: for the model given on the
command line (trusted: refused at start-up with the reason, no traceback) and, inside the sandboxed child process of
`explainers.model_sandbox`, for a model uploaded through the app (untrusted: its archive has passed
`explainers.model_safety.check_archive` first, and it is loaded with `safe_mode=True`).

An `.onnx` file is loaded by `explainers.onnx_loading.load_onnx` (graph normalised, onnx2torch conversion checked
against onnxruntime, else served by onnxruntime as a black box); an uploaded one has passed
`explainers.onnx_safety.check_onnx` first (no external data, standard operators only).

A model is refused when it is neither a `.keras` (zip) file nor an `.onnx` file, cannot be read by Keras or onnx,
does not take one image, does not output per-pixel class scores (e.g. a classifier), has no convolution layer for
the CAM methods (Keras; a black-box ONNX model has no CAMs at all), does not match the given class names, or fails
on a test image.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from explainers.adapter import SegmentationAdapter

PROBE_SIZE = (64, 64)  # test image side for models of any input size (a multiple of 32, for 5-pooling U-Nets)


class ModelRefused(ValueError):
    """A model the app cannot use; the message says why, for the user."""


def _first_line(err: BaseException, limit: int = 300) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


MODEL_SUFFIXES = (".keras", ".onnx")


def check_model_file(path: str | Path) -> Path:
    """`path` if it names an existing `.keras` (zip) or `.onnx` file; ModelRefused otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ModelRefused(f"{path} does not exist or is not a file.")
    if path.suffix.lower() == ".onnx":
        return path
    if path.suffix.lower() != ".keras":
        kind = {".h5": "a legacy HDF5 (.h5) file", ".hdf5": "a legacy HDF5 file", ".pb": "a TensorFlow SavedModel"}
        found = kind.get(path.suffix.lower(), f"a '{path.suffix or 'no extension'}' file")
        raise ModelRefused(f"{path.name} is {found}; only Keras 3 '.keras' and ONNX '.onnx' files are accepted (save "
                           f"with model.save('model.keras') or export to ONNX).")  # fmt: skip
    if not zipfile.is_zipfile(path):
        raise ModelRefused(f"{path.name} is not a valid .keras file (a .keras file is a zip archive; this one is "
                           "damaged or is something else renamed).")  # fmt: skip
    return path


def load_adapter(
    path: str | Path, class_names: Sequence[str] | None = None, *, safe_mode: bool = True, probe: bool = True
) -> SegmentationAdapter:
    """Load the `.keras` or `.onnx` model at `path` and wrap it in a `SegmentationAdapter`; ModelRefused with the
    reason if the model cannot be used. `probe` runs one prediction on a grey test image."""
    path = check_model_file(path)
    if path.suffix.lower() == ".onnx":
        return load_onnx_adapter(path, class_names, probe=probe)
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
    except Exception as err:
        raise ModelRefused(f"Keras could not load {path.name}: {_first_line(err)}") from None
    if not isinstance(model, keras.Model):
        raise ModelRefused(f"{path.name} holds a {type(model).__name__}, not a Keras model.")
    return checked_adapter(
        model, class_names, probe=probe, unadaptable="The model's layer graph could not be adapted",
        conv_kinds="Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D",
    )  # fmt: skip


def checked_adapter(
    model: object, class_names: Sequence[str] | None, *, probe: bool, unadaptable: str, conv_kinds: str
) -> SegmentationAdapter:
    """`SegmentationAdapter(model)`, refused (ModelRefused, one line) if it cannot be adapted, has no convolution
    layer of `conv_kinds` for the CAM methods, or (with `probe`) fails on a grey test image."""
    from explainers.adapter import SegmentationAdapter

    try:
        adapter = SegmentationAdapter(model, class_names=list(class_names) if class_names else None)
    except ValueError as err:
        raise ModelRefused(_first_line(err, 600)) from None
    except Exception as err:
        raise ModelRefused(f"{unadaptable}: {_first_line(err)}") from None
    if not adapter.conv_layers:
        raise ModelRefused(f"Unsupported model: it has no convolution layer ({conv_kinds}), so the CAM methods have "
                           "nothing to explain.")  # fmt: skip
    if probe:
        probe_adapter(adapter)
    return adapter


def load_onnx_adapter(
    path: str | Path, class_names: Sequence[str] | None = None, *, probe: bool = True
) -> SegmentationAdapter:
    """An adapter on the ONNX model at `path` (onnx2torch when it matches onnxruntime, else black box); ModelRefused
    with the reason if it cannot be used."""
    from explainers.adapter import SegmentationAdapter
    from explainers.onnx_loading import OnnxRefused, load_onnx

    path = Path(path)
    try:
        loaded = load_onnx(path)
    except OnnxRefused as err:
        raise ModelRefused(f"{path.name}: {_first_line(err, 600)}") from None
    except Exception as err:
        raise ModelRefused(f"The ONNX model {path.name} could not be loaded: {_first_line(err)}") from None
    try:
        adapter = SegmentationAdapter(loaded.backend, class_names=list(class_names) if class_names else None)
    except ValueError as err:
        raise ModelRefused(_first_line(err, 600)) from None
    if probe:
        probe_adapter(adapter)
    return adapter


def probe_adapter(adapter: SegmentationAdapter) -> None:
    """Run one prediction on a grey test image; ModelRefused if it fails or is not finite."""
    height, width = adapter.input_size or PROBE_SIZE
    try:
        probabilities = adapter.predict(np.full((height, width, 3), 127, dtype=np.uint8))
    except Exception as err:
        raise ModelRefused(f"The model failed on a {height}x{width} test image: {_first_line(err)}") from None
    if not np.all(np.isfinite(probabilities)):
        raise ModelRefused("The model predicts non-finite values (NaN or infinity) on a test image.")
