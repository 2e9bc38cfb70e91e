"""The model-backend seam: what the engine needs from a framework, and nothing more.

`SegmentationAdapter` (explainers.adapter) is the one public entry point and keeps everything framework-neutral:
preprocessing, validation, region resampling to the logits grid, the score definition, caches. Behind it sits one
`ModelBackend` per framework (Keras, PyTorch, onnxruntime). A backend sees model inputs as float32 NHWC numpy arrays
(already preprocessed) and the question as a `ScoreSpec` on its own logits grid; it returns numpy arrays. Attribution
methods are written once, against the adapter, and never see a framework.

The score every backend computes, for logits z (N, h, w, C), region mask m (h, w) and class weights w (C,):

    S(x) = sum_p m[p] * sum_c w[c] * z_c(x)[p] / sum_p m[p]

With w = one-hot(c) this is the mean class logit over the region (Seg-Grad-CAM's score up to 1/|M'|); with
w = one-hot(c) - one-hot(c') it is the contrast "c rather than c'".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class LayerInfo:
    """A layer a CAM can use.

    Attributes:
        name: the backend's qualified name ("encoder/conv1" for Keras, "backbone.layer1.0.conv1" for torch).
        kind: the layer's class name ("Conv2D", "SeparableConv2D", "Conv2d", "ConvTranspose2d", ...).
        channels: output channels (None if unknown).
        kernel: spatial kernel size (kh, kw), or None where it has none (token layers) or it is unknown.
        tokens: True when the activation is a token sequence (N, L, C) on a square patch grid (transformers); the
            backend reshapes it to (h, w, C) for the CAM maps.
        shape: the activation's (h, w, channels) where the backend knows it (None entries for a dynamic size).
        activated: True when the activation is a nonlinearity's output (the rectified feature maps the CAM papers
            explain): a conv with a rectifying activation of its own, or an activation layer listed after the conv
            whose (batch-normalised) output it rectifies, `kernel` then being that conv's.
    """

    name: str
    kind: str
    channels: int | None = None
    kernel: tuple[int, int] | None = None
    tokens: bool = False
    shape: tuple[int | None, int | None, int | None] | None = None
    activated: bool = False


@dataclass(frozen=True)
class ScoreSpec:
    """The question on the backend's logits grid: region mask (h, w) float32 0/1 and class weights (C,) float32."""

    region: np.ndarray
    weights: np.ndarray


class CamOps(Protocol):
    """The few array operations a CAM combiner uses beyond arithmetic and comparisons; each backend supplies them
    for its own tensors, so every CAM variant is written once (explainers.cam) and runs inside the backend."""

    def relu(self, x: Any) -> Any: ...
    def sum(self, x: Any, axis: int | tuple[int, ...]) -> Any: ...
    def mean(self, x: Any, axis: int | tuple[int, ...]) -> Any: ...
    def where(self, condition: Any, x: Any, y: Any) -> Any: ...
    def logical_and(self, x: Any, y: Any) -> Any: ...


# A CAM combiner maps (ops, activation (h, w, k), gradient (h, w, k)) -> (h, w), in the backend's tensors.
Combiner = Callable[[CamOps, Any, Any], Any]

# The registered CAMs a backend may compute fused (sharing their passes over A and G) instead of as written.
FUSED_KINDS = ("gradcam", "hirescam", "gradcam++", "layercam")


def fused_kinds() -> dict[Callable[..., Any], str]:
    """{combine function: CAM name} of the registered CAMs the backends compute fused (FUSED_KINDS)."""
    from explainers.cam import cam_explainers

    return {explainer.combine: name for name, explainer in cam_explainers().items() if name in FUSED_KINDS}


class GradientsUnavailable(ValueError):
    """A gradient-based method was asked of a backend that has no gradients (a black-box model); says why."""


@dataclass(frozen=True)
class NativeScoreModel:
    """The region score as a model of the backend's own framework, for libraries that walk a native graph
    (shap.DeepExplainer): `model` maps the native input to (N, 1) scores; `to_native` turns an NHWC float32 batch of
    model inputs into that input; `to_nhwc` turns attributions shaped like the native input back into NHWC numpy."""

    model: Any
    to_native: Callable[[np.ndarray], Any]
    to_nhwc: Callable[[Any], np.ndarray]


