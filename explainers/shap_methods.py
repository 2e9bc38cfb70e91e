"""SHAP attributions of the adapted region score, computed by the shap library (never re-implemented).

- `shap`: Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017, with the Partition
  explainer (Owen values over a hierarchical clustering of pixels) and an Image blur masker: model-agnostic, it only
  calls the batched `adapter.score`. Exactly efficient: sum(map) = S(x) - S(fully blurred image). Its cost is
  `max_evals` forward passes (shap's own overhead is a few percent); the default 300 with `fixed_context=1` resolves
  ~140 image regions (the default context resolves only ~12-16) and took 1.9-2.4 s at 128x128 on 2 CPU cores
  (benchmarks/RESULTS.md).
- `deep_shap`: DeepLIFT-style SHAP (shap.DeepExplainer; Lundberg & Lee 2017, after Shrikumar et al., "Learning
  Important Features Through Propagating Activation Differences", ICML 2017) on the region score as a model of the
  backend's framework (a flat Keras model, or a torch module wrapping the network), against a background of reference
  images; sum(map) ~= S(x) - mean S(background) (the error reached is in `diagnostics`). A model whose operations
  shap's DeepExplainer cannot handle is refused with the reason before shap runs: Keras ops without a shap rule;
  torch module types without one that are not linear (LayerNorm, MultiheadAttention, Hardswish: shap would pass the
  plain gradient through them), and stateful modules (max-pooling, activations) that run twice in one forward pass
  (shap keeps one input per module). An error inside shap is reported the same way.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import warnings
from typing import Any

import numpy as np

from explainers.adapter import SegmentationAdapter
from explainers.backends.tf_isolation import isolated_deep_explainer
from explainers.base import Explainer, Progress
from explainers.baselines import baseline_image
from explainers.question import Question
from explainers.registry import register


@register
class PartitionShap(Explainer):
    name = "shap"
    label = "SHAP (Partition, blur)"
    family = "shap"
    paper = "Lundberg & Lee, NeurIPS 2017"
    slow = True
    additive = True
    requires_gradients = False  # only calls adapter.score: runs on black-box models too
    defaults: dict[str, Any] = {"max_evals": 300, "batch_size": 50, "blur_kernel": None, "fixed_context": 1}

    def evaluations(self, params: dict[str, Any]) -> dict[str, int]:
        return {"forward": int(params["max_evals"]) + 1}

    def compute(
        self,
        adapter: SegmentationAdapter,
        image: np.ndarray,
        question: Question,
        params: dict[str, Any],
        progress: Progress,
    ) -> dict[str, Any]:
        import shap

        max_evals = int(params["max_evals"])
        if max_evals < 10:
            raise ValueError("SHAP needs max_evals >= 10.")
        kernel = int(params["blur_kernel"] or max(3, max(image.shape[:2]) // 8))
        evaluated = 0

        def region_score(batch: np.ndarray) -> np.ndarray:
            nonlocal evaluated
            # shap hands over at most `batch_size` masked images; the adapter splits them further if the memory
            # budget demands it
            scores = adapter.score(np.asarray(batch, dtype=np.float32), question)
            evaluated += len(batch)
            progress(min(evaluated / max_evals, 1.0), f"SHAP: {evaluated}/{max_evals} evaluations")
            return scores

        masker = _image_masker(f"blur({kernel},{kernel})", image.shape)
        explainer = shap.explainers.Partition(region_score, masker)
        explanation = explainer(
            image[None].astype(np.float32),
            max_evals=max_evals,
            batch_size=int(params["batch_size"]),
            fixed_context=params["fixed_context"],
            silent=True,
        )
        base = float(np.ravel(explanation.base_values)[0])
        heatmap = np.asarray(explanation.values, dtype=np.float64).reshape(image.shape).sum(axis=-1)
        score = float(adapter.score(image[None], question)[0])
        return {"heatmap": heatmap, "score": score, "baseline_score": base}


@functools.lru_cache(maxsize=8)
def _partition_tree(shape: tuple[int, ...]) -> np.ndarray:
    """shap's axis-aligned pixel clustering for an image shape (read-only). It depends on the shape alone, and building
    it costs ~0.6-1.2 s at 128x128x3 (a fifth of a default SHAP run), so it is built once per shape."""
    import shap

    clustering = shap.maskers.Image(0.0, shape).clustering
    clustering.setflags(write=False)
    return clustering


@functools.cache
def _kept_tree_masker() -> type:
    """shap's Image masker, taking its clustering from `_partition_tree` instead of rebuilding it."""
    import shap

    class KeptTreeImageMasker(shap.maskers.Image):
        def build_partition_tree(self) -> None:
            self.clustering = _partition_tree(tuple(int(n) for n in self.input_shape))

    return KeptTreeImageMasker


