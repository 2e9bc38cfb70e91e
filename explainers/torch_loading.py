"""Load a PyTorch segmentation model from a factory spec and check that the adapter can explain it.

`python app.py --torch package.module:factory [--weights checkpoint.pt]`: `factory` is any callable (a function or a
class) that returns the `torch.nn.Module`; like `--model`, it is trusted code (it is imported and called). The module
is imported from the current directory or the installed packages. `--weights` loads a state dict with
`torch.load(..., weights_only=True)` (tensors only, no pickled code); a checkpoint dict holding it under
"state_dict" or "model" is read too. The module is moved to the GPU when `torch.cuda.is_available()`.

A model is refused (`ModelRefused`, one line saying why) when torch is not installed, the spec is malformed, the
module cannot be imported, the factory fails or returns something other than an nn.Module, the weights cannot be read
or do not fit, the module does not output per-pixel class scores, has no Conv2d/ConvTranspose2d layer, or fails on a
test image.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explainers.model_loading import ModelRefused, _first_line, checked_adapter

if TYPE_CHECKING:
    from explainers.adapter import SegmentationAdapter

INSTALL_HINT = "install it with `pip install -r requirements-torch.txt`"


def import_torch() -> Any:
    """The torch module, or ModelRefused saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ModelRefused(f"PyTorch is not installed; {INSTALL_HINT}.") from None
    return torch


def resolve_factory(spec: str) -> Any:
    """The callable named by 'package.module:factory' (the factory may be a dotted attribute path)."""
    module_name, sep, attribute = str(spec).partition(":")
    if not sep or not module_name.strip() or not attribute.strip():
        raise ModelRefused(f"--torch takes 'package.module:factory' (a function or class returning the module); "
                           f"got {spec!r}.")  # fmt: skip
    if os.getcwd() not in sys.path:  # a module in the directory the app is started from
        sys.path.append(os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as err:
        raise ModelRefused(f"cannot import {module_name}: {_first_line(err)}") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ModelRefused(f"{module_name} has no attribute {attribute!r}.")
        target = getattr(target, part)
    if not callable(target):
        raise ModelRefused(f"{spec} is not callable; it must be a function or class returning a torch.nn.Module.")
    return target


def _state_dict(checkpoint: Any) -> Mapping[str, Any]:
    for key in ("state_dict", "model"):
        if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
    return checkpoint


def load_weights(model: Any, weights: str | Path) -> None:
    """Load a state dict file into `model` (strict); ModelRefused with the reason if it cannot."""
    torch = import_torch()
    path = Path(weights)
    if not path.is_file():
        raise ModelRefused(f"{path} does not exist or is not a file.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise ModelRefused(f"{path.name} cannot be read by torch.load(weights_only=True): it is not a saved state "
                           "dict, or it holds objects other than tensors.") from None  # fmt: skip
    state = _state_dict(checkpoint)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelRefused(f"{path.name} holds a {type(checkpoint).__name__}, not a state dict of tensors.")
    try:
        model.load_state_dict(state, strict=True)
    except Exception as err:
        raise ModelRefused(f"the weights in {path.name} do not fit the model: {_first_line(err)}") from None


def load_torch_model(spec: str, weights: str | Path | None = None) -> Any:
    """Build the module with the factory `spec`, load `weights`, put it in eval mode on the GPU if there is one."""
    torch = import_torch()
    factory = resolve_factory(spec)
    try:
        model = factory()
    except Exception as err:
        raise ModelRefused(f"{spec}() failed: {_first_line(err)}") from None
    if not isinstance(model, torch.nn.Module):
        raise ModelRefused(f"{spec}() returned a {type(model).__name__}, not a torch.nn.Module.")
    if weights:
        load_weights(model, weights)
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model.eval()


def load_torch_adapter(
    spec: str,
    weights: str | Path | None = None,
    class_names: Sequence[str] | None = None,
    *,
    probe: bool = True,
) -> SegmentationAdapter:
    """The `SegmentationAdapter` for the torch model built by `spec` (see the module docstring); ModelRefused if the
    app cannot use it. `probe` runs one prediction on a grey test image."""
    model = load_torch_model(spec, weights)
    return checked_adapter(model, class_names, probe=probe, unadaptable="The module could not be adapted",
                           conv_kinds="Conv2d, ConvTranspose2d")  # fmt: skip