@runtime_checkable
class ModelBackend(Protocol):
    """One framework's model, as the adapter needs it. Inputs are float32 NHWC model inputs.

    A black-box backend (`gradients = False`, e.g. onnxruntime) needs only the attributes, `output_shape_for`,
    `logits` and `scores` (explainers.backends.CORE_MEMBERS): the adapter calls the gradient, sanity-check and
    DeepSHAP members only when `gradients` is True, and raises GradientsUnavailable(why_no_gradients) otherwise.

    Optional: `activation_bytes(size) -> int`, the bytes of the intermediate tensors one image of `size` (H, W)
    creates, counted by the framework (every built-in backend has it); the memory budget sizes batches from it
    (explainers.memory), and a backend without it gets fixed batch sizes."""

    framework: str  # "keras" | "torch" | "onnxruntime"
    input_size: tuple[int, int] | None  # fixed (H, W), or None for a model of dynamic size
    num_classes: int
    binary: bool  # a single-channel sigmoid model, seen as two classes (-z, z)
    layers: list[LayerInfo]  # CAM layers, in forward (input -> output) order
    gradients: bool  # False: a black-box backend; gradient methods raise GradientsUnavailable(why_no_gradients)
    why_no_gradients: str | None

    def output_shape_for(self, size: tuple[int, int]) -> tuple[int, int]:
        """The logits grid (h, w) for an input of size (H, W)."""
        ...

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(N, h, w, C) float32 logits (sigmoid models: the two-class logits) for a batch, without gradients."""
        ...

    def scores(self, x: np.ndarray, spec: ScoreSpec) -> np.ndarray:
        """(N,) S for a batch, without gradients."""
        ...

    def input_gradients(self, x: np.ndarray, spec: ScoreSpec) -> tuple[np.ndarray, np.ndarray]:
        """S (N,) and dS/dx (N, H, W, 3)."""
        ...

    def layer_maps(
        self, x: np.ndarray, spec: ScoreSpec, combiners: Sequence[Combiner], layers: Sequence[str]
    ) -> tuple[float, list[np.ndarray]]:
        """S and, per chosen layer, an (h, w, len(combiners)) float32 array of every combiner's map at the layer's own
        resolution, from ONE forward and ONE backward pass (x is one image, (1, H, W, 3))."""
        ...

    def fast_pass(
        self, x: np.ndarray, spec: ScoreSpec, combiners: Sequence[Combiner], layers: Sequence[str]
    ) -> tuple[float, list[np.ndarray], np.ndarray]:
        """`layer_maps` and, from the SAME forward and backward pass (the input gradient on the same tape as the layer
        gradients), dS/dx (H, W, 3) of the one image: every fast method (the CAMs, saliency, gradient x input) from
        one pass. The adapter uses it when every conv layer is asked for (the backward reaches the input anyway)."""
        ...

    def layer_gradients(
        self, x: np.ndarray, spec: ScoreSpec, layers: Sequence[str]
    ) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
        """S and, per chosen layer, its activation and dS/dactivation, each (h, w, k) numpy, from one pass (x: one
        image). Large: for tests and tools that need the raw tensors; the CAMs use `layer_maps`."""
        ...

    # ---- the sanity check (cascading randomization): never on the user's model, always on a clone
    def clone(self) -> ModelBackend:
        """A backend on an independent copy of the model (its own weights, equal to these), same logits choice."""
        ...

    def randomization_units(self) -> list[list[str]]:
        """Weighted layers grouped as randomization units (a conv with the normalisation layer that follows it), from
        the logits toward the input; each unit lists its layers output-side first."""
        ...

    def reinitialise(self, names: Sequence[str], seed: int) -> None:
        """Re-initialise every weight (and normalisation statistic) of the named layers in place, seeded."""
        ...

    def snapshot(self, names: Sequence[str] | None = None) -> Any:
        """An opaque copy of the weights of the named layers (None: every layer), for `restore`."""
        ...

    def restore(self, snapshot: Any) -> None:
        """Put back the weights a `snapshot` holds."""
        ...

    # ---- DeepSHAP
    def score_model(self, spec: ScoreSpec, size: tuple[int, int]) -> NativeScoreModel:
        """The region score for inputs of `size` (H, W) as a native model (ValueError with the reason if none)."""
        ...
