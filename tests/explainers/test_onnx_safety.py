"""Hostile ONNX uploads are refused with a message before anything reads what they point to: external data (path
traversal, absolute paths, in initializers, Constant attributes and subgraphs), custom-domain operators, local
functions, oversized and truncated files. A benign export passes."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from explainers import model_sandbox
from explainers.model_sandbox import ModelUploadRefused, install_model
from explainers.onnx_safety import OnnxLimits, OnnxUploadRefused, check_onnx
from tests.explainers.onnx_exports import TinyTorchUNet, export

SENTINEL = np.arange(8 * 3 * 3 * 3, dtype=np.float32).tobytes()  # a valid enc1.weight, if anything read it


@pytest.fixture(scope="module")
def benign() -> onnx.ModelProto:
    return export(TinyTorchUNet(seed=0))


@pytest.fixture()
def marker(tmp_path):
    path = tmp_path / "secret.bin"
    path.write_bytes(SENTINEL)
    return path


@pytest.fixture()
def no_reads(monkeypatch, marker):
    """Fail the test if Python opens the marker, or if onnx's external-data loader or onnxruntime ever starts."""
    opened: list[str] = []
    armed = [True]

    def hook(event: str, args: tuple) -> None:
        if armed[0] and event == "open" and args and str(args[0]).endswith(marker.name):
            opened.append(str(args[0]))

    sys.addaudithook(hook)

    def forbidden(*args, **kwargs):
        raise AssertionError("a runtime or the external-data loader was reached")

    import onnxruntime

    monkeypatch.setattr(onnx.external_data_helper, "load_external_data_for_model", forbidden)
    monkeypatch.setattr(onnxruntime, "InferenceSession", forbidden)
    monkeypatch.setattr(model_sandbox, "_run_child", forbidden)
    yield opened
    armed[0] = False


def external(model: onnx.ModelProto, tensor: TensorProto, location: str) -> None:
    del model  # the tensor is edited in place
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(SENTINEL)))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


def copy(model: onnx.ModelProto) -> onnx.ModelProto:
    return onnx.ModelProto.FromString(model.SerializeToString())


def test_a_benign_export_passes(benign):
    checked = check_onnx(benign.SerializeToString())
    assert len(checked.graph.node) == len(benign.graph.node)


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_external_data_is_refused_before_anything_opens_it(benign, marker, no_reads, tmp_path, where):
    model = copy(benign)
    weight = next(t for t in model.graph.initializer if t.name == "enc1.weight")
    external(model, weight, "../" * 12 + str(marker).lstrip("/") if where == "relative" else str(marker))
    data = model.SerializeToString()
    with pytest.raises(OnnxUploadRefused, match=r"enc1\.weight.*keeps its data in another file"):
        check_onnx(data)
    with pytest.raises(ModelUploadRefused, match="keeps its data in another file"):
        install_model(data, tmp_path / "models", kind="onnx")
    path = tmp_path / "upload.onnx"
    path.write_bytes(data)
    with pytest.raises(OnnxUploadRefused, match="another file"):
        check_onnx(path)
    assert no_reads == []
    assert not list((tmp_path / "models").glob("*.onnx"))


def test_external_data_in_a_constant_node_and_in_a_subgraph_is_refused(benign, marker, no_reads):
    model = copy(benign)
    value = numpy_helper.from_array(np.zeros(3, np.float32), "c")
    external(model, value, "../../etc/passwd")
    model.graph.node.insert(0, helper.make_node("Constant", [], ["hidden"], value=value, name="hidden_constant"))
    with pytest.raises(OnnxUploadRefused, match=r"attribute of node hidden_constant.*'\.\./\.\./etc/passwd'"):
        check_onnx(model.SerializeToString())

    model = copy(benign)
    inner = numpy_helper.from_array(np.zeros(1, np.float32), "inner")
    external(model, inner, str(marker))
    then = helper.make_graph([helper.make_node("Identity", ["inner"], ["branch"])], "then", [],
                             [helper.make_tensor_value_info("branch", TensorProto.FLOAT, [1])], [inner])  # fmt: skip
    one = numpy_helper.from_array(np.ones(1, np.float32))
    orelse = helper.make_graph([helper.make_node("Constant", [], ["branch"], value=one)], "else", [],
                               [helper.make_tensor_value_info("branch", TensorProto.FLOAT, [1])])  # fmt: skip
    model.graph.initializer.append(numpy_helper.from_array(np.array(True), "flag"))
    model.graph.node.append(helper.make_node("If", ["flag"], ["unused"], then_branch=then, else_branch=orelse))
    with pytest.raises(OnnxUploadRefused, match=r"inner.*keeps its data in another file"):
        check_onnx(model.SerializeToString())
    assert no_reads == []


def test_custom_domain_operators_and_local_functions_are_refused(benign, no_reads):
    model = copy(benign)
    model.opset_import.append(helper.make_opsetid("com.evil", 1))
    with pytest.raises(OnnxUploadRefused, match=r"operator set 'com\.evil'"):
        check_onnx(model.SerializeToString())

    model = copy(benign)
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    relu.domain = "com.microsoft"  # onnxruntime's contrib operators: native code outside the standard set
    with pytest.raises(OnnxUploadRefused, match=r"custom domain 'com\.microsoft'"):
        check_onnx(model.SerializeToString())

    model = copy(benign)
    model.functions.append(helper.make_function("local", "Relu", ["x"], ["y"], [helper.make_node("Neg", ["x"], ["y"])],
                                                [helper.make_opsetid("", 17)]))  # fmt: skip
    with pytest.raises(OnnxUploadRefused, match="local function"):
        check_onnx(model.SerializeToString())
    assert no_reads == []


def test_oversized_and_truncated_files_are_refused(benign, tmp_path, no_reads):
    data = benign.SerializeToString()
    with pytest.raises(OnnxUploadRefused, match=r"too large .*the limit is 0 MiB"):
        check_onnx(data, OnnxLimits(max_bytes=len(data) - 1))
    with pytest.raises(ModelUploadRefused, match="too large"):
        install_model(data, tmp_path, kind="onnx", limits=model_sandbox.SandboxLimits(onnx=OnnxLimits(max_bytes=100)))
    for cut in (len(data) // 3, len(data) // 2, len(data) - 7):
        with pytest.raises(OnnxUploadRefused, match="truncated or corrupt"):
            check_onnx(data[:cut])
    with pytest.raises(OnnxUploadRefused, match="empty"):
        check_onnx(b"")
    with pytest.raises(OnnxUploadRefused):
        check_onnx(b"\x00garbage that is no protobuf\xff" * 50)
    assert no_reads == []
