"""Class activation maps for every conv layer from ONE forward+backward pass of the adapted region score.

The adapter returns each conv layer's activation A (h, w, k) and gradient G = dS/dA; each method here is a small
subclass that combines them into an (h, w) map, upsampled (bilinear) to image resolution:

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

from explainers.adapter import SegmentationAdapter
from explainers.base import Explainer, Progress
from explainers.registry import register
from explainers.resize import upsample


class CAMExplainer(Explainer):
    """Base of the CAM family: one shared pass, a map per conv layer; subclasses implement `combine`."""

    family = "cam"
    signed = False
    defaults: dict[str, Any] = {"layer": None}

    def combine(self, activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        """(h, w, k) activation and gradient -> (h, w) map."""
        raise NotImplementedError

    def compute(
        self,
        adapter: SegmentationAdapter,
        image: np.ndarray,
        region: np.ndarray,
        target: int,
        params: dict[str, Any],
        progress: Progress,
    ) -> dict[str, Any]:
        if not adapter.conv_layers:
            raise ValueError(f"{self.label} needs a convolutional layer, and this model has none.")
        layer = params["layer"] or adapter.conv_layers[-1]
        if layer not in adapter.conv_layers:
            raise ValueError(f"{layer!r} is not a conv layer of the model; choose one of {adapter.conv_layers}.")
        score, layers = adapter.layer_gradients(image, region, target)
        per_layer = {
            name: upsample(self.combine(activations, gradients), image.shape[:2])
            for name, (activations, gradients) in layers.items()
        }
        progress(1.0, f"{self.label}: done")
        return {"heatmap": per_layer[layer], "score": score, "per_layer": per_layer, "layer": layer}


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


@register
class GradCAM(CAMExplainer):
    name = "gradcam"
    label = "Grad-CAM"
    paper = "Selvaraju et al., ICCV 2017"

    def combine(self, activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        weights = gradients.mean(axis=(0, 1))
        return _relu(activations @ weights)


@register
class HiResCAM(CAMExplainer):
    name = "hirescam"
    label = "HiResCAM"
    paper = "Draelos & Carin, 2020"

    def combine(self, activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        return _relu((gradients * activations).sum(axis=-1))


@register
class GradCAMPlusPlus(CAMExplainer):
    name = "gradcam++"
    label = "Grad-CAM++"
    paper = "Chattopadhyay et al., WACV 2018"

    def combine(self, activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        grads_2 = gradients**2
        grads_3 = grads_2 * gradients
        sum_activations = activations.sum(axis=(0, 1))
        denominator = 2.0 * grads_2 + sum_activations * grads_3
        safe = np.where(denominator != 0.0, denominator, 1.0)
        alpha = np.where((gradients != 0.0) & (denominator != 0.0), grads_2 / safe, 0.0)
        weights = (alpha * _relu(gradients)).sum(axis=(0, 1))
        return _relu(activations @ weights)


@register
class LayerCAMMethod(CAMExplainer):
    name = "layercam"
    label = "LayerCAM"
    paper = "Jiang et al., IEEE TIP 2021"

    def combine(self, activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        return _relu((_relu(gradients) * activations).sum(axis=-1))
