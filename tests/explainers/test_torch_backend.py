"""The PyTorch backend against independent torch computations: logits reached through a final activation, output
formats, forward-order layers, Seg-Grad-CAM with the test's own hooks, saliency = autograd, IG completeness, SHAP
efficiency, DeepSHAP additivity, and the sanity check never touching the user's module."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explainers import SegmentationAdapter, explain, registry
from explainers.adapter import resample_region
from explainers.sanity import RandomizationCascade, cascade_steps
from tests.explainers.tiny_models import box_region, structured_image
from tests.explainers.tiny_torch_models import CONV_ORDER, DictOutput, TinyTorchUNet, to_nchw

torch.set_num_threads(1)
TARGET = 1


@pytest.fixture(scope="module")
def torch_model() -> TinyTorchUNet:
    return TinyTorchUNet()


@pytest.fixture(scope="module")
def torch_adapter(torch_model) -> SegmentationAdapter:
    return SegmentationAdapter(torch_model)


@pytest.fixture(scope="module")
def logits_net() -> TinyTorchUNet:
    """The same weights without the final softmax: the independent computations' logits."""
    return TinyTorchUNet(final=False).eval()


def independent_score(net: nn.Module, image: np.ndarray, region: np.ndarray, target: int) -> torch.Tensor:
    x = to_nchw(image)
    z = net(x)
    grid = torch.from_numpy(resample_region(region, tuple(z.shape[2:])).astype(np.float32))
    return (z[0, target] * grid).sum() / grid.sum()


def test_layers_in_forward_order_and_the_softmax_stripped(torch_adapter, logits_net, image, region):
    assert torch_adapter.framework == "torch" and torch_adapter.gradients and torch_adapter.why_no_gradients is None
    assert torch_adapter.conv_layers == CONV_ORDER  # not definition order (logits is defined first)
    assert [layer.kind for layer in torch_adapter.layers] == ["Conv2d", "Conv2d", "ConvTranspose2d", "Conv2d", "Conv2d"]
    assert torch_adapter.num_classes == 4 and torch_adapter.input_size is None
    with torch.no_grad():
        expected = float(independent_score(logits_net, image, region, TARGET))
    np.testing.assert_allclose(torch_adapter.score(image[None], region, TARGET)[0], expected, rtol=1e-5)
    with torch.no_grad():
        probabilities = torch.softmax(logits_net(to_nchw(image)), dim=1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(torch_adapter.predict(image), probabilities, atol=1e-6)


def test_dict_output_and_sigmoid_binary_models(torch_model, image, region):
    plain = SegmentationAdapter(torch_model)
    wrapped = SegmentationAdapter(DictOutput(torch_model))
    assert wrapped.conv_layers == [f"network.{name}" for name in CONV_ORDER]
    np.testing.assert_allclose(wrapped.score(image[None], region, 2), plain.score(image[None], region, 2), rtol=1e-6)

    binary = SegmentationAdapter(TinyTorchUNet(classes=1, seed=3))
    assert binary.num_classes == 2 and binary.class_names == ["background", "foreground"]
    with torch.no_grad():
        z = float(independent_score(TinyTorchUNet(classes=1, seed=3, final=False).eval(), image, region, 0))
    np.testing.assert_allclose(binary.score(image[None], region, 1)[0], z, rtol=1e-5)
    np.testing.assert_allclose(binary.score(image[None], region, 0)[0], -z, rtol=1e-5)
    probabilities = binary.predict(image)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-6)
    with torch.no_grad():
        logit_map = TinyTorchUNet(classes=1, seed=3, final=False).eval()(to_nchw(image))[0, 0].numpy()
    np.testing.assert_allclose(probabilities[..., 1], 1 / (1 + np.exp(-logit_map)), atol=1e-6)


def test_refuses_a_module_that_is_not_a_segmentation_model():
    classifier = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        SegmentationAdapter(classifier)
    with pytest.raises(ValueError, match="failed on a"):
        SegmentationAdapter(nn.Conv2d(5, 2, 1))


def test_grad_cam_times_region_size_equals_seg_grad_cam_from_own_hooks(torch_adapter, logits_net, image, region):
    """Seg-Grad-CAM (Vinogradova et al. 2020): the SUM of logits over the region, gradient by torch hooks here."""
    result = registry.get("gradcam").explain(torch_adapter, image, region, TARGET)
    for name in CONV_ORDER:
        captured: dict[str, torch.Tensor] = {}
        module = logits_net.get_submodule(name)
        handle = module.register_forward_hook(lambda m, i, o, kept=captured: kept.setdefault("a", o))
        try:
            x = to_nchw(image).requires_grad_(True)
            z = logits_net(x)
        finally:
            handle.remove()
        grid = torch.from_numpy(resample_region(region, tuple(z.shape[2:])).astype(np.float32))
        total = (z[0, TARGET] * grid).sum()
        (grad,) = torch.autograd.grad(total, captured["a"])
        activation = captured["a"][0].detach()
        seg_grad_cam = torch.relu((grad[0].mean(dim=(1, 2))[:, None, None] * activation).sum(0)).numpy()
        ours = result.per_layer.native(name) * grid.sum().item()
        np.testing.assert_allclose(ours, seg_grad_cam, rtol=1e-4, atol=1e-6 * max(np.abs(seg_grad_cam).max(), 1e-6))


