"""DeepSHAP on torch refuses, with the reason and before shap runs, the models its rules would get wrong: a module
type without a rule that is not linear, and a stateful module (max-pooling, an activation) run twice in one forward
pass. A model that only reuses linear modules is not refused, and its DeepSHAP map is still additive."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explainers import SegmentationAdapter, registry
from explainers.shap_methods import torch_modules_reused, torch_modules_without_rules

torch.set_num_threads(1)


class Net(nn.Module):
    """conv -> act -> pool -> conv -> pool -> upsample x4 -> 1x1 logits; `act`, `pool` and `up` vary per test."""

    def __init__(self, act: nn.Module, shared_pool: bool, share_up: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.act = act
        self.pool = nn.MaxPool2d(2)
        self.pool2 = self.pool if shared_pool else nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.up2 = self.up if share_up else nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.logits = nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.logits(self.up2(self.up(x)))


def _region() -> np.ndarray:
    region = np.zeros((16, 16), dtype=bool)
    region[4:12, 2:10] = True
    return region


IMAGE = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)


def _deep_shap(model: nn.Module):
    adapter = SegmentationAdapter(model)
    return registry.get("deep_shap").explain(adapter, IMAGE, _region(), 1, params={"background": ("black",)})


def test_a_max_pool_run_twice_is_refused_by_name():
    model = Net(nn.ReLU(), shared_pool=True)
    assert torch_modules_reused(model, torch.zeros(1, 3, 16, 16)) == ["pool"]
    with pytest.raises(ValueError, match=r"DeepSHAP cannot run on this model: .*module\(s\) pool run more than once"):
        _deep_shap(model)
    # Nothing of shap's is left on the user's module.
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


def test_a_module_type_without_a_rule_is_refused_by_type():
    model = Net(nn.Hardswish(), shared_pool=False)
    assert torch_modules_without_rules(model) == ["Hardswish"]
    with pytest.raises(ValueError, match="no rule for its module type\\(s\\) Hardswish"):
        _deep_shap(model)


def test_reused_linear_modules_are_not_refused_and_stay_additive():
    model = Net(nn.ReLU(), shared_pool=False, share_up=True)  # one nn.Upsample called twice: linear, no state
    assert torch_modules_reused(model, torch.zeros(1, 3, 16, 16)) == []
    assert torch_modules_without_rules(model) == []
    result = _deep_shap(model)
    np.testing.assert_allclose(result.heatmap.sum(), result.score - result.baseline_score, rtol=2e-3, atol=1e-4)
