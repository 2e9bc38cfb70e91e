"""The torch backend's CAM step: every layer's maps for a list of combiners, the four registered CAMs fused.

`explainers.cam` writes each CAM once, as a `combine(ops, A, G)` formula over (h, w, k) tensors; the Keras backend
runs those formulas inside one XLA-compiled step, which fuses them. Eager torch cannot fuse: each operator is one
pass over a full-size tensor, and the formulas as written cost ~35 such passes per layer (Grad-CAM++ alone ~20).
Here the four registered CAMs (Grad-CAM, HiResCAM, Grad-CAM++, LayerCAM) of one layer are fused. A float32 layer on
the CPU runs them in one compiled loop (explainers.backends.cam_kernel: three passes over each channel's row while it
is in cache, about 4x faster than the eager form); any other (CUDA, float64) in eager torch, sharing their passes over A
and G on the (k, h*w) memory the tensors already have:

- channel sums of A and G once; ReLU(G) once (Grad-CAM++ and LayerCAM both use it);
- Grad-CAM++'s weights sum_ij p / (2 + sum_ij(A) p), p = ReLU(G), as one multiply, one in-place add, one in-place
  division and one sum (the closed form explainers.cam.GradCAMPlusPlus derives). A zero denominator (alpha
  undefined, counted 0 by the formula) makes that sum non-finite; only then are the layer's weights recomputed with
  the zero denominators masked, so the result is the formula's in every case;
- the channel-weighted maps (Grad-CAM, Grad-CAM++) as matrix-vector products; the pixel-weighted ones (HiResCAM,
  LayerCAM) as a product into a reused buffer and a sum over channels.

Either way every layer's maps are written into one (combiners, sum of h*w) buffer, ReLU'd in place and copied to
numpy once.

Any other combiner runs as written, on the (h, w, k) views. tests/explainers/test_torch_cams.py checks the fused maps
of both forms against the formulas of explainers.cam (a zero Grad-CAM++ denominator included); the backend tests
check them against independent autograd computations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from explainers.backends.base import FUSED_KINDS, Combiner, fused_kinds
from explainers.backends.cam_kernel import FusedCams, fused_cams


class TorchOps:
    """The CamOps namespace on torch tensors (for combiners that are not fused)."""

    relu = staticmethod(torch.relu)
    where = staticmethod(torch.where)
    logical_and = staticmethod(torch.logical_and)

    @staticmethod
    def sum(x: torch.Tensor, axis: int | tuple[int, ...]) -> torch.Tensor:
        return torch.sum(x, dim=axis)

    @staticmethod
    def mean(x: torch.Tensor, axis: int | tuple[int, ...]) -> torch.Tensor:
        return torch.mean(x, dim=axis)


TORCH_OPS = TorchOps()


def _masked_plus_plus_weights(a: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ channel weights (k,) of (k, n) activations and ReLU'd gradients, zero denominators counted 0."""
    denominator = p * a.sum(dim=1, keepdim=True) + 2.0
    return (p / torch.where(denominator != 0.0, denominator, float("inf"))).sum(dim=1)