def _image_masker(mask_value: str, shape: tuple[int, ...]) -> Any:
    """A fresh shap Image masker (it keeps per-image blur state, so one per run) on the kept clustering."""
    return _kept_tree_masker()(mask_value, shape)


# shap 0.51's DeepExplainer has no rule for these TF ops, which U-Nets use (Conv2DTranspose, UpSampling2D, depthwise
# convs). Each is linear in its data input (index given), for which DeepLIFT's rule is exact: multipliers pass through
# unchanged, which is what shap's own `linearity_1d` handler does for Conv2D, AvgPool and Reshape.
LINEAR_TF_OPS = {
    "Conv2DBackpropInput": 2,
    "ResizeNearestNeighbor": 0,
    "ResizeBilinear": 0,
    "DepthwiseConv2dNative": 0,
}


def _add_linear_op_rules() -> None:
    from shap.explainers._deep import deep_tf

    for op_type, data_input in LINEAR_TF_OPS.items():
        deep_tf.op_handlers.setdefault(op_type, deep_tf.linearity_1d(data_input))


def deep_explainer_values(model: Any, background: Any, x: Any) -> tuple[np.ndarray, float]:
    """shap.DeepExplainer on a native score model (a keras.Model or torch.nn.Module with one output): attributions
    of `x`, shaped like the native input, and the expected value over `background`. A Keras model runs isolated:
    TensorFlow's gradient state is restored afterwards, failed or not, and no other gradient runs meanwhile."""
    import shap

    isolation = isolated_deep_explainer() if _is_keras(model) else contextlib.nullcontext()
    with isolation, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explainer = shap.DeepExplainer(model, background)
        values = explainer.shap_values(x, check_additivity=False)
    return np.asarray(values, dtype=np.float64), float(np.ravel(explainer.expected_value)[0])


def _is_keras(model: Any) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(model, keras.Model)


def tf_ops_without_rules(model: Any, input_shape: tuple[int, ...]) -> list[str]:
    """The TensorFlow op types on the path from the input to the output of a Keras `model` for which shap's
    DeepExplainer has no rule: its tape records every such op as `shap_<type>`, then fails looking up a gradient."""
    import tensorflow as tf
    from shap.explainers._deep import deep_tf

    graph = (
        tf.function(lambda x: model(x, training=False))
        .get_concrete_function(tf.TensorSpec((1, *input_shape[1:]), tf.float32))
        .graph
    )
    reached, todo, missing = set(), [graph.inputs[0]], set()
    while todo:
        tensor = todo.pop()
        for op in tensor.consumers():
            if op.name in reached:
                continue
            reached.add(op.name)
            if op.type not in deep_tf.op_handlers:
                missing.add(op.type)
            todo.extend(out for out in op.outputs if out.dtype.is_floating)
    return sorted(missing)


def torch_modules_without_rules(model: Any) -> list[str]:
    """The module types in a torch `model` for which shap's DeepExplainer has no rule and that are not linear: it
    passes the plain gradient through them (with a warning), which breaks DeepLIFT's summation-to-delta (LayerNorm,
    MultiheadAttention, Hardswish, ...). torch.nn's own modules only: the code of other modules' `forward` (a model's
    own, or a converter's one-op modules such as onnx2torch's) cannot be judged from its type."""
    from shap.explainers._deep import deep_pytorch
    from torch import nn

    linear = (nn.Linear, nn.Identity, nn.Flatten, nn.Unflatten, nn.Upsample, nn.PixelShuffle, nn.PixelUnshuffle,
              nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d, nn.Dropout)  # fmt: skip
    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)  # and a plain nn.Module holding submodules
    missing = set()
    for module in model.modules():
        kind = type(module)
        own = kind.__module__.startswith("torch.nn.") and kind is not nn.Module and not isinstance(module, containers)
        if own and kind.__name__ not in deep_pytorch.op_handler and not isinstance(module, linear):
            missing.add(kind.__name__)
    return sorted(missing)


