"""Every registered method and every trust metric on an ONNX export of the tiny torch U-Net, served through onnx2torch
(gradient path) and through onnxruntime alone (black box); and the twin test: the torch model and its ONNX export give
the same scores and maps."""

from __future__ import annotations

import numpy as np
import pytest

from explainers import SegmentationAdapter, explain, load_model, registry
from explainers.agreement import agreement_matrix
from explainers.backends.base import GradientsUnavailable
from explainers.faithfulness import faithfulness
from explainers.model_loading import ModelRefused
from explainers.onnx_loading import load_onnx
from explainers.sanity import cascading_randomization
from tests.explainers.onnx_exports import GridSampleNet, export
from tests.explainers.tiny_models import box_region, structured_image
from tests.explainers.tiny_torch_models import CONV_ORDER, TinyTorchUNet

SIZE = (32, 32)
NAMES = ["bg", "a", "b", "c"]
FAST = {"smoothgrad": {"samples": 8}, "integrated_gradients": {"steps": 16, "max_steps": 16},
        "shap": {"max_evals": 200}}  # fmt: skip
TARGET = 1


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.fixture(scope="module")
def network() -> TinyTorchUNet:
    return TinyTorchUNet(seed=0).eval()


@pytest.fixture(scope="module")
def exported(network):
    return export(network, SIZE)


@pytest.fixture(scope="module")
def torch_adapter(network) -> SegmentationAdapter:
    return SegmentationAdapter(network, class_names=NAMES)


@pytest.fixture(scope="module")
def onnx_torch(exported) -> SegmentationAdapter:
    loaded = load_onnx(exported)
    assert loaded.backend.framework == "torch"
    return SegmentationAdapter(loaded.backend, class_names=NAMES)


@pytest.fixture(scope="module")
def onnx_black_box(exported) -> SegmentationAdapter:
    return SegmentationAdapter(load_onnx(exported, backend="onnxruntime").backend, class_names=NAMES)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return structured_image(SIZE)


@pytest.fixture(scope="module")
def region() -> np.ndarray:
    return box_region(SIZE, 6, 10, 20, 26)


def run(adapter, name, image, region):
    return registry.get(name).explain(adapter, image, region, TARGET, params=FAST.get(name))


@pytest.mark.parametrize("name", registry.available())
def test_every_method_runs_on_the_onnx2torch_model(onnx_torch, image, region, name):
    result = run(onnx_torch, name, image, region)
    assert result.heatmap.shape == SIZE and result.heatmap.dtype == np.float32 and np.isfinite(result.heatmap).all()
    np.testing.assert_allclose(result.score, onnx_torch.score(image[None], region, TARGET)[0], rtol=1e-5, atol=1e-6)
    if registry.get(name).is_cam:
        assert set(result.per_layer) == set(onnx_torch.conv_layers)


@pytest.mark.parametrize("name", registry.available())
def test_black_box_runs_perturbation_methods_and_refuses_gradient_methods_with_the_reason(
    onnx_black_box, image, region, name
):
    explainer = registry.get(name)
    if explainer.requires_gradients:
        with pytest.raises(GradientsUnavailable, match=r"black box \(backend='onnxruntime'\)"):
            run(onnx_black_box, name, image, region)
        return
    result = run(onnx_black_box, name, image, region)
    assert result.heatmap.shape == SIZE and np.isfinite(result.heatmap).all()
    if explainer.additive:  # SHAP Partition is exactly efficient
        assert result.heatmap.sum() == pytest.approx(result.score - result.baseline_score, rel=1e-4, abs=1e-5)


def test_conv_layers_of_the_converted_model_follow_the_torch_model(onnx_torch):
    assert [name.split("/")[0] for name in onnx_torch.conv_layers] == CONV_ORDER
    assert onnx_torch.input_size == SIZE


def test_twin_torch_model_and_its_onnx_export(torch_adapter, onnx_torch, onnx_black_box, image, region):
    rng = np.random.default_rng(0)
    batch = np.concatenate([image[None], rng.integers(0, 256, (3, *SIZE, 3), dtype=np.uint8)])
    for target in range(4):
        expected = torch_adapter.score(batch, region, target)
        for adapter in (onnx_torch, onnx_black_box):
            np.testing.assert_allclose(adapter.score(batch, region, target), expected, rtol=1e-4, atol=1e-6)
    methods = ("gradcam", "hirescam", "layercam", "saliency", "integrated_gradients", "shap")
    params = {name: FAST.get(name, {"all_layers": True} if registry.get(name).is_cam else {}) for name in methods}
    theirs = explain(onnx_torch, image, region, TARGET, methods=methods, params=params)
    ours = explain(torch_adapter, image, region, TARGET, methods=methods, params=params)
    for name in methods:
        if np.ptp(ours[name].heatmap) > 0:
            assert pearson(ours[name].heatmap, theirs[name].heatmap) >= 0.999, name
        if ours[name].per_layer:
            for torch_layer, onnx_layer in zip(torch_adapter.conv_layers, onnx_torch.conv_layers, strict=True):
                a, b = ours[name].per_layer[torch_layer], theirs[name].per_layer[onnx_layer]
                if np.ptp(a) > 0:
                    assert pearson(a, b) >= 0.999, (name, torch_layer)
                else:  # a ReLU'd CAM can be all zero on random weights; then both are
                    np.testing.assert_allclose(b, a, atol=1e-6)
    black_box = explain(onnx_black_box, image, region, TARGET, methods=("shap",), params={"shap": FAST["shap"]})
    assert pearson(ours["shap"].heatmap, black_box["shap"].heatmap) >= 0.999


def test_trust_metrics_run_on_the_black_box(onnx_black_box, image, region):
    results = explain(onnx_black_box, image, region, TARGET, methods=("shap",), params={"shap": FAST["shap"]})
    maps = {"shap": results["shap"].heatmap, "box": region.astype(np.float32) + 0.01 * image[..., 0] / 255}
    scores = faithfulness(onnx_black_box, image, region, TARGET, maps, steps=8)
    for name in maps:
        deletion = scores[name].deletion
        assert len(deletion.scores) == 9 and np.isfinite(deletion.scores).all()
        assert deletion.scores[0] == pytest.approx(onnx_black_box.score(image[None], region, TARGET)[0], rel=1e-5)
    names, matrix = agreement_matrix(maps, region)
    assert names == list(maps) and matrix.shape == (2, 2) and np.allclose(np.diag(matrix), 1)
    with pytest.raises(ValueError, match="sanity check needs a model whose weights can be"):
        cascading_randomization(onnx_black_box, image, region, TARGET, ["shap"], params={"shap": FAST["shap"]})


def test_load_model_serves_onnx_files(tmp_path, exported, onnx_torch, image, region):
    path = tmp_path / "unet.onnx"
    path.write_bytes(exported.SerializeToString())
    adapter = load_model(str(path), class_names=NAMES)
    assert adapter.framework == "torch" and adapter.gradients and adapter.class_names == NAMES
    np.testing.assert_allclose(adapter.predict(image), onnx_torch.predict(image), atol=1e-6)
    grid = tmp_path / "grid.onnx"
    grid.write_bytes(export(GridSampleNet(SIZE), SIZE).SerializeToString())
    black_box = load_model(str(grid))
    assert black_box.framework == "onnxruntime" and not black_box.gradients
    assert "GridSample" in black_box.why_no_gradients
    with pytest.raises(ModelRefused, match="not a readable ONNX model"):
        (tmp_path / "bad.onnx").write_bytes(exported.SerializeToString()[:1000])
        load_model(str(tmp_path / "bad.onnx"))