def layer_maps(
    activations: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    combiners: Sequence[Combiner],
    *,
    compiled: bool = True,
) -> list[np.ndarray]:
    """Per layer, the (h, w, len(combiners)) float32 numpy maps of every combiner, from (1, k, h, w) activations and
    their gradients (explainers.backends.base.Combiner); the registered CAMs fused, others as written. The fused
    CAMs of a float32 CPU layer run in the compiled loop of explainers.backends.cam_kernel (`compiled`, and numba
    importable), any other layer's in eager torch."""
    kinds = fused_kinds()
    names = [kinds.get(combine) for combine in combiners]
    rows = {name: j for j, name in enumerate(names) if name is not None}
    shapes = [(int(a.shape[2]), int(a.shape[3])) for a in activations]
    offsets = np.cumsum([0] + [h * w for h, w in shapes]).tolist()
    first = activations[0]
    kernel = fused_cams() if rows and compiled else None
    with torch.no_grad():
        out = torch.empty((len(combiners), offsets[-1]), dtype=first.dtype, device=first.device)
        shared = out.numpy() if kernel is not None and _compiled_form(out) else None  # `out`'s memory, for the loop
        eager = False
        plus_plus: list[tuple[int, torch.Tensor]] = []
        for i, (a4, g4) in enumerate(zip(activations, grads, strict=True)):
            k = int(a4.shape[1])
            maps = out[:, offsets[i] : offsets[i + 1]]
            if shared is not None and _compiled_form(a4, g4):
                _kernel_layer(kernel, _array(a4, k), _array(g4, k), shared[:, offsets[i] : offsets[i + 1]], rows)
            elif rows:
                eager = True
                weights = _fused_layer(a4[0].reshape(k, -1), g4[0].reshape(k, -1), maps, rows)
                if weights is not None:
                    plus_plus.append((i, weights))
            for j, (name, combine) in enumerate(zip(names, combiners, strict=True)):
                if name is None:
                    h, w = shapes[i]
                    maps[j] = combine(TORCH_OPS, a4[0].permute(1, 2, 0), g4[0].permute(1, 2, 0)).reshape(h * w)
        if plus_plus and not bool(torch.isfinite(torch.cat([w for _, w in plus_plus])).all()):
            for i, weights in plus_plus:  # a zero denominator somewhere: the masked weights for those layers
                if not bool(torch.isfinite(weights).all()):
                    k = int(activations[i].shape[1])
                    a, g = activations[i][0].reshape(k, -1), grads[i][0].reshape(k, -1)
                    fixed = _masked_plus_plus_weights(a, torch.relu(g))
                    torch.mv(a.t(), fixed, out=out[rows["gradcam++"], offsets[i] : offsets[i + 1]])
        if eager:  # (the loop's maps are ReLU'd already; once more changes nothing)
            for j in rows.values():
                out[j].relu_()
        flat = out.float().cpu().numpy()
    return [
        flat[:, offsets[i] : offsets[i + 1]].reshape(len(combiners), h, w).transpose(1, 2, 0)
        for i, (h, w) in enumerate(shapes)
    ]


def _compiled_form(*tensors: torch.Tensor) -> bool:
    """Whether the compiled loop takes these tensors: float32, on the CPU."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)


def _array(t: torch.Tensor, k: int) -> np.ndarray:
    """A (1, k, h, w) CPU tensor as a C-contiguous (k, h*w) numpy array (a view where the tensor is contiguous)."""
    return np.ascontiguousarray(t.detach().numpy()[0].reshape(k, -1))


def _kernel_layer(kernel: FusedCams, a: np.ndarray, g: np.ndarray, maps: np.ndarray, rows: dict[str, int]) -> None:
    """The fused CAMs of one layer ((k, n) float32 arrays) by the compiled loop into their rows of `maps`, ReLU'd,
    the loop's arguments in FUSED_KINDS order; a CAM not asked for goes to a scratch row."""
    n = int(a.shape[1])
    targets = [maps[rows[name]] if name in rows else np.empty(n, dtype=np.float32) for name in FUSED_KINDS]
    kernel(a, g, *targets)


def _fused_layer(a: torch.Tensor, g: torch.Tensor, maps: torch.Tensor, rows: dict[str, int]) -> torch.Tensor | None:
    """The fused CAMs of one layer ((k, n) activations and gradients) into their rows of `maps` (before the ReLU);
    returns the Grad-CAM++ weights (to check for a zero denominator) when that CAM is asked for."""
    if "gradcam" in rows:
        torch.mv(a.t(), g.mean(dim=1), out=maps[rows["gradcam"]])
    if "hirescam" in rows or "layercam" in rows:
        buffer = torch.empty_like(a)
    if "hirescam" in rows:
        torch.mul(g, a, out=buffer)
        torch.sum(buffer, dim=0, out=maps[rows["hirescam"]])
    weights = None
    if "gradcam++" in rows or "layercam" in rows:
        p = torch.relu(g)
        if "layercam" in rows:
            torch.mul(p, a, out=buffer)
            torch.sum(buffer, dim=0, out=maps[rows["layercam"]])
        if "gradcam++" in rows:
            ratio = p * a.sum(dim=1, keepdim=True)
            ratio += 2.0
            torch.div(p, ratio, out=ratio)
            weights = ratio.sum(dim=1)
            torch.mv(a.t(), weights, out=maps[rows["gradcam++"]])
    return weights
