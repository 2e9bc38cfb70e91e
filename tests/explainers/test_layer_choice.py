"""The default CAM layer rule on hand-made layer lists."""

from __future__ import annotations

import pytest

from explainers.backends.base import LayerInfo
from explainers.layer_choice import classifier_layers, default_cam_layer, is_logits_layer


def conv(name: str, channels: int, kernel: int = 3) -> LayerInfo:
    return LayerInfo(name=name, kind="Conv2D", channels=channels, kernel=(kernel, kernel))


def test_skips_the_logits_conv_even_with_a_3x3_kernel():
    layers = [conv("enc", 16), conv("dec", 16), conv("skip", 16, kernel=1), conv("logits", 3)]
    assert default_cam_layer(layers, 3) == "dec"
    assert is_logits_layer("logits", layers, 3) and not is_logits_layer("dec", layers, 3)


def test_skips_a_head_of_several_classifier_convs_and_1x1_convs():
    layers = [conv("block_depthwise", 96), conv("aspp", 64, kernel=1), conv("gate", 64, kernel=1),
              conv("high_classifier", 4, kernel=1), conv("low_classifier", 4, kernel=1)]  # fmt: skip
    assert classifier_layers(layers, 4) == {"high_classifier", "low_classifier"}
    assert default_cam_layer(layers, 4) == "block_depthwise"


def test_a_sigmoid_model_s_one_channel_mask_layer_is_its_head():
    assert default_cam_layer([conv("a", 8), conv("b", 8), conv("mask", 1, kernel=1)], 2) == "b"


def test_token_layers_mix_spatial_context():
    tokens = LayerInfo(name="block1_out", kind="Add", channels=32, kernel=None, tokens=True)
    assert default_cam_layer([conv("embed", 32, kernel=7), tokens, conv("fuse", 32, kernel=1), conv("z", 4, 1)], 4) \
        == "block1_out"


def test_fallbacks():
    assert default_cam_layer([conv("a", 8, kernel=1), conv("b", 8, kernel=1), conv("z", 3, 1)], 3) == "b"
    assert default_cam_layer([conv("only", 3)], 3) == "only"
    with pytest.raises(ValueError, match="no convolutional"):
        default_cam_layer([], 3)
