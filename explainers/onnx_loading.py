"""Load an `.onnx` segmentation model: normalise its graph, then serve it with gradients or as a black box.

Real exported files differ in ways the engine must not see, so the graph is normalised first, with the onnx library:

- **Weights as `Constant` nodes.** Some exporters (Paddle, some TensorFlow converters) store every weight as a
  `Constant` node and write no initializers. onnxruntime does not mind, but onnx2torch's converters (Conv first) look
  weights up among the initializers and fail with `KeyError: '<weight name>'`. Every top-level `Constant` node holding
  a tensor (`value`) becomes an initializer of the same name: the same values, the same graph.
- **A final `Softmax`, `LogSoftmax` or `Sigmoid`.** The region score is defined on logits (a softmax saturates the
  gradients, and the score of a perturbed image should not be squashed into [0, 1]), so a final activation over the
  class axis is removed and the graph outputs its input. A `Sigmoid` on one channel makes a binary model: two classes,
  background -z and foreground z, as for Keras. A sigmoid over several channels (multi-label) is refused.
- **Several outputs.** torchvision-style exports also output auxiliary heads; the output named `out` is kept (else the
  first one), the others are dropped.
- **NHWC input.** A TensorFlow export takes (N, H, W, 3) and outputs (N, H, W, C). A `Transpose` is put in front of
  the input and after the output, so every normalised graph takes NCHW and outputs NCHW logits, the layout the torch
  backend expects. The layout is read from the input's shape (the axis of size 3).
- **Dynamic sizes.** Height and width are dynamic when the input's dims are symbolic (`dim_param`) or unknown;
  `input_size` is then None. A batch fixed at 1 (common in Paddle and TF exports) is made symbolic when the graph then
  still runs batches of 2 with the same results as image by image; otherwise it stays fixed and batches are split.
- Shape inference (`onnx.shape_inference.infer_shapes`) fills in the output's shape, from which the class count is
  read (a test run gives it where inference cannot).

**The gradient path and its check.** The normalised graph is converted with onnx2torch (one torch module per node,
a `torch.fx.GraphModule`, so the torch backend explains it with every method) and the converted module is CHECKED
against onnxruntime on two structured test images (gradients, a disc, texture; not a constant image, on which many
conversion errors, e.g. a wrong padding or resize mode, cancel out) before it is used. It is accepted when

    max |z_torch - z_ort|  <=  TOLERANCE * max |z_ort|  +  1e-6,      TOLERANCE = 1e-3,

i.e. within 0.1 % of the logits' own scale. Why this figure: both runtimes compute the same float32 operations with
different kernels and summation orders; float32 rounding (eps = 1.2e-7) accumulated over the fan-in of a conv
(~sqrt(3*3*512) = 68 for a deep layer) and a hundred layers stays below ~1e-3 relative, and measured agreement on real
exports is 1e-7 to 2e-5 relative. A wrong conversion (a mis-read attribute, axis or mode) changes logits by a sizeable
fraction of their range, far above 1e-3. The figure is relative because logits can be on any scale.

**The black-box path.** If conversion fails, or the converted module does not match, the model is served by
onnxruntime alone (`explainers.backends.onnxruntime_backend.OnnxRuntimeBackend`): perturbation methods (SHAP
Partition) and the trust metrics run; the gradient methods say why they cannot (the conversion error or the mismatch).
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

TOLERANCE = 1e-3  # relative to max |logits| (see the module docstring)
CHECK_SIZE = (64, 64)  # test image side for models of dynamic size (a multiple of 32, for 5-pooling U-Nets)
ACTIVATIONS = ("Softmax", "LogSoftmax", "Sigmoid")


class OnnxRefused(ValueError):
    """An ONNX file the engine cannot use; the message says why."""


@dataclass
class NormalisedGraph:
    """A normalised ONNX segmentation graph: NCHW input, NCHW logits output.

    Attributes:
        model: the normalised ModelProto (shape-inferred).
        input_name, output_name: the graph's one input and its logits output.
        layout: the ORIGINAL input layout, "NCHW" or "NHWC" (the normalised graph always takes NCHW).
        input_size: fixed (H, W), or None when height and width are dynamic.
        batch: the fixed batch size the graph requires, or None when it takes any batch.
        channels: logits channels (1 for a binary sigmoid model).
        binary: a single-channel sigmoid model (two classes, -z and z).
        stripped: the final activation removed ("Softmax", "LogSoftmax", "Sigmoid"), or None.
        changes: what normalisation did, one human sentence each.
    """

    model: onnx.ModelProto
    input_name: str
    output_name: str
    layout: str
    input_size: tuple[int, int] | None
    batch: int | None
    channels: int
    binary: bool
    stripped: str | None
    changes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        """Classes the adapter sees (2 for a binary model)."""
        return 2 if self.binary else self.channels


# ------------------------------------------------------------------------------------------------------- reading
def read_model(source: str | Path | bytes) -> onnx.ModelProto:
    """Parse an ONNX file (path or bytes) without loading external data; OnnxRefused if it is not a valid model."""
    try:
        if isinstance(source, (bytes, bytearray)):
            model = onnx.load_model(io.BytesIO(bytes(source)), load_external_data=False)
        else:
            model = onnx.load(str(source), load_external_data=False)
    except Exception as err:
        raise OnnxRefused(f"The file is not a readable ONNX model ({_first_line(err)}).") from None
    if not model.graph.node:
        raise OnnxRefused("The ONNX file holds no graph (no nodes); it is truncated or not a model.")
    return model


def _first_line(err: BaseException, limit: int = 300) -> str:
    lines = str(err).strip().splitlines()
    line = lines[0] if lines else type(err).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def _dims(value_info: onnx.ValueInfoProto) -> list[int | None]:
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in shape.dim]


# -------------------------------------------------------------------------------------------------- normalising
def constants_to_initializers(model: onnx.ModelProto) -> int:
    """Move every top-level `Constant` node holding a tensor into an initializer of the same name; returns how many."""
    graph = model.graph
    kept, moved = [], 0
    for node in graph.node:
        value = next((a for a in node.attribute if a.name == "value"), None) if node.op_type == "Constant" else None
        if value is None or node.domain not in ("", "ai.onnx") or len(node.output) != 1:
            kept.append(node)
            continue
        tensor = copy.deepcopy(value.t)
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        moved += 1
    if moved:
        del graph.node[:]
        graph.node.extend(kept)
    return moved


def _graph_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise OnnxRefused(f"The model has {len(inputs)} inputs; a segmentation model takes one image.")
    return inputs[0]


def _choose_output(model: onnx.ModelProto) -> None:
    outputs = list(model.graph.output)
    if not outputs:
        raise OnnxRefused("The model has no output.")
    chosen = next((o for o in outputs if o.name == "out"), outputs[0])
    if len(outputs) > 1:
        del model.graph.output[:]
        model.graph.output.append(chosen)


def _producer(model: onnx.ModelProto, name: str) -> onnx.NodeProto | None:
    return next((n for n in model.graph.node if name in n.output), None)


def _consumers(model: onnx.ModelProto, name: str) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if name in n.input]


def _strip_activation(model: onnx.ModelProto, channel_axis: int) -> str | None:
    """Remove a final Softmax/LogSoftmax (over the class axis) or Sigmoid; the graph then outputs its input."""
    output = model.graph.output[0]
    node = _producer(model, output.name)
    if node is None or node.op_type not in ACTIVATIONS or node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type != "Sigmoid":
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), None)
        if axis is None:
            axis = -1 if _opset(model) >= 13 else 1
        if axis % 4 != channel_axis:
            return None  # a softmax over another axis is part of the model, not its output activation
    if len(_consumers(model, output.name)) > 0:
        return None
    logits = node.input[0]
    model.graph.node.remove(node)
    new_output = helper.make_tensor_value_info(logits, TensorProto.FLOAT, None)
    del model.graph.output[:]
    model.graph.output.append(new_output)
    return node.op_type


def _to_nchw(model: onnx.ModelProto, input_name: str, output_name: str) -> tuple[str, str]:
    """Put a Transpose in front of an NHWC input and after the NHWC output; returns the new input/output names."""
    graph = model.graph
    original = next(i for i in graph.input if i.name == input_name)
    n, h, w, c = original.type.tensor_type.shape.dim
    new_input = helper.make_tensor_value_info("segx_image_nchw", original.type.tensor_type.elem_type, None)
    for dim in (n, c, h, w):
        new_input.type.tensor_type.shape.dim.add().CopyFrom(dim)
    to_nhwc = helper.make_node("Transpose", ["segx_image_nchw"], [input_name], perm=[0, 2, 3, 1], name="segx_to_nhwc")
    to_nchw = helper.make_node("Transpose", [output_name], ["segx_logits_nchw"], perm=[0, 3, 1, 2], name="segx_to_nchw")
    graph.input.remove(original)
    graph.input.insert(0, new_input)
    graph.node.insert(0, to_nhwc)
    graph.node.append(to_nchw)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("segx_logits_nchw", TensorProto.FLOAT, None))
    return "segx_image_nchw", "segx_logits_nchw"


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # inference is a help, not a requirement: the test run below fills in what it cannot
        return model


def normalise(model: onnx.ModelProto) -> NormalisedGraph:
    """The normalised graph (see the module docstring); OnnxRefused if the model is not an image segmenter."""
    model = copy.deepcopy(model)
    changes: list[str] = []
    moved = constants_to_initializers(model)
    if moved:
        changes.append(f"{moved} Constant nodes moved into initializers (weights stored as Constant nodes)")
    image = _graph_input(model)
    if image.type.tensor_type.elem_type != TensorProto.FLOAT:
        kind = TensorProto.DataType.Name(image.type.tensor_type.elem_type)
        raise OnnxRefused(f"The model's input is {kind}; only float32 image inputs are supported.")
    dims = _dims(image)
    if len(dims) != 4:
        raise OnnxRefused(f"The model's input has {len(dims)} dimensions; an image model takes (N, 3, H, W) or "
                          "(N, H, W, 3).")  # fmt: skip
    if dims[1] == 3:
        layout, (batch, height, width) = "NCHW", (dims[0], dims[2], dims[3])
    elif dims[3] == 3:
        layout, (batch, height, width) = "NHWC", (dims[0], dims[1], dims[2])
    else:
        raise OnnxRefused(f"The model's input shape {dims} has no axis of 3 colour channels (NCHW or NHWC).")
    _choose_output(model)
    stripped = _strip_activation(model, channel_axis=1 if layout == "NCHW" else 3)
    if stripped:
        changes.append(f"the final {stripped} removed to reach the logits")
    input_name, output_name = image.name, model.graph.output[0].name
    if layout == "NHWC":
        input_name, output_name = _to_nchw(model, input_name, output_name)
        changes.append("NHWC input and output wrapped in Transposes (the graph now takes NCHW)")
    model = _infer(model)
    out_dims = _dims(next(o for o in model.graph.output if o.name == output_name))
    if out_dims and len(out_dims) != 4:
        raise OnnxRefused(f"The model's output has {len(out_dims)} dimensions; a segmentation model outputs per-pixel "
                          "class scores (N, C, H', W').")  # fmt: skip
    graph = NormalisedGraph(
        model=model, input_name=input_name, output_name=output_name, layout=layout,
        input_size=(height, width) if height and width else None, batch=batch,
        channels=(out_dims[1] or 0) if out_dims else 0, binary=False, stripped=stripped, changes=changes,
    )  # fmt: skip
    return graph


# ------------------------------------------------------------------------------------------------ test images
def check_images(size: tuple[int, int], count: int = 2) -> np.ndarray:
    """(count, H, W, 3) structured float32 test images in [0, 1]: colour ramps, a disc and deterministic texture."""
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    images = []
    for k in range(count):
        rng = np.random.default_rng(1234 + k)
        disc = ((yy - height * (0.4 + 0.1 * k)) ** 2 + (xx - width * (0.6 - 0.1 * k)) ** 2) < (min(size) * 0.25) ** 2
        stripes = 0.5 + 0.5 * np.sin(xx * (0.5 + 0.2 * k) + yy * 0.3)
        image = np.stack([xx / width, yy / height, 0.6 * disc + 0.4 * stripes], axis=-1)
        images.append(np.clip(image + rng.normal(0, 0.04, image.shape), 0, 1))
    return np.stack(images).astype(np.float32)


def ort_session(model: onnx.ModelProto) -> Any:
    """An onnxruntime session on `model` (CUDA when available, else CPU)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=providers)


