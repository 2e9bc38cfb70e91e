"""An ONNX model served by onnxruntime alone: a black-box backend (logits and scores, no gradients, no CAM layers).

Used when the ONNX graph cannot be converted to torch (onnx2torch has no converter for one of its operators) or the
converted module does not match onnxruntime (see `explainers.onnx_loading`). The graph it runs is the normalised one:
NCHW input, logits output (a final softmax/sigmoid stripped). Perturbation methods (SHAP Partition) and the trust
metrics need only batched scores, which this backend gives; gradient methods raise `GradientsUnavailable` with the
reason (`why_no_gradients`).

Batches run through onnxruntime in chunks of `batch_size` images (the graph's own fixed batch where it has one), and
the region score is reduced in numpy from each chunk's logits, so no more than one chunk of logits is held at a time.

The sanity check (cascading weight randomization) is refused here: it compares each method's map before and after
re-initialising the network block by block, which needs weights whose role (a layer's kernel, its normalisation) is
known and, for the maps, gradient methods; a black box has neither. onnxruntime could run a graph with replaced
initializers, but an initializer carries no initializer scheme or layer boundary, and only SHAP (hundreds of forward
passes per map) would be left to compare, per cascading step. DeepSHAP needs a native graph to walk: refused too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from explainers.backends.base import Combiner, GradientsUnavailable, LayerInfo, NativeScoreModel, ScoreSpec
from explainers.onnx_loading import NormalisedGraph, ort_session

CHUNK_BYTES = 256 * 1024 * 1024  # logits held at once while scoring a batch


class OnnxRuntimeBackend:
    """A normalised ONNX graph (explainers.onnx_loading.NormalisedGraph) run by onnxruntime; gradients=False."""

    framework = "onnxruntime"
    gradients = False

    def __init__(self, graph: NormalisedGraph, why_no_gradients: str, session: Any | None = None,
                 batch_size: int = 64) -> None:  # fmt: skip
        self.graph = graph
        self.session = session or ort_session(graph.model)
        self.input_size: tuple[int, int] | None = graph.input_size
        self.num_classes = graph.num_classes
        self.binary = graph.binary
        self.layers: list[LayerInfo] = []
        self.why_no_gradients: str | None = why_no_gradients
        self.batch_size = int(graph.batch or batch_size)
        self._output_shapes: dict[tuple[int, int], tuple[int, int]] = {}

    def __repr__(self) -> str:
        return f"OnnxRuntimeBackend(input_size={self.input_size}, classes={self.num_classes}, gradients=False)"

    # ------------------------------------------------------------------------------------------------ forward
    def _forward(self, x: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) float32 NHWC -> (n, C', h, w) float32 NCHW logits of the normalised graph, n <= batch size."""
        x_nchw = np.ascontiguousarray(np.asarray(x, dtype=np.float32).transpose(0, 3, 1, 2))
        if self.graph.batch is not None and len(x_nchw) < self.graph.batch:  # a fixed batch: pad the last chunk
            pad = np.repeat(x_nchw[-1:], self.graph.batch - len(x_nchw), axis=0)
            return self._run(np.concatenate([x_nchw, pad]))[: len(x_nchw)]
        return self._run(x_nchw)

    def _run(self, x_nchw: np.ndarray) -> np.ndarray:
        out = self.session.run([self.graph.output_name], {self.graph.input_name: x_nchw})[0]
        return np.asarray(out, dtype=np.float32)

    def _chunks(self, x: np.ndarray) -> Sequence[slice]:
        """Batch slices: at most batch_size images and CHUNK_BYTES of logits each."""
        n, height, width = x.shape[:3]
        h, w = self.output_shape_for((height, width))
        per_image = max(h * w * max(self.graph.channels, 1) * 4, 1)
        size = self.graph.batch or max(1, min(self.batch_size, CHUNK_BYTES // per_image))
        return [slice(start, start + size) for start in range(0, n, size)]

    def output_shape_for(self, size: tuple[int, int]) -> tuple[int, int]:
        """The logits grid (h, w) for an input of size (H, W) (one test run per new size)."""
        size = (int(size[0]), int(size[1]))
        if size not in self._output_shapes:
            probe = np.zeros((1, size[0], size[1], 3), dtype=np.float32)
            shape = self._forward(probe).shape
            self._output_shapes[size] = (int(shape[2]), int(shape[3]))
        return self._output_shapes[size]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(N, h, w, C) float32 logits (binary models: the two classes -z, z)."""
        x = np.asarray(x, dtype=np.float32)
        parts = [self._forward(x[chunk]).transpose(0, 2, 3, 1) for chunk in self._chunks(x)]
        z = np.concatenate(parts) if parts else np.zeros((0, 0, 0, self.num_classes), np.float32)
        return np.concatenate([-z, z], axis=-1) if self.binary else z

    def scores(self, x: np.ndarray, spec: ScoreSpec) -> np.ndarray:
        """(N,) S = sum_p m[p] sum_c w[c] z_c[p] / sum_p m[p], computed chunk by chunk."""
        x = np.asarray(x, dtype=np.float32)
        region = np.asarray(spec.region, dtype=np.float32)
        weights = np.asarray(spec.weights, dtype=np.float32)
        if self.binary:  # the two classes are (-z, z): sum_c w[c] z_c = (w[1] - w[0]) z
            weights = np.array([weights[1] - weights[0]], dtype=np.float32)
        denominator = max(float(region.sum()), 1.0)
        out = []
        for chunk in self._chunks(x):
            z = self._forward(x[chunk])  # (n, C', h, w)
            out.append(np.einsum("nchw,c,hw->n", z, weights, region, optimize=True) / denominator)
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)

    # ---------------------------------------------------------------------------------------------- gradients
    def input_gradients(self, x: np.ndarray, spec: ScoreSpec) -> tuple[np.ndarray, np.ndarray]:
        """Unavailable: raises GradientsUnavailable with the reason."""
        raise GradientsUnavailable(self._unavailable("input gradients"))

    def layer_maps(
        self, x: np.ndarray, spec: ScoreSpec, combiners: Sequence[Combiner], layers: Sequence[str]
    ) -> tuple[float, list[np.ndarray]]:
        """Unavailable: raises GradientsUnavailable with the reason."""
        raise GradientsUnavailable(self._unavailable("layer activations and gradients (CAMs)"))

    def fast_pass(
        self, x: np.ndarray, spec: ScoreSpec, combiners: Sequence[Combiner], layers: Sequence[str]
    ) -> tuple[float, list[np.ndarray], np.ndarray]:
        """Unavailable: raises GradientsUnavailable with the reason."""
        raise GradientsUnavailable(self._unavailable("layer activations and gradients (CAMs)"))

    def layer_gradients(
        self, x: np.ndarray, spec: ScoreSpec, layers: Sequence[str]
    ) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
        """Unavailable: raises GradientsUnavailable with the reason."""
        raise GradientsUnavailable(self._unavailable("layer activations and gradients"))

    # ---------------------------------------------------------------------------------------------- memory budget
    def activation_bytes(self, size: tuple[int, int]) -> int:
        """Bytes of the graph's intermediate values and output for one image of `size`: the normalised graph with
        its input fixed to (batch, 3, H, W), shape-inferred by the onnx library, every value of known shape summed
        (divided by the graph's fixed batch, if it has one). An upper bound: onnxruntime reuses buffers."""
        return intermediate_bytes(self.graph, size)

    # -------------------------------------------------------------------------- sanity check and DeepSHAP: refused
    def _no_weights(self) -> ValueError:
        return ValueError("The sanity check needs a model whose weights can be re-initialised layer by layer and whose "
                          f"maps come from gradients; this black-box ONNX model has neither ({self.why_no_gradients}).")

    def clone(self) -> OnnxRuntimeBackend:
        """Refused (ValueError): see the module docstring."""
        raise self._no_weights()

    def randomization_units(self) -> list[list[str]]:
        """Refused (ValueError): see the module docstring."""
        raise self._no_weights()

    def reinitialise(self, names: Sequence[str], seed: int) -> None:
        """Refused (ValueError): see the module docstring."""
        raise self._no_weights()

    def snapshot(self, names: Sequence[str] | None = None) -> Any:
        """Refused (ValueError): see the module docstring."""
        raise self._no_weights()

    def restore(self, snapshot: Any) -> None:
        """Refused (ValueError): see the module docstring."""
        raise self._no_weights()

    def score_model(self, spec: ScoreSpec, size: tuple[int, int]) -> NativeScoreModel:
        """Refused (GradientsUnavailable): DeepSHAP walks a native differentiable graph."""
        raise GradientsUnavailable(self._unavailable("native differentiable graph (DeepSHAP)"))

    def _unavailable(self, what: str) -> str:
        return (f"This ONNX model is served by onnxruntime as a black box, which gives no {what}: "
                f"{self.why_no_gradients}. Perturbation methods (SHAP) and the trust metrics still run.")  # fmt: skip


def intermediate_bytes(graph: NormalisedGraph, size: tuple[int, int]) -> int:
    """Bytes per image of every intermediate value and output of `graph` at input size (H, W) (see
    `OnnxRuntimeBackend.activation_bytes`); values whose shape stays unknown after inference are not counted."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(graph.model)
    batch = int(graph.batch or 1)
    del model.graph.value_info[:]
    for value in model.graph.input:
        if value.name == graph.input_name:
            dims = value.type.tensor_type.shape.dim
            for dim, extent in zip(dims, (batch, 3, int(size[0]), int(size[1])), strict=True):
                dim.Clear()
                dim.dim_value = extent
    inferred = onnx.shape_inference.infer_shapes(model)
    total = 0
    for value in [*inferred.graph.value_info, *inferred.graph.output]:
        tensor = value.type.tensor_type
        dims = [dim.dim_value if dim.HasField("dim_value") else 0 for dim in tensor.shape.dim]
        if not tensor.HasField("shape") or not dims or min(dims) <= 0:
            continue
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).itemsize
        total += int(np.prod(dims)) * itemsize
    return total // batch
