"""Which layer a CAM explains by default.

At the logits layer a CAM explains almost nothing: with the region-mean score, the gradient there is the region mask
itself, so Grad-CAM is the ReLU'd class-logit map (blank for a class whose logits are negative everywhere), and
HiResCAM / LayerCAM draw the selected region back. The default is therefore the last layer that still mixes spatial
context before the classifier head.

Among those, a rectified feature map is preferred: the CAM papers explain the maps A_k after the conv's nonlinearity
(Grad-CAM's "rectified convolutional feature maps"), and their weights rely on it. Grad-CAM++'s closed-form alpha
1 / (2 + sum_ij(A) g) assumes sum_ij(A) >= 0; on a pre-activation output (a conv whose BatchNorm and ReLU follow as
separate layers, as in every keras.applications encoder) the sums are signed, the denominators change sign, and the
map can be all zero (MobileNetV2's last depthwise conv). LayerCAM's ReLU(g) * A assumes A >= 0 likewise. So the
default is the last such layer whose output is a nonlinearity's (`LayerInfo.activated`: a conv with its own
rectifier, or the activation layer that rectifies a conv's output, listed after it), or a token layer (a
transformer's feature maps, which are normalised, not rectified, in every vision transformer). A backend that lists
no activated layer (torch lists its conv modules only) gets the last spatial layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from explainers.backends.base import LayerInfo


def classifier_layers(layers: Sequence[LayerInfo], num_classes: int) -> set[str]:
    """The classifier head: the trailing layers (after the last layer of another width) whose output has one channel
    per class (e.g. the final 1x1 logits conv, or LR-ASPP's two classifier convs)."""
    head: set[str] = set()
    for layer in reversed(layers):
        if layer.channels not in (num_classes, 1 if num_classes == 2 else num_classes):
            break
        head.add(layer.name)
    return head


def mixes_spatial_context(layer: LayerInfo) -> bool:
    """A convolution with a kernel larger than 1x1, or a token layer (attention mixes every position)."""
    return layer.tokens or (layer.kernel is not None and layer.kernel[0] * layer.kernel[1] > 1)


def is_logits_layer(layer: str, layers: Sequence[LayerInfo], num_classes: int) -> bool:
    """Whether `layer` belongs to the classifier head (a CAM there shows the logits or the region itself)."""
    return layer in classifier_layers(layers, num_classes)


def is_feature_map(layer: LayerInfo) -> bool:
    """A rectified feature map (`LayerInfo.activated`) or a token layer: what the CAM methods are defined on."""
    return layer.activated or layer.tokens


def default_cam_layer(layers: Sequence[LayerInfo], num_classes: int) -> str:
    """The default CAM layer: the last layer, in forward order, that is not part of the classifier head (the trailing
    layers with one output channel per class), that mixes spatial context (a kernel larger than 1x1, its conv's for
    an activation layer, or a token layer) and that is a feature map (`is_feature_map`). Without one: the last such
    layer that mixes spatial context; then the last layer outside the head; for a model whose only conv layers are
    the head: its last.

    Raises ValueError for a model without CAM layers.
    """
    if not layers:
        raise ValueError("The model has no convolutional (or token) layer for the CAM methods.")
    head = classifier_layers(layers, num_classes)
    body = [layer for layer in layers if layer.name not in head]
    spatial = [layer for layer in body if mixes_spatial_context(layer)]
    features = [layer for layer in spatial if is_feature_map(layer)]
    return (features or spatial or body or list(layers))[-1].name