def _run(session: Any, graph: NormalisedGraph, x_nchw: np.ndarray) -> np.ndarray:
    return np.asarray(session.run([graph.output_name], {graph.input_name: x_nchw})[0], dtype=np.float32)


def finish(graph: NormalisedGraph, session: Any | None = None) -> tuple[NormalisedGraph, Any]:
    """Test-run the normalised graph with onnxruntime: class count, binary flag, and whether the batch can be made
    dynamic. Returns the graph (updated) and its session. OnnxRefused if it does not run or outputs no logits map."""
    size = graph.input_size or CHECK_SIZE
    x = check_images(size).transpose(0, 3, 1, 2).copy()
    try:
        session = session or ort_session(graph.model)
        one = _run(session, graph, x[:1])
    except Exception as err:
        raise OnnxRefused(f"onnxruntime could not run the model on a {size[0]}x{size[1]} test image: "
                          f"{_first_line(err)}") from None  # fmt: skip
    if one.ndim != 4:
        raise OnnxRefused(f"The model outputs shape {one.shape}; a segmentation model outputs per-pixel class scores "
                          "(N, C, H', W').")  # fmt: skip
    graph.channels = int(one.shape[1])
    if graph.stripped == "Sigmoid":
        if graph.channels != 1:
            raise OnnxRefused(f"The model ends in a Sigmoid over {graph.channels} channels (multi-label); only a "
                              "single-channel sigmoid (binary) or a softmax model can be explained.")  # fmt: skip
        graph.binary = True
    elif graph.channels < 2:
        raise OnnxRefused("The model outputs one channel without a final Sigmoid; a segmentation model outputs a "
                          "score per class.")  # fmt: skip
    if not np.all(np.isfinite(one)):
        raise OnnxRefused("The model outputs non-finite values (NaN or infinity) on a test image.")
    if graph.batch is not None:
        session = _try_dynamic_batch(graph, session, x)
    return graph, session


