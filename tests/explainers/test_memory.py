"""Batch sizes from a memory budget (explainers.memory): the budget arithmetic, each backend's activation count
against an independent computation, and the batched methods keeping to the budget without changing their maps."""

from __future__ import annotations

import numpy as np
import pytest

from explainers import SegmentationAdapter, memory, registry
from tests.explainers.conftest import BACKENDS, NAMES, SIZE, backend_adapter


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2GB", 2 * 1024**3), ("800 MB", 800 * 1024**2), ("1.5gib", int(1.5 * 1024**3)), (str(10 * 1024**2), 10485760),
     (3 * 1024**2, 3 * 1024**2)],
)
def test_budgets_are_read_with_units(text, expected):
    assert memory.parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["lots", "2 parsecs", "-1GB", "12 KB"])
def test_unreadable_or_tiny_budgets_are_refused_with_the_accepted_form(text):
    with pytest.raises(ValueError, match="MB"):
        memory.parse_bytes(text)


def test_the_default_budget_is_the_environment_or_a_share_of_physical_memory(monkeypatch):
    monkeypatch.setenv("SEGX_MEMORY_BUDGET", "300MB")
    assert memory.default_budget() == 300 * 1024**2
    monkeypatch.delenv("SEGX_MEMORY_BUDGET")
    physical = memory.physical_memory()
    assert physical and memory.default_budget() == int(min(physical / 4, 4 * 1024**3))


def test_batch_sizes_divide_the_budget_by_the_per_image_memory():
    per_image = 10 * 1024**2  # activation bytes
    budget = 1024**3
    fits = int(budget // (per_image * memory.GRADIENT_FACTOR))
    assert memory.batch_size_for(per_image, "gradient", budget, wanted=1000, fallback=32) == fits
    assert memory.batch_size_for(per_image, "forward", budget, wanted=1000, fallback=32) == min(
        int(budget // (per_image * memory.FORWARD_FACTOR)), memory.MAX_BATCH
    )
    assert memory.batch_size_for(per_image, "gradient", budget, wanted=5, fallback=32) == 5  # never more than asked
    assert memory.batch_size_for(10 * budget, "gradient", budget, wanted=50, fallback=32) == 1  # one always runs
    assert memory.batch_size_for(None, "gradient", budget, wanted=50, fallback=32) == 32  # unknown: the old size
    with pytest.raises(ValueError, match="batch kind"):
        memory.per_image_bytes(1, "backward")


def test_torch_counts_exactly_the_tensors_autograd_saves():
    """conv -> ReLU -> conv: autograd keeps the input (for conv1's weight gradient), the ReLU's output (for the ReLU
    and for conv2's weight gradient: one storage, counted once); the logits are added. Weights are not counted."""
    torch = pytest.importorskip("torch")

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1))
    adapter = SegmentationAdapter(model, class_names=["bg", "fg"])
    height, width = 20, 28
    expected = 4 * height * width * (3 + 8 + 2)
    assert adapter.activation_bytes((height, width)) == expected
    assert adapter.activation_bytes((2 * height, 2 * width)) == 4 * expected  # it scales with the pixels


def test_the_black_box_count_equals_the_values_onnxruntime_computes():
    """Every intermediate value of the graph, exposed as an output and run by onnxruntime: the sum of their sizes
    (and the logits') is what the shape-inferred count says, per image."""
    onnx = pytest.importorskip("onnx")
    from explainers.onnx_loading import ort_session

    adapter = backend_adapter("onnx-black-box")
    graph = adapter.backend.graph
    probe = onnx.ModelProto()
    probe.CopyFrom(onnx.shape_inference.infer_shapes(graph.model))
    known = {output.name for output in probe.graph.output}
    initializers = {tensor.name for tensor in probe.graph.initializer}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in known and name not in initializers:
                probe.graph.output.append(onnx.ValueInfoProto(name=name))
                known.add(name)
    session = ort_session(probe)
    x = np.zeros((1, 3, *SIZE), dtype=np.float32)
    values = session.run(None, {graph.input_name: x})
    measured = sum(np.asarray(value).nbytes for value in values)
    assert adapter.activation_bytes(SIZE) == measured


def test_keras_and_torch_twins_count_about_the_same_memory():
    """The same U-Net in Keras and in torch: TensorFlow's traced graph and autograd's saved tensors are independent
    counts of the same activations; they agree to within a fifth (they keep slightly different tensors)."""
    keras_count = backend_adapter("keras").activation_bytes(SIZE)
    torch_count = backend_adapter("torch").activation_bytes(SIZE)
    assert keras_count and torch_count
    assert 0.8 < keras_count / torch_count < 1.25, (keras_count, torch_count)


def test_a_backend_that_cannot_count_falls_back_to_the_fixed_batches():
    adapter = backend_adapter("keras")
    fresh = adapter.with_backend(adapter.backend)
    fresh._activation_bytes[SIZE] = None
    assert fresh.batch_size("gradient", SIZE, 100) == memory.FALLBACK_BATCH["gradient"]
    assert fresh.batch_size("forward", SIZE, 100) == memory.FALLBACK_BATCH["forward"]


@pytest.mark.parametrize("backend", [name for name in BACKENDS if name != "onnx-black-box"])
@pytest.mark.parametrize("method", ["integrated_gradients", "smoothgrad"])
def test_gradient_batches_keep_to_the_budget_and_the_maps_do_not_change(backend, method, image, region, monkeypatch):
    adapter = backend_adapter(backend)
    per_image = memory.per_image_bytes(adapter.activation_bytes(SIZE), "gradient")
    tight = SegmentationAdapter(adapter.backend, class_names=NAMES)
    tight.memory_budget = int(3.5 * per_image)  # room for 3 images at a time
    params = {"steps": 16, "max_steps": 16} if method == "integrated_gradients" else {"samples": 10}
    reference = registry.get(method).explain(adapter, image, region, 1, params={**params, "batch_size": 64})

    seen: list[int] = []
    original = tight.backend.input_gradients

    def counting(x, spec):
        seen.append(len(x))
        return original(x, spec)

    monkeypatch.setattr(tight.backend, "input_gradients", counting)
    budgeted = registry.get(method).explain(tight, image, region, 1, params=params)
    assert seen and max(seen) == 3 and sum(seen) >= 10
    scale = np.abs(reference.heatmap).max()
    np.testing.assert_allclose(budgeted.heatmap, reference.heatmap, rtol=1e-4, atol=1e-6 * scale)


def test_forward_batches_keep_to_the_budget(any_adapter, image, region, monkeypatch):
    per_image = memory.per_image_bytes(any_adapter.activation_bytes(SIZE), "forward")
    tight = SegmentationAdapter(any_adapter.backend, class_names=NAMES)
    tight.memory_budget = int(max(5.5 * per_image, 1024**2))
    want = tight.batch_size("forward", SIZE, 40)
    assert want == min(40, int(tight.memory_budget // per_image))
    seen: list[int] = []
    original = tight.backend.scores

    def counting(x, spec):
        seen.append(len(x))
        return original(x, spec)

    monkeypatch.setattr(tight.backend, "scores", counting)
    images = np.repeat(image[None], 40, axis=0)
    scores = tight.score(images, region, 1)
    assert max(seen) == want and sum(seen) == 40
    np.testing.assert_allclose(scores, any_adapter.score(images, region, 1, batch_size=40), rtol=1e-5, atol=1e-6)
