"""Attribution explanations for image-segmentation networks.

`SegmentationAdapter` turns a Keras 3 segmentation model into a classifier-like model whose single score is the mean
class logit over a user-chosen region; every method in `registry` explains that score; `explain` runs several of them
for the same question. This package never imports Dash.
"""

from explainers import cam, gradients, registry, shap_methods  # noqa: F401  (importing registers the methods)
from explainers.adapter import SegmentationAdapter
from explainers.attribution import Attribution
from explainers.base import Explainer
from explainers.explain import explain


def load_model(path: str, class_names: list[str] | tuple[str, ...] | None = None) -> SegmentationAdapter:
    """A `SegmentationAdapter` on the `.keras` or `.onnx` model at `path` (an ONNX model: through onnx2torch when the
    converted module matches onnxruntime, else served by onnxruntime as a black box, gradient methods unavailable with
    the reason). Raises `explainers.model_loading.ModelRefused` (a ValueError) with the reason if it cannot be used."""
    from explainers.model_loading import load_adapter

    return load_adapter(path, class_names, probe=True)


__all__ = ["Attribution", "Explainer", "SegmentationAdapter", "explain", "load_model", "registry"]