def _try_dynamic_batch(graph: NormalisedGraph, session: Any, x: np.ndarray) -> Any:
    """Make a fixed batch symbolic if the graph then runs two images as it runs each alone."""
    trial = copy.deepcopy(graph.model)
    image = next(i for i in trial.graph.input if i.name == graph.input_name)
    dim = image.type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_param = "batch"
    for output in trial.graph.output:
        if output.type.tensor_type.shape.dim:
            output.type.tensor_type.shape.dim[0].Clear()
            output.type.tensor_type.shape.dim[0].dim_param = "batch"
    try:
        trial_session = ort_session(trial)
        both = _run(trial_session, graph, x)
        alone = np.concatenate([_run(session, graph, x[i : i + 1]) for i in range(len(x))])
        if both.shape == alone.shape and np.allclose(both, alone, rtol=1e-4, atol=1e-5 * np.abs(alone).max()):
            graph.model, graph.batch = trial, None
            graph.changes.append("the fixed batch of 1 made dynamic")
            return trial_session
    except Exception:
        pass
    graph.changes.append(f"the batch stays fixed at {graph.batch} (the graph hard-codes it): batches are split")
    return session


def load_graph(source: str | Path | bytes | onnx.ModelProto) -> tuple[NormalisedGraph, Any]:
    """Read and normalise an ONNX model and test-run it with onnxruntime; (graph, session). OnnxRefused if unusable."""
    model = source if isinstance(source, onnx.ModelProto) else read_model(source)
    try:
        onnx.checker.check_model(model)
    except Exception as err:
        raise OnnxRefused(f"The ONNX model is invalid: {_first_line(err)}") from None
    return finish(normalise(model))


