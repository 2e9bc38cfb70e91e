"""The DeepLab-class Keras model the real-size benchmarks build for themselves (random weights, nothing downloaded).

DeepLabV3+ (Chen et al., "Encoder-Decoder with Atrous Separable Convolution for Semantic Image Segmentation", ECCV
2018) as in keras.io's "Multiclass semantic segmentation using DeepLabV3+": a ResNet50 encoder
(`keras.applications.ResNet50(weights=None)`, cut at conv4_block6_2_relu, output stride 16), dilated spatial pyramid
pooling (image pooling, 1x1, and 3x3 convs at rates 6, 12, 18, 256 filters), and a decoder that fuses the 1/4-resolution
conv2 features (48 channels) with two 3x3 convs, then bilinear upsampling to full-resolution logits. At 512x512 with
20 classes it has 52 conv layers and about 11.9 M parameters.
"""

from __future__ import annotations

import keras
from keras import layers


def _conv_block(x, filters: int, kernel: int = 3, dilation: int = 1, name: str | None = None):
    x = layers.Conv2D(filters, kernel, dilation_rate=dilation, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=None if name is None else f"{name}_bn")(x)
    return layers.Activation("relu", name=None if name is None else f"{name}_relu")(x)


def _aspp(x, filters: int):
    h, w = x.shape[1], x.shape[2]
    pooled = layers.AveragePooling2D(pool_size=(h, w), name="aspp_pool")(x)
    pooled = _conv_block(pooled, filters, kernel=1, name="aspp_pool_conv")
    pooled = layers.UpSampling2D(size=(h, w), interpolation="bilinear", name="aspp_pool_up")(pooled)
    branches = [pooled, _conv_block(x, filters, kernel=1, name="aspp_1x1")]
    branches += [_conv_block(x, filters, dilation=rate, name=f"aspp_rate{rate}") for rate in (6, 12, 18)]
    return _conv_block(layers.Concatenate(name="aspp_concat")(branches), filters, kernel=1, name="aspp_fuse")


def deeplabv3plus(
    size: tuple[int, int] = (512, 512), classes: int = 20, filters: int = 256, seed: int = 0
) -> keras.Model:
    """DeepLabV3+ on a ResNet50 encoder, random weights (seeded), (N, H, W, 3) in [0, 1] -> (N, H, W, classes) logits.

    `size` must be divisible by 16 (the encoder's output stride)."""
    if size[0] % 16 or size[1] % 16:
        raise ValueError(f"DeepLabV3+ needs a size divisible by 16; got {size}.")
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(*size, 3), name="image")
    resnet = keras.applications.ResNet50(weights=None, include_top=False, input_tensor=inputs)
    x = _aspp(resnet.get_layer("conv4_block6_2_relu").output, filters)
    x = layers.UpSampling2D(size=(4, 4), interpolation="bilinear", name="decoder_up")(x)
    low = _conv_block(resnet.get_layer("conv2_block3_2_relu").output, 48, kernel=1, name="decoder_low_level")
    x = layers.Concatenate(name="decoder_concat")([x, low])
    x = _conv_block(x, filters, name="decoder_conv1")
    x = _conv_block(x, filters, name="decoder_conv2")
    x = layers.UpSampling2D(size=(4, 4), interpolation="bilinear", name="output_up")(x)
    outputs = layers.Conv2D(classes, 1, padding="same", name="logits")(x)
    return keras.Model(inputs, outputs, name="deeplabv3plus")
