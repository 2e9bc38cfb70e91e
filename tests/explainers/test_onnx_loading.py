"""ONNX loading: what real exports need normalised (weights as Constant nodes, a final Softmax/Sigmoid, NHWC input,
dynamic or fixed sizes), the onnx2torch conversion checked against onnxruntime, and the black-box fallback with its
reason. Every file is exported from a tiny torch network and compared with that network's own logits."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from explainers.backends.base import GradientsUnavailable, ScoreSpec
from explainers.backends.onnxruntime_backend import OnnxRuntimeBackend
from explainers.onnx_loading import (
    OnnxRefused,
    check_images,
    convert_checked,
    import_onnx2torch,
    load_graph,
    load_onnx,
    normalise,
)
from tests.explainers.onnx_exports import (
    GridSampleNet,
    NHWCNet,
    TinyTorchUNet,
    export,
    to_constant_nodes,
    torch_logits_nhwc,
)

SIZE = (32, 32)


def logits_net(classes: int = 4, seed: int = 0) -> TinyTorchUNet:
    """The exported network without its final activation: the logits the normalised graph must output."""
    return TinyTorchUNet(classes=classes, final=None, seed=seed)


@pytest.fixture(scope="module")
def plain() -> onnx.ModelProto:
    return export(TinyTorchUNet(seed=0))


def test_softmax_export_is_stripped_to_its_logits_and_converted(plain):
    graph, session = load_graph(plain)
    assert (graph.layout, graph.input_size, graph.stripped, graph.channels, graph.binary) == (
        "NCHW", SIZE, "Softmax", 4, False)  # fmt: skip
    assert [n.op_type for n in graph.model.graph.node][-1] == "Conv"
    x = check_images(SIZE, 3)
    backend = OnnxRuntimeBackend(graph, "test", session)
    np.testing.assert_allclose(backend.logits(x), torch_logits_nhwc(logits_net(), x), atol=1e-5)
    conversion = convert_checked(graph, session)
    assert conversion.module is not None and conversion.reason is None
    assert conversion.max_abs_diff <= conversion.tolerance
    with torch.inference_mode():
        converted = conversion.module(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(converted.transpose(0, 2, 3, 1), torch_logits_nhwc(logits_net(), x), atol=1e-5)


def test_weights_stored_as_constant_nodes_are_moved_into_initializers(plain):
    paddle_like = to_constant_nodes(plain)
    assert not paddle_like.graph.initializer
    onnx2torch = import_onnx2torch()
    with pytest.raises(KeyError):  # what onnx2torch does with such a file as it is
        onnx2torch.convert(paddle_like)
    graph, _ = load_graph(paddle_like)
    assert any("Constant nodes moved into initializers" in change for change in graph.changes)
    assert {"enc1.weight", "logits.bias"} <= {t.name for t in graph.model.graph.initializer}
    assert not [n for n in graph.model.graph.node if n.op_type == "Constant"]
    loaded = load_onnx(paddle_like)
    assert loaded.backend.framework == "torch" and loaded.backend.gradients
    x = check_images(SIZE, 2)
    np.testing.assert_allclose(loaded.backend.logits(x), torch_logits_nhwc(logits_net(), x), atol=1e-5)


def test_dynamic_height_width_and_batch():
    loaded = load_onnx(export(TinyTorchUNet(), dynamic=True))
    assert loaded.graph.input_size is None and loaded.graph.batch is None
    for backend in (loaded.backend, OnnxRuntimeBackend(loaded.graph, "test")):
        for size in ((32, 32), (48, 64)):
            x = check_images(size, 3)
            assert backend.output_shape_for(size) == size
            np.testing.assert_allclose(backend.logits(x), torch_logits_nhwc(logits_net(), x), atol=1e-5)


def test_single_channel_sigmoid_becomes_a_binary_model():
    loaded = load_onnx(export(TinyTorchUNet(classes=1, final="sigmoid", seed=3)))
    graph = loaded.graph
    assert (graph.stripped, graph.channels, graph.binary, graph.num_classes) == ("Sigmoid", 1, True, 2)
    x = check_images(SIZE, 2)
    z = torch_logits_nhwc(logits_net(classes=1, seed=3), x)
    for backend in (loaded.backend, OnnxRuntimeBackend(graph, "test")):
        assert backend.binary and backend.num_classes == 2
        np.testing.assert_allclose(backend.logits(x), np.concatenate([-z, z], axis=-1), atol=1e-5)


def test_sigmoid_over_several_channels_is_refused():
    with pytest.raises(OnnxRefused, match="Sigmoid over 3 channels"):
        load_graph(export(TinyTorchUNet(classes=3, final="sigmoid")))


def test_nhwc_export_is_wrapped_to_nchw():
    inner = logits_net()
    graph, session = load_graph(export(NHWCNet(inner), nhwc=True, dynamic=True))
    assert (graph.layout, graph.stripped) == ("NHWC", "Softmax")
    x = check_images((32, 48), 2)
    expected = torch_logits_nhwc(inner, x)
    np.testing.assert_allclose(OnnxRuntimeBackend(graph, "test", session).logits(x), expected, atol=1e-5)
    loaded = load_onnx(export(NHWCNet(inner), nhwc=True, dynamic=True))
    assert loaded.backend.framework == "torch"
    np.testing.assert_allclose(loaded.backend.logits(x), expected, atol=1e-5)


def test_a_fixed_batch_of_one_is_made_dynamic_when_the_graph_allows_it():
    graph, _ = load_graph(export(TinyTorchUNet(), dynamic_batch=False))
    assert graph.batch is None and any("made dynamic" in change for change in graph.changes)


class HardCodedBatch(nn.Module):
    """A net whose graph hard-codes batch 1 (a reshape to (1, -1) and back), as some exporters write."""

    def __init__(self) -> None:
        super().__init__()
        self.net = TinyTorchUNet(final=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        return torch.softmax(z.reshape(1, -1).reshape(1, 4, 32, 32), dim=1)


def test_a_hard_coded_batch_stays_fixed_and_batches_are_split():
    model = export(HardCodedBatch(), dynamic_batch=False)
    loaded = load_onnx(model)
    assert loaded.graph.batch == 1 and any("stays fixed" in change for change in loaded.graph.changes)
    x = check_images(SIZE, 3)
    expected = torch_logits_nhwc(HardCodedBatch().net, x)
    for backend in (loaded.backend, OnnxRuntimeBackend(loaded.graph, "test")):
        np.testing.assert_allclose(backend.logits(x), expected, atol=1e-5)


def test_an_operator_onnx2torch_cannot_convert_falls_back_to_the_black_box():
    net = GridSampleNet(SIZE)
    loaded = load_onnx(export(net))
    backend = loaded.backend
    assert isinstance(backend, OnnxRuntimeBackend) and not backend.gradients and backend.layers == []
    assert "GridSample" in backend.why_no_gradients and "onnx2torch could not convert" in backend.why_no_gradients
    x = check_images(SIZE, 2)
    with torch.inference_mode():
        probabilities = net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    z = backend.logits(x)  # the stripped softmax's input: softmax(z) is the network's output
    softmax = np.exp(z - z.max(-1, keepdims=True)) / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)
    np.testing.assert_allclose(softmax, probabilities.numpy().transpose(0, 2, 3, 1), atol=1e-5)
    spec = ScoreSpec(np.ones((8, 8), np.float32), np.eye(3, dtype=np.float32)[1])
    with pytest.raises(GradientsUnavailable, match="GridSample"):
        backend.input_gradients(x[:1], spec)
    with pytest.raises(GradientsUnavailable, match="black box"):
        backend.layer_maps(x[:1], spec, [], [])


def test_a_converted_module_that_does_not_match_onnxruntime_falls_back_with_the_figure(plain, monkeypatch):
    onnx2torch = import_onnx2torch()
    real = onnx2torch.convert

    class Off(nn.Module):  # a conversion that is 5 % off: what a mis-read attribute looks like
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.module(x) * 1.05

    monkeypatch.setattr(onnx2torch, "convert", lambda model, *a, **k: Off(real(model, *a, **k)))
    loaded = load_onnx(plain)
    assert isinstance(loaded.backend, OnnxRuntimeBackend)
    assert "does not match onnxruntime" in loaded.backend.why_no_gradients
    assert loaded.conversion.max_abs_diff > loaded.conversion.tolerance > 0


def test_black_box_scores_equal_the_score_formula_on_its_logits(plain, monkeypatch):
    graph, session = load_graph(plain)
    backend = OnnxRuntimeBackend(graph, "test", session)
    x = check_images(SIZE, 5)
    region = np.zeros(SIZE, np.float32)
    region[4:20, 8:30] = 1
    weights = np.array([0.0, 1.0, 0.0, -1.0], np.float32)  # the contrast "class 1 rather than class 3"
    z = backend.logits(x)
    expected = (z * weights).sum(-1).__mul__(region).sum((1, 2)) / region.sum()
    np.testing.assert_allclose(backend.scores(x, ScoreSpec(region, weights)), expected, rtol=1e-5)
    monkeypatch.setattr("explainers.backends.onnxruntime_backend.CHUNK_BYTES", 32 * 32 * 4 * 4 * 2)  # 2 images
    np.testing.assert_allclose(backend.scores(x, ScoreSpec(region, weights)), expected, rtol=1e-5)


def test_models_that_are_not_image_segmenters_are_refused():
    classifier = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Softmax(dim=1))
    with pytest.raises(OnnxRefused, match="per-pixel class scores"):
        load_graph(export(classifier))
    grey = export(nn.Conv2d(3, 2, 1), size=(8, 8))  # then declared as a 1-channel input
    grey.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 1
    with pytest.raises(OnnxRefused, match="no axis of 3 colour channels"):
        normalise(grey)