def torch_modules_reused(model: Any, x: Any) -> list[str]:
    """The modules of a torch `model` that shap's DeepExplainer keeps state for (its max-pool and non-linear rules store
    the module's input and output on the module itself) and that run more than once in one forward pass on `x`: each
    call overwrites the last one's, so the rule would use another call's tensors (a shape error, or silently wrong
    values). One forward pass with counting hooks, removed after it."""
    import torch
    from shap.explainers._deep import deep_pytorch

    stateful = {name for name, rule in deep_pytorch.op_handler.items() if rule.__name__ in ("maxpool", "nonlinear_1d")}
    calls: dict[str, int] = {}
    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: calls.__setitem__(name, calls.get(name, 0) + 1))
        for name, module in model.named_modules()
        if type(module).__name__ in stateful
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return sorted(name for name, count in calls.items() if count > 1)


@register
class DeepShap(Explainer):
    name = "deep_shap"
    label = "DeepSHAP"
    family = "shap"
    paper = "Lundberg & Lee, NeurIPS 2017"
    slow = True
    additive = True
    exclusive_gradients = True
    defaults: dict[str, Any] = {"background": ("black", "blur")}

    def evaluations(self, params: dict[str, Any]) -> dict[str, int]:
        """shap's DeepExplainer: one forward+backward per background image, plus the score."""
        kinds = params["background"]
        return {"gradient": 1 if isinstance(kinds, str) else len(kinds), "forward": 1}

    def compute(
        self,
        adapter: SegmentationAdapter,
        image: np.ndarray,
        question: Question,
        params: dict[str, Any],
        progress: Progress,
    ) -> dict[str, Any]:
        kinds = params["background"]
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        if not kinds:
            raise ValueError("DeepSHAP needs at least one background image kind.")
        background = adapter.model_input(np.stack([baseline_image(image, kind) for kind in kinds]))
        x = adapter.model_input(image[None])
        progress(0.1, "DeepSHAP: building the explainer")
        native = adapter.native_score_model(question, size=image.shape[:2])
        if adapter.framework == "keras":
            _add_linear_op_rules()
            if missing := tf_ops_without_rules(native.model, x.shape):
                raise ValueError(f"DeepSHAP cannot run on this model: shap's DeepExplainer has no rule for its "
                                 f"TensorFlow operation(s) {', '.join(missing)}. Use SHAP (Partition) or Integrated "
                                 "Gradients instead.")  # fmt: skip
        if adapter.framework == "torch" and (missing := torch_modules_without_rules(native.model)):
            raise ValueError(f"DeepSHAP cannot run on this model: shap's DeepExplainer has no rule for its module "
                             f"type(s) {', '.join(missing)}. Use SHAP (Partition) or Integrated Gradients "
                             "instead.")  # fmt: skip
        if adapter.framework == "torch" and (reused := torch_modules_reused(native.model, native.to_native(x))):
            reused = [name.removeprefix("network.") for name in reused]  # the score module holds the model as .network
            raise ValueError(f"DeepSHAP cannot run on this model: shap's DeepExplainer keeps one input per module, and "
                             f"module(s) {', '.join(reused)} run more than once in a forward pass. Use SHAP "
                             "(Partition) or Integrated Gradients instead.")  # fmt: skip
        progress(0.3, "DeepSHAP: propagating")
        try:
            values, base = deep_explainer_values(native.model, native.to_native(background), native.to_native(x))
        except Exception as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
            raise ValueError(f"DeepSHAP cannot run on this {adapter.framework} model: shap's DeepExplainer failed on "
                             f"its operations ({type(error).__name__}: {first}).") from error  # fmt: skip
        heatmap = native.to_nhwc(values).reshape(x.shape).sum(axis=-1)[0].astype(np.float64)
        score = float(adapter.score(image[None], question)[0])
        progress(1.0, "DeepSHAP: done")
        gap = abs(float(heatmap.sum()) - (score - base))
        diagnostics = {"additivity_error": gap / abs(score - base) if abs(score - base) > 1e-9 else gap}
        return {"heatmap": heatmap, "score": score, "baseline_score": base, "diagnostics": diagnostics}