# ------------------------------------------------------------------------------------------- gradient path check
def import_onnx2torch() -> Any:
    """onnx2torch, imported safely in a process that has TensorFlow loaded.

    onnx2torch imports torchvision, which imports `torch._dynamo`, which imports triton when it is installed (the
    CUDA torch wheels bring it). Loading triton's native library after TensorFlow's crashes the process with a
    segmentation fault (measured: `import tensorflow; import triton` segfaults, the other order works). The engine
    never compiles with triton, so where TensorFlow is already loaded and triton is not, triton is marked absent
    (`sys.modules["triton"] = None`): torch then treats it as not installed.
    """
    import sys

    if "tensorflow" in sys.modules and "triton" not in sys.modules:
        sys.modules["triton"] = None  # type: ignore[assignment]
    import onnx2torch

    return onnx2torch



@dataclass(frozen=True)
class Conversion:
    """The outcome of converting a normalised graph with onnx2torch and checking it against onnxruntime."""

    module: Any | None  # the torch module (NCHW in, NCHW logits out), or None
    reason: str | None  # why there is no module (conversion error or mismatch), or None
    max_abs_diff: float | None  # max |z_torch - z_ort| on the test images
    tolerance: float | None  # the accepted max difference


def convert_checked(graph: NormalisedGraph, session: Any, tolerance: float = TOLERANCE) -> Conversion:
    """onnx2torch's module for `graph`, accepted only when it matches onnxruntime on structured test images."""
    try:
        onnx2torch = import_onnx2torch()
        import torch
    except Exception as err:  # torch or onnx2torch not installed
        return Conversion(None, f"onnx2torch is not available ({_first_line(err)})", None, None)
    try:
        module = onnx2torch.convert(copy.deepcopy(graph.model)).eval()
    except Exception as err:
        return Conversion(None, f"onnx2torch could not convert the model: {type(err).__name__}: "
                                f"{_first_line(err)}", None, None)  # fmt: skip
    size = graph.input_size or CHECK_SIZE
    x = check_images(size, count=2 if graph.batch is None else graph.batch).transpose(0, 3, 1, 2).copy()
    reference = _run(session, graph, x)
    try:
        with torch.inference_mode():
            converted = module(torch.from_numpy(x))
        if isinstance(converted, (tuple, list)):
            converted = converted[0]
        converted = converted.detach().cpu().numpy().astype(np.float32)
    except Exception as err:
        return Conversion(None, f"the onnx2torch module failed on a test image: {_first_line(err)}", None, None)
    if converted.shape != reference.shape:
        return Conversion(None, f"the onnx2torch module outputs {converted.shape}, onnxruntime {reference.shape}",
                          None, None)  # fmt: skip
    diff = float(np.abs(converted - reference).max())
    allowed = tolerance * float(np.abs(reference).max()) + 1e-6
    if not np.isfinite(diff) or diff > allowed:
        return Conversion(None, f"the onnx2torch module does not match onnxruntime (max |difference| {diff:.3g} on "
                                f"logits up to {np.abs(reference).max():.3g}; allowed {allowed:.3g})",
                          diff, allowed)  # fmt: skip
    return Conversion(module, None, diff, allowed)


