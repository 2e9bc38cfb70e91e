"""The four registered CAMs of one layer in one compiled loop (numba), for float32 activations on the CPU.

`fused_cams(a, g, grad_cam, hires, plus_plus, layer_cam)` takes one layer's activations and gradients as C-contiguous
(k, n) float32 arrays (k channels, n = h*w pixels) and writes the four maps, ReLU'd, into four float32 arrays of n:
exactly the formulas of explainers.cam, in float32:

- Grad-CAM: sum_c mean_i(g_c) a_c;
- HiResCAM: sum_c g_c a_c;
- Grad-CAM++: sum_c w_c a_c, w_c = sum_i p / (2 + sum_i(a_c) p) over the pixels whose denominator is not 0
  (p = ReLU(g); a zero denominator's term counts 0, as explainers.cam.GradCAMPlusPlus's masked division);
- LayerCAM: sum_c ReLU(g_c) a_c.

(ReLU(g) is taken as g if g > 0 else 0, so a NaN gradient counts 0 where torch.relu would keep it.)

Eager torch runs these as ~20 operators per layer, each one pass over a full-size tensor. Every weight here is a
channel's own (its sums, its Grad-CAM++ weight), so the loop runs channel by channel: one pass over the channel's
row of a and g for its sums and the two pixel-weighted maps, one over g for the Grad-CAM++ weight, one over a for the
two channel-weighted maps, while the rows are in cache. The reductions may be reassociated (vectorised); nothing
else is, so the maps differ from the formulas only by float32 summation order. The loop is built on first use: the
first call in a process costs about a second (numba's start-up and its on-disk compilation cache; the app's warm-up
pass, explainers.warmup, pays it off the request path); `fused_cams()` is None where numba cannot be imported or
cannot build it (without a writable cache location it compiles without a cache).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FusedCams = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


def _fused_cams(a: Any, g: Any, grad_cam: Any, hires: Any, plus_plus: Any, layer_cam: Any) -> None:
    k, n = a.shape
    zero, two, count = np.float32(0.0), np.float32(2.0), np.float32(n)
    for i in range(n):
        grad_cam[i] = zero
        hires[i] = zero
        plus_plus[i] = zero
        layer_cam[i] = zero
    for c in range(k):
        a_c, g_c = a[c], g[c]
        a_sum, g_sum = zero, zero
        for i in range(n):
            activation, gradient = a_c[i], g_c[i]
            a_sum += activation
            g_sum += gradient
            hires[i] += gradient * activation
            layer_cam[i] += (gradient if gradient > zero else zero) * activation
        weight = zero
        for i in range(n):
            positive = g_c[i] if g_c[i] > zero else zero
            denominator = two + a_sum * positive
            weight += positive / denominator if denominator != zero else zero
        mean = g_sum / count
        for i in range(n):
            grad_cam[i] += mean * a_c[i]
            plus_plus[i] += weight * a_c[i]
    for maps in (grad_cam, hires, plus_plus, layer_cam):  # the ReLU (x < 0 is False for NaN, as torch.relu keeps it)
        for i in range(n):
            if maps[i] < zero:
                maps[i] = zero


@cache
def fused_cams() -> FusedCams | None:
    """The compiled loop (compiled now, on the first call), or None without numba."""
    try:
        import numba
    except ImportError:  # numba comes with shap; without it the torch backend runs its eager form
        return None
    row, table = numba.float32[::1], numba.float32[:, ::1]
    signature = numba.void(table, table, row, row, row, row)
    try:
        return numba.njit(signature, cache=True, nogil=True, fastmath={"reassoc"})(_fused_cams)
    except Exception as err:  # no writable cache location (a read-only install without a usable HOME): no cache
        log.info("numba cannot cache the CAM loop (%s); compiling it without a cache", err)
    try:
        return numba.njit(signature, cache=False, nogil=True, fastmath={"reassoc"})(_fused_cams)
    except Exception:
        log.exception("the compiled CAM loop could not be built; the torch backend runs its eager form")
        return None