def test_layer_gradients_are_the_hooked_activations(torch_adapter, logits_net, image, region):
    _, layers = torch_adapter.layer_gradients(image, region, TARGET)
    captured = {}
    handle = logits_net.get_submodule("bottom").register_forward_hook(lambda m, i, o: captured.setdefault("a", o))
    with torch.no_grad():
        logits_net(to_nchw(image))
    handle.remove()
    np.testing.assert_allclose(layers["bottom"][0], captured["a"][0].permute(1, 2, 0).numpy(), rtol=1e-5, atol=1e-6)


def test_saliency_is_the_autograd_input_gradient(torch_adapter, logits_net, image, region):
    x = to_nchw(image).requires_grad_(True)
    z = logits_net(x)
    grid = torch.from_numpy(resample_region(region, tuple(z.shape[2:])).astype(np.float32))
    (grad,) = torch.autograd.grad((z[0, TARGET] * grid).sum() / grid.sum(), x)
    expected = grad[0].sum(dim=0).numpy()
    saliency = registry.get("saliency").explain(torch_adapter, image, region, TARGET).heatmap
    np.testing.assert_allclose(saliency, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_integrated_gradients_complete_and_shap_efficient(torch_adapter, image, region):
    results = explain(torch_adapter, image, region, TARGET, methods=["integrated_gradients", "shap", "deep_shap"],
                      params={"shap": {"max_evals": 200}})  # fmt: skip
    ig = results["integrated_gradients"]
    assert abs(ig.heatmap.sum() - (ig.score - ig.baseline_score)) <= 0.01 * abs(ig.score - ig.baseline_score)
    shap_result = results["shap"]
    np.testing.assert_allclose(shap_result.heatmap.sum(), shap_result.score - shap_result.baseline_score, atol=1e-4)
    deep = results["deep_shap"]
    np.testing.assert_allclose(deep.heatmap.sum(), deep.score - deep.baseline_score, rtol=1e-3, atol=1e-5)
    assert deep.diagnostics["additivity_error"] < 1e-3


def test_the_users_module_is_untouched(torch_model, image, region):
    before = {name: tensor.clone() for name, tensor in torch_model.state_dict().items()}
    adapter = SegmentationAdapter(torch_model)
    explain(adapter, image, region, TARGET, methods=["gradcam", "saliency", "deep_shap"])
    cascade = RandomizationCascade(adapter, seed=2)
    result = cascade.run(image, region, TARGET, ["hirescam", "saliency"])
    assert result.depths == list(reversed(CONV_ORDER))
    assert not np.allclose(result.maps["saliency"][0], result.maps["saliency"][-1])
    for name, tensor in torch_model.state_dict().items():
        torch.testing.assert_close(tensor, before[name], rtol=0, atol=0)
    assert all(p.grad is None for p in torch_model.parameters())
    assert all(not m._forward_hooks and not m._backward_hooks for m in torch_model.modules())
    again = cascade.run(image, region, TARGET, ["hirescam"])
    np.testing.assert_array_equal(again.maps["hirescam"], result.maps["hirescam"])


def test_batch_norm_stays_with_its_conv_and_is_reset():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1)
    ).eval()
    with torch.no_grad():
        model[1].running_mean.fill_(0.3)
        model[1].weight.fill_(2.0)
    backend = SegmentationAdapter(model).backend
    assert backend.randomization_units() == [["3"], ["1", "0"]]
    assert cascade_steps(backend.randomization_units()) == [["3"], ["1", "0"]]
    clone = backend.clone()
    clone.reinitialise(["1", "0"], seed=0)
    assert torch.all(clone.model[1].running_mean == 0) and torch.all(clone.model[1].weight == 1)
    assert torch.all(model[1].running_mean == 0.3)  # the user's module keeps its statistics
    first = clone.model[0].weight.clone()
    clone.reinitialise(["1", "0"], seed=0)
    torch.testing.assert_close(clone.model[0].weight, first)  # seeded
    clone.reinitialise(["1", "0"], seed=1)
    assert not torch.allclose(clone.model[0].weight, first)


def test_other_image_sizes(torch_adapter):
    for size in [(16, 24), (40, 32)]:
        image = structured_image(size)
        result = explain(torch_adapter, image, box_region(size, 2, 2, 8, 8), 2, methods=["layercam", "saliency"])
        assert all(r.heatmap.shape == size for r in result.values())
        assert torch_adapter.output_shape_for(size) == size