def describe(graph: NormalisedGraph) -> str:
    """One line: what normalisation changed."""
    return "; ".join(graph.changes) if graph.changes else "no changes"


# ------------------------------------------------------------------------------------------------------ loading
@dataclass(frozen=True)
class LoadedOnnx:
    """An ONNX model ready for the adapter: its backend (torch on the converted module, or onnxruntime), the
    normalised graph and the conversion check's outcome."""

    backend: Any
    graph: NormalisedGraph
    conversion: Conversion


def _fixed_batch(module: Any, batch: int) -> Any:
    """A torch module running `module` (which takes exactly `batch` images) on any batch, chunk by chunk."""
    import torch

    class FixedBatch(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            outputs = []
            for start in range(0, x.shape[0], batch):
                chunk = x[start : start + batch]
                missing = batch - chunk.shape[0]
                padded = torch.cat([chunk, chunk[-1:].expand(missing, *chunk.shape[1:])]) if missing else chunk
                outputs.append(self.network(padded)[: chunk.shape[0]])
            return torch.cat(outputs)

    return FixedBatch()


def load_onnx(source: str | Path | bytes | onnx.ModelProto, backend: str = "auto") -> LoadedOnnx:
    """Load an ONNX segmentation model (path, bytes or ModelProto): normalise it, then serve it through onnx2torch
    (every method) when the converted module matches onnxruntime, else through onnxruntime alone (black box).

    backend: "auto"; "onnxruntime" serves the model as a black box without trying the conversion. OnnxRefused if the
    model cannot be used at all.
    """
    from explainers.backends.onnxruntime_backend import OnnxRuntimeBackend

    if backend not in ("auto", "onnxruntime"):
        raise ValueError(f"backend must be 'auto' or 'onnxruntime'; got {backend!r}.")
    graph, session = load_graph(source)
    if backend == "onnxruntime":
        conversion = Conversion(None, "the model was loaded as a black box (backend='onnxruntime')", None, None)
    else:
        conversion = convert_checked(graph, session)
    if conversion.module is not None:
        import torch

        from explainers.backends.torch_backend import TorchBackend

        module = conversion.module if graph.batch is None else _fixed_batch(conversion.module, graph.batch)
        if torch.cuda.is_available():
            module = module.to("cuda")
        try:
            served = TorchBackend(module)
        except ValueError as err:
            conversion = Conversion(None, f"the converted module cannot be explained: {_first_line(err)}",
                                    conversion.max_abs_diff, conversion.tolerance)  # fmt: skip
        else:
            served.input_size = graph.input_size
            return LoadedOnnx(served, graph, conversion)
    return LoadedOnnx(OnnxRuntimeBackend(graph, str(conversion.reason), session), graph, conversion)
