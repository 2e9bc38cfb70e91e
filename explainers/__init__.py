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

__all__ = ["Attribution", "Explainer", "SegmentationAdapter", "explain", "registry"]
