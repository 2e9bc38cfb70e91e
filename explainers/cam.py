"""Class activation maps for every conv layer from ONE forward+backward pass of the adapted region score.

The model backend takes each conv layer's activation A (h, w, k) and gradient G = dS/dA from one forward and one
backward pass; each method here is a small subclass whose `combine(ops, A, G)` hook turns them into an (h, w) map.
Combiners are written once, with arithmetic operators and the few `CamOps` functions (relu, sum, mean, where,
logical_and), so the same formula runs on the backend's own tensors: inside the Keras backend's XLA-compiled step, on
torch tensors in the torch backend (which runs the four registered here fused, sharing their passes over A and G,
explainers.backends.torch_cams, tested equal to these formulas; any other combiner as written). Only the small maps
leave the backend.

- Grad-CAM: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization",
  ICCV 2017. ReLU(sum_k mean_ij(G_k) A_k). On the adapted score S this is Seg-Grad-CAM (Vinogradova et al., AAAI
  2020) up to the factor 1/|M'|.
- HiResCAM: Draelos & Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations of convolutional neural
  networks", 2020. ReLU(sum_k G_k * A_k): no spatial averaging, so it stays local to the selected region.
- Grad-CAM++: Chattopadhyay et al., "Grad-CAM++: Improved Visual Explanations for Deep Convolutional Networks",
  WACV 2018. Channel weights sum_ij alpha_ij ReLU(G_ij) with the closed-form alpha of the paper.
- LayerCAM: Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps for Localization", IEEE TIP 2021.
  ReLU(sum_k ReLU(G_k) * A_k), meaningful at shallow layers too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from explainers import registry
from explainers.adapter import SegmentationAdapter
from explainers.backends.base import CamOps
from explainers.base import Explainer, Progress
from explainers.question import Question
from explainers.registry import register


class CAMExplainer(Explainer):
    """Base of the CAM family: one shared pass, a map per conv layer; subclasses implement `combine`."""

    family = "cam"
    signed = False
    # all_layers: maps for every conv layer from the one pass (the layer slider's lookups); False: only `layer`, whose
    # backward pass stops there (faster for a layer near the output; what single-layer CAM tools compute).
    defaults: dict[str, Any] = {"layer": None, "all_layers": True}

    @staticmethod
    def combine(ops: CamOps, activations: Any, gradients: Any) -> Any:
        """(h, w, k) activation and gradient tensors -> (h, w) map, in the backend's tensors (operators and `ops`)."""
        raise NotImplementedError

    def _layer(self, adapter: SegmentationAdapter, params: dict[str, Any]) -> str:
        if not adapter.conv_layers:
            raise ValueError(f"{self.label} needs a convolutional layer, and this model has none.")
        layer = params["layer"] or adapter.default_layer
        if layer not in adapter.conv_layers:
            raise ValueError(adapter.unknown_layer_message([layer]))
        return layer

    def compute(
        self,
        adapter: SegmentationAdapter,
        image: np.ndarray,
        question: Question,
        params: dict[str, Any],
        progress: Progress,
    ) -> dict[str, Any]:
        layer = self._layer(adapter, params)
        # Every registered CAM variant is computed in the same traced pass, so asking for the others is free.
        score, maps = adapter.layer_maps(
            image, question, combiners=cam_combiners(), layers=None if params["all_layers"] else [layer]
        )
        per_layer = maps[self.name]
        progress(1.0, f"{self.label}: done")
        return {"heatmap": per_layer[layer], "score": score, "per_layer": per_layer, "layer": layer}

    def compute_many(
        self, adapter: SegmentationAdapter, image: np.ndarray, questions: list[Question], params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """`compute` for several questions about one image (validated), from ONE forward pass shared by their
        backward passes (`SegmentationAdapter.layer_maps_many`)."""
        layer = self._layer(adapter, params)
        results = adapter.layer_maps_many(
            image, questions, combiners=cam_combiners(), layers=None if params["all_layers"] else [layer]
        )
        return [
            {"heatmap": maps[self.name][layer], "score": score, "per_layer": maps[self.name], "layer": layer}
            for score, maps in results
        ]


def cam_combiners() -> dict[str, Any]:
    """{name: combine} of every registered CAM method: all of them run in the one traced pass."""
    return {name: explainer.combine for name, explainer in cam_explainers().items()}


def cam_explainers() -> dict[str, CAMExplainer]:
    """The registered CAM methods, by name, in registry order."""
    return {
        name: explainer for name in registry.available() if isinstance(explainer := registry.get(name), CAMExplainer)
    }


@register
class GradCAM(CAMExplainer):
    name = "gradcam"
    label = "Grad-CAM"
    paper = "Selvaraju et al., ICCV 2017"

    @staticmethod
    def combine(ops: CamOps, activations: Any, gradients: Any) -> Any:
        weights = ops.mean(gradients, axis=(0, 1))
        return ops.relu(ops.sum(activations * weights, axis=-1))


@register
class HiResCAM(CAMExplainer):
    name = "hirescam"
    label = "HiResCAM"
    paper = "Draelos & Carin, 2020"

    @staticmethod
    def combine(ops: CamOps, activations: Any, gradients: Any) -> Any:
        return ops.relu(ops.sum(gradients * activations, axis=-1))


@register
class GradCAMPlusPlus(CAMExplainer):
    name = "gradcam++"
    label = "Grad-CAM++"
    paper = "Chattopadhyay et al., WACV 2018"

    @staticmethod
    def combine(ops: CamOps, activations: Any, gradients: Any) -> Any:
        # The paper's alpha = g^2 / (2 g^2 + sum_ij(A) g^3) equals 1 / (2 + sum_ij(A) g) wherever g != 0, and only
        # g > 0 counts (it multiplies ReLU(g)), so the weights are sum_ij g / (2 + sum_ij(A) g) over g > 0. With
        # p = ReLU(g) every g <= 0 gives p / 2 = 0 by itself; a zero denominator (alpha undefined) becomes +inf, so
        # its term p / inf is 0 too. (One masked division: the cheapest exact form, ~40% faster on torch.)
        positive = ops.relu(gradients)
        denominator = 2.0 + ops.sum(activations, axis=(0, 1)) * positive
        weights = ops.sum(positive / ops.where(denominator != 0.0, denominator, float("inf")), axis=(0, 1))
        return ops.relu(ops.sum(activations * weights, axis=-1))


@register
class LayerCAMMethod(CAMExplainer):
    name = "layercam"
    label = "LayerCAM"
    paper = "Jiang et al., IEEE TIP 2021"

    @staticmethod
    def combine(ops: CamOps, activations: Any, gradients: Any) -> Any:
        return ops.relu(ops.sum(ops.relu(gradients) * activations, axis=-1))
