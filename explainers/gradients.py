"""Gradient-based pixel attributions of the adapted region score, batched inside one traced tf.function.

All maps are summed over RGB to (H, W) and are signed. Gradients are taken with respect to the model input (the image
after the adapter's preprocess).

- Saliency: Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks: Visualising Image Classification
  Models and Saliency Maps", ICLR workshop 2014. dS/dx.
- SmoothGrad: Smilkov et al., "SmoothGrad: removing noise by adding noise", 2017. Mean gradient over noisy copies.
- Integrated Gradients: Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017.
  (x - x') * integral of dS/dx along the straight path from the baseline x'; trapezoid rule, so
  sum(map) ~= S(x) - S(x') (completeness).
- Gradient x Input: Shrikumar et al., "Not Just a Black Box: Learning Important Features Through Propagating
  Activation Differences", 2016. x * dS/dx.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from explainers.adapter import SegmentationAdapter
from explainers.base import Explainer, Progress
from explainers.baselines import baseline_image
from explainers.question import Question
from explainers.registry import register


class GradientExplainer(Explainer):
    family = "gradient"


@register
class Saliency(GradientExplainer):
    name = "saliency"
    label = "Saliency"
    paper = "Simonyan et al., 2014"

    def compute(
        self,
        adapter: SegmentationAdapter,
        image: np.ndarray,
        question: Question,
        params: dict[str, Any],
        progress: Progress,
    ) -> dict[str, Any]:
        score, _, grad = adapter.image_gradient(image, question)
        return {"heatmap": grad.sum(axis=-1), "score": score}


@register
class GradientXInput(GradientExplainer):
    name = "gradient_x_input"
    label = "Gradient x Input"
    paper = "Shrikumar et al., 2016"

    def compute(
        self,
        adapter: SegmentationAdapter,
        image: np.ndarray,
        question: Question,
        params: dict[str, Any],
        progress: Progress,
    ) -> dict[str, Any]:
        score, x, grad = adapter.image_gradient(image, question)
        return {"heatmap": (grad * x).sum(axis=-1), "score": score}


@register
class SmoothGrad(GradientExplainer):
    name = "smoothgrad"
    label = "SmoothGrad"
    paper = "Smilkov et al., 2017"
    slow = True
    # batch_size None: as many noisy copies at once as the adapter's memory budget allows (explainers.memory)
    defaults: dict[str, Any] = {"samples": 32, "noise": 0.15, "seed": 0, "batch_size": None}

    def evaluations(self, params: dict[str, Any]) -> dict[str, int]:
        return {"gradient": int(params["samples"]), "forward": 1}

    def compute(
        self,
        adapter: SegmentationAdapter,
        image: np.ndarray,
        question: Question,
        params: dict[str, Any],
        progress: Progress,
    ) -> dict[str, Any]:
        samples = int(params["samples"])
        if samples < 1:
            raise ValueError("SmoothGrad needs samples >= 1.")
        batch_size = int(params["batch_size"] or adapter.batch_size("gradient", image.shape[:2], samples))
        x = adapter.model_input(image[None])
        sigma = float(params["noise"]) * float(x.max() - x.min() or 1.0)
        rng = np.random.default_rng(params["seed"])
        total = np.zeros(x.shape[1:], dtype=np.float64)
        done = 0
        while done < samples:
            n = min(batch_size, samples - done)
            noisy = x + rng.normal(0.0, sigma, size=(n, *x.shape[1:])).astype(np.float32)
            _, grads = adapter.input_gradients(noisy, question, batch_size=batch_size)
            total += grads.sum(axis=0)
            done += n
            progress(done / samples, f"SmoothGrad: {done}/{samples} samples")
        score = adapter.score(image[None], question)[0]
        return {"heatmap": (total / samples).sum(axis=-1), "score": float(score)}


@register
class IntegratedGradients(GradientExplainer):
    """Trapezoid-rule IG that refines its own path until completeness holds.

    It starts with `steps` intervals; while |sum(map) - (S(x) - S(x'))| > tolerance * |S(x) - S(x')| and fewer than
    `max_steps` intervals are used, it halves every interval, reusing every gradient already computed (only the new
    midpoints are evaluated). The intervals used and the completeness error reached are reported in `diagnostics`.
    """

    name = "integrated_gradients"
    label = "Integrated Gradients"
    paper = "Sundararajan et al., ICML 2017"
    slow = True
    additive = True
    # batch_size None: as many path points at once as the adapter's memory budget allows (explainers.memory)
    defaults: dict[str, Any] = {
        "steps": 64, "baseline": "black", "tolerance": 0.01, "max_steps": 512, "batch_size": None
    }  # fmt: skip

    def evaluations(self, params: dict[str, Any]) -> dict[str, int]:
        """The first path (steps + 1 points); each refinement until completeness holds adds as many again."""
        return {"gradient": int(params["steps"]) + 1}

    def compute(
        self,
        adapter: SegmentationAdapter,
        image: np.ndarray,
        question: Question,
        params: dict[str, Any],
        progress: Progress,
    ) -> dict[str, Any]:
        steps, max_steps = int(params["steps"]), int(params["max_steps"])
        if steps < 1 or max_steps < steps:
            raise ValueError("Integrated Gradients needs 1 <= steps <= max_steps.")
        x = adapter.model_input(image[None])[0]
        x0 = adapter.model_input(baseline_image(image, params["baseline"])[None])[0]
        batch_size = int(params["batch_size"] or adapter.batch_size("gradient", image.shape[:2], steps + 1))
        evaluated = 0

        def gradient_sum(alphas: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """sum_i weights[i] * dS/dx at x0 + alphas[i] (x - x0), and the scores there."""
            nonlocal evaluated
            total = np.zeros(x.shape, dtype=np.float64)
            scores = np.empty(len(alphas))
            for start in range(0, len(alphas), batch_size):
                chunk = slice(start, start + batch_size)
                points = x0[None] + alphas[chunk, None, None, None].astype(np.float32) * (x - x0)[None]
                scores[chunk], grads = adapter.input_gradients(points, question, batch_size=len(points))
                total += np.tensordot(weights[chunk], grads, axes=1)
                evaluated += len(points)
                progress(min(evaluated / (max_steps + 1), 1.0), f"Integrated Gradients: {evaluated} path points")
            return total, scores

        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] = 0.5 / steps
        path_mean, scores = gradient_sum(np.linspace(0.0, 1.0, steps + 1), weights)
        score, baseline_score = float(scores[-1]), float(scores[0])
        delta = score - baseline_score

        def completeness_error() -> float:
            gap = abs(float(((x - x0) * path_mean).sum()) - delta)
            return gap / abs(delta) if abs(delta) > 1e-9 else gap

        while completeness_error() > float(params["tolerance"]) and steps * 2 <= max_steps:
            midpoints = (np.arange(steps) + 0.5) / steps
            midpoint_sum, _ = gradient_sum(midpoints, np.full(steps, 1.0 / (2 * steps)))
            path_mean = path_mean / 2 + midpoint_sum
            steps *= 2
        return {
            "heatmap": ((x - x0) * path_mean).sum(axis=-1),
            "score": score,
            "baseline_score": baseline_score,
            "diagnostics": {"steps_used": steps, "completeness_error": completeness_error(), "batch_size": batch_size},
        }
