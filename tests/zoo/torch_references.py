"""The zoo's independent references on a torch model (tests/zoo/conformance.py's `References`), computed with the
module itself, forward hooks of its own and `torch.autograd.grad`, never with the engine: the class probabilities
and Seg-Grad-CAM. Its global state is what a method must leave as it found it: the hooks on every module, each
parameter's `.grad` and `requires_grad`, and autograd's grad mode."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from explainers import SegmentationAdapter
from tests.zoo.conformance import Question, with_a_token_layer


def _logits(output: Any) -> torch.Tensor:
    return output["out"] if isinstance(output, dict) else output


class TorchReferences:
    """References for one torch zoo model (its output is the raw logits (N, C, H', W'))."""

    def __init__(self, model: nn.Module, patch_layer: str | None = None) -> None:
        self.model = model
        self.patch_layer = patch_layer  # a transformer's patch-embedding conv: its output grid is the token grid

    def _batch(self, image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)[None].copy() / 255.0)

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            z = _logits(self.model(self._batch(image)))[0]
        if z.shape[0] == 1:
            p = torch.sigmoid(z)
            return torch.cat([1 - p, p]).permute(1, 2, 0).numpy()
        return torch.softmax(z, dim=0).permute(1, 2, 0).numpy()

    def round_off(self, image: np.ndarray) -> float:
        """0.0: the torch backend runs the module eagerly, as `probabilities` does (same kernels, same order)."""
        return 0.0

    def cam_layers(self, adapter: SegmentationAdapter, count: int = 3) -> list[str]:
        """CAM layers spread over the depth (token layers included: `seg_grad_cam` reshapes them itself)."""
        names = adapter.conv_layers
        picks = [names[i] for i in np.unique(np.linspace(0, len(names) - 1, count).round().astype(int))]
        return with_a_token_layer(picks, [layer.name for layer in adapter.layers if layer.tokens])

    def seg_grad_cam(self, layers: list[str], q: Question) -> dict[str, np.ndarray]:
        captured: dict[str, torch.Tensor] = {}
        modules = dict(self.model.named_modules())
        handles = [
            modules[name].register_forward_hook(lambda m, i, o, name=name: captured.setdefault(name, o))
            for name in dict.fromkeys([*layers, *([self.patch_layer] if self.patch_layer else [])])
        ]
        try:
            with torch.enable_grad():
                x = self._batch(q.image).requires_grad_(True)
                z = _logits(self.model(x))[0, q.target]
                cells = q.region[q.stride // 2 :: q.stride, q.stride // 2 :: q.stride]
                cells = torch.from_numpy(cells.astype(np.float32))
                total = (z * cells).sum()
                grads = torch.autograd.grad(total, [captured[name] for name in layers])
        finally:
            for handle in handles:
                handle.remove()
        maps = {}
        for name, g in zip(layers, grads, strict=True):
            a, g = captured[name][0].detach(), g[0]
            if a.ndim == 2:  # tokens (L, C): the patch tokens are the last h * w, row-major on the patch conv's grid
                h, w = captured[self.patch_layer].shape[2:]
                a, g = (t[-h * w :].T.reshape(-1, h, w) for t in (a, g))
            alpha = g.sum(dim=(1, 2))
            maps[name] = torch.relu(torch.einsum("khw,k->hw", a, alpha)).numpy()
        return maps

    def global_state(self) -> dict[str, Any]:
        hooks = {
            name: (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for name, m in self.model.named_modules()
        }
        parameters = {name: (p.grad is None, p.requires_grad) for name, p in self.model.named_parameters()}
        return {"hooks": hooks, "parameters": parameters, "grad mode": torch.is_grad_enabled(),
                "training": self.model.training}  # fmt: skip

    def differences(self, snapshot: dict[str, Any]) -> list[str]:
        now = self.global_state()
        found = []
        for key in snapshot:
            if isinstance(snapshot[key], dict):
                found += [f"{key}: {name} {snapshot[key][name]} -> {now[key].get(name)}"
                          for name in snapshot[key] if now[key].get(name) != snapshot[key][name]]  # fmt: skip
            elif now[key] != snapshot[key]:
                found.append(f"{key}: {snapshot[key]} -> {now[key]}")
        return found
