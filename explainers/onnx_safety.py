"""Static checks of an untrusted `.onnx` upload, before any runtime sees it.

An ONNX file is data (a protobuf message), not code, but it can still reach outside itself or ask for code:

- **External data.** A tensor may keep its bytes in another file: `data_location = EXTERNAL` with an `external_data`
  entry `location` that names a path, relative to the model (`../../etc/passwd`) or absolute. onnx's loader and
  onnxruntime both open that path, so an upload could read any file on the server into a weight (and show it back
  through the model's outputs). Every tensor is checked: initializers, sparse initializers, tensor attributes of every
  node (a `Constant` node's `value` and any other tensor-valued attribute) and the same inside every subgraph (`If`,
  `Loop`, `Scan` bodies), at any depth. Any external reference refuses the file; nothing is opened.
- **Custom operators.** A node in a domain other than the standard ONNX operator set ("" or "ai.onnx") needs a custom
  operator library (native code) or names one onnxruntime may load; refused, as are model-local functions (a function
  can be named like an operator and is a second place to hide nodes), `ai.onnx.ml` (classical-ML operators: trees,
  SVMs, label encoders; a segmentation network has none) and training sections.
- **Size.** A cap on the file, on the number of nodes and on subgraph depth (a deeply nested graph is a parser stress
  test, not a model).
- **Damage.** A truncated or corrupt file does not parse as a model, or fails `onnx.checker.check_model`; refused.

Then `explainers.model_sandbox` loads it (normalisation, onnx2torch conversion check, a test prediction) in a
separate, resource-limited process.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import AttributeProto, GraphProto, ModelProto, TensorProto

MiB = 1024 * 1024
ALLOWED_DOMAINS = frozenset({"", "ai.onnx"})
MAX_SUBGRAPH_DEPTH = 8


class OnnxUploadRefused(ValueError):
    """An uploaded ONNX file that is not accepted; the message says why, for the user."""


@dataclass(frozen=True)
class OnnxLimits:
    """Caps on an uploaded ONNX file."""

    max_bytes: int = 200 * MiB
    max_nodes: int = 20_000


def check_onnx(source: bytes | str | Path, limits: OnnxLimits = OnnxLimits()) -> ModelProto:
    """Check an untrusted ONNX file (bytes or a path) without running it or reading anything it refers to; returns the
    parsed model. Raises OnnxUploadRefused with the reason."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise OnnxUploadRefused(_too_large(size, limits))
        data = path.read_bytes()
    else:
        data = bytes(source)
    if not data:
        raise OnnxUploadRefused("The file is empty.")
    if len(data) > limits.max_bytes:
        raise OnnxUploadRefused(_too_large(len(data), limits))
    try:
        model = onnx.load_model(io.BytesIO(data), load_external_data=False)
    except Exception:
        raise OnnxUploadRefused("The file is not a readable ONNX model (truncated or corrupt?).") from None
    if not model.HasField("graph") or not model.graph.node:
        raise OnnxUploadRefused("The ONNX file holds no graph (no nodes); it is truncated or not a model.")
    check_model_proto(model, limits)
    try:
        onnx.checker.check_model(model)
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise OnnxUploadRefused(f"The ONNX model is invalid (truncated or corrupt?): {first}") from None
    return model


def _too_large(size: int, limits: OnnxLimits) -> str:
    return f"The model file is too large ({size / MiB:.1f} MiB); the limit is {limits.max_bytes / MiB:.0f} MiB."


def check_model_proto(model: ModelProto, limits: OnnxLimits = OnnxLimits()) -> None:
    """The structural checks (external data, domains, functions, sizes) on a parsed model."""
    for opset in model.opset_import:
        if opset.domain not in ALLOWED_DOMAINS:
            raise OnnxUploadRefused(f"The model imports the operator set {opset.domain!r}; only the standard ONNX "
                                    "operators are accepted (no custom or ai.onnx.ml operators).")  # fmt: skip
    if model.functions:
        raise OnnxUploadRefused(f"The model defines {len(model.functions)} local function(s) "
                                f"({model.functions[0].domain}.{model.functions[0].name}); only plain graphs of "
                                "standard operators are accepted.")  # fmt: skip
    if model.training_info:
        raise OnnxUploadRefused("The model has a training section; only inference graphs are accepted.")
    nodes = 0
    for graph, depth in _graphs(model.graph, 0):
        if depth > MAX_SUBGRAPH_DEPTH:
            raise OnnxUploadRefused(f"The model nests subgraphs more than {MAX_SUBGRAPH_DEPTH} deep.")
        nodes += len(graph.node)
        if nodes > limits.max_nodes:
            raise OnnxUploadRefused(f"The model has more than {limits.max_nodes} nodes.")
        for node in graph.node:
            if node.domain not in ALLOWED_DOMAINS:
                raise OnnxUploadRefused(f"The node {node.name or node.op_type!r} is the operator {node.op_type!r} "
                                        f"of the custom domain {node.domain!r}; only standard ONNX operators are "
                                        "accepted.")  # fmt: skip
        for tensor, where in _tensors(graph):
            if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
                location = next((e.value for e in tensor.external_data if e.key == "location"), "?")
                raise OnnxUploadRefused(f"The tensor {tensor.name or where!r} ({where}) keeps its data in another "
                                        f"file ({location!r}); an uploaded model must hold all its data (save it "
                                        "with save_as_external_data=False).")  # fmt: skip


def _graphs(graph: GraphProto, depth: int) -> Iterator[tuple[GraphProto, int]]:
    """`graph` and every subgraph in its nodes' attributes, with their nesting depth."""
    yield graph, depth
    if depth > MAX_SUBGRAPH_DEPTH:
        return
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == AttributeProto.GRAPH or attribute.HasField("g"):
                yield from _graphs(attribute.g, depth + 1)
            for sub in attribute.graphs:
                yield from _graphs(sub, depth + 1)


def _tensors(graph: GraphProto) -> Iterator[tuple[TensorProto, str]]:
    """Every tensor stored in one graph (not its subgraphs): initializers and node attributes."""
    for tensor in graph.initializer:
        yield tensor, "an initializer"
    for sparse in graph.sparse_initializer:
        yield sparse.values, "a sparse initializer"
        yield sparse.indices, "a sparse initializer"
    for node in graph.node:
        where = f"attribute of node {node.name or node.op_type}"
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t, where
            for tensor in attribute.tensors:
                yield tensor, where
            if attribute.HasField("sparse_tensor"):
                yield attribute.sparse_tensor.values, where
                yield attribute.sparse_tensor.indices, where
            for sparse in attribute.sparse_tensors:
                yield sparse.values, where
                yield sparse.indices, where
