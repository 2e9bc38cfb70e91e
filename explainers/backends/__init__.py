"""Model backends behind SegmentationAdapter: one per framework (see explainers.backends.base).

`backend_for` picks the backend from the model's type without importing any framework: a model object can only be a
`keras.Model` or a `torch.nn.Module` if that framework is already imported, so `sys.modules` decides, and each
backend module (which imports its framework) is imported only when such a model arrives.
"""

from __future__ import annotations

import sys
from typing import Any

from explainers.backends.base import GradientsUnavailable, LayerInfo, ModelBackend, NativeScoreModel, ScoreSpec

__all__ = ["GradientsUnavailable", "LayerInfo", "ModelBackend", "NativeScoreModel", "ScoreSpec", "backend_for"]


def backend_for(model: Any, logits_layer: str | None = None) -> ModelBackend:
    """The backend serving `model`: a Keras 3 model, a torch.nn.Module, or an already built ModelBackend (as is)."""
    if isinstance(model, ModelBackend):
        if logits_layer is not None:
            raise ValueError("logits_layer applies to a Keras or torch model, not to an already built backend.")
        return model
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        from explainers.backends.torch_backend import TorchBackend

        return TorchBackend(model, logits_layer)
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        from explainers.backends.keras_backend import KerasBackend

        return KerasBackend(model, logits_layer)
    raise ValueError(
        f"Unsupported model: expected a Keras 3 model or a torch.nn.Module, got {type(model).__name__}."
    )
