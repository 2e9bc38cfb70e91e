"""Real Keras segmentation architectures, built in code with random but non-degenerate weights, for the zoo tests.

No weights can be downloaded, so every model is built from its well-known structure (keras.applications encoders with
``weights=None``) and then made non-degenerate by `randomize`: random biases, and BatchNorm statistics set from the
activations the layer really sees on a random image batch (then perturbed), with random gamma and beta. Keras
initialises biases at zero and BatchNorm at mean 0 / variance 1; with that a deep net's activations vanish or explode
and a zero-bias net is linear in its input scale, which hides bugs in the attribution methods.

The architectures (what each stresses):

- `pets_unet`: keras.io "Image segmentation with a U-Net-like architecture" (Oxford pets): SeparableConv2D blocks,
  Conv2DTranspose, residuals joined with `layers.add`, a final softmax conv. Full-resolution output.
- `deeplabv3plus_resnet50`: keras.io "Multiclass semantic segmentation using DeepLabV3+": ResNet50 encoder, dilated
  spatial pyramid pooling (rates 1, 6, 12, 18 and image pooling), a 1/4-resolution decoder. Full-resolution output.
- `mobilenetv2_lraspp`: MobileNetV2 encoder (a nested multi-output model) with the LR-ASPP head of "Searching for
  MobileNetV3" (Howard et al., ICCV 2019): logits at 1/8, non-square input.
- `efficientnetb0_fpn`: EfficientNetB0 encoder with a feature pyramid (Lin et al., CVPR 2017) head, dynamic input
  (None, None, 3), logits at 1/4.
- `nested_shared`: a nested Sequential block, a nested functional block, one conv layer shared by two branches,
  and two nested models that both hold a layer named "conv"; sigmoid single-channel output, non-square.
- `segformer_like`: a SegFormer-style transformer (Xie et al., NeurIPS 2021): overlapping patch embeddings, attention
  blocks on (N, L, C) token sequences (the second stage with a class token), an all-MLP decoder; logits at 1/4.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
from keras import layers

from explainers.graph import trace_model
from tests.zoo.scenes import scene


@dataclass(frozen=True)
class ZooModel:
    """A zoo entry: its builder, the input size it is tested at, and what the adapter should find."""

    name: str
    build: Callable[[], keras.Model]
    size: tuple[int, int]  # the image size the tests use (the model's own size, or any for a dynamic one)
    output_stride: int  # input size / logits size
    classes: int
    # Method parameters on top of the zoo's cheap ones (conformance.ZOO_PARAMS), for a model too slow to run them in CI;
    # never the tolerance a check asserts (the checks read it from ZOO_PARAMS).
    method_params: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------------ weights
def randomize(
    model: keras.Model,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    classifiers: tuple[str, ...] | None = None,
    logits_std: float = 1.5,
) -> keras.Model:
    """Give `model` random biases and realistic BatchNorm statistics, in place; returns it.

    One replay of the model on a batch of random images visits the layers in order: each BatchNorm's moving mean and
    variance are set from the batch statistics of the input it actually receives (times a random factor near 1), its
    gamma and beta drawn at random, and every other bias drawn from N(0, 0.1). The classifier layers (default: the
    output layer) are rescaled so that their pre-activation output has standard deviation `logits_std`: logits that
    neither vanish nor saturate the softmax.
    """
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            continue
        for weight in layer.weights:
            if weight.path.endswith("bias") and "normalization" not in weight.path:
                weight.assign(rng.normal(0.0, 0.1, weight.shape).astype(np.float32))
    shape = size or tuple(int(n) for n in model.inputs[0].shape[1:3])
    classifiers = classifiers or (model.layers[-1].name,)
    images = np.stack([scene(shape, seed=seed + k) for k in range(6)]).astype(np.float32) / 255.0

    def intercept(operation, name, call, args, kwargs):
        if isinstance(operation, layers.BatchNormalization):
            x = keras.ops.convert_to_numpy(args[0])
            axes = tuple(range(x.ndim - 1))
            mean, var = x.mean(axis=axes, dtype=np.float64), x.var(axis=axes, dtype=np.float64) + 1e-3
            k = mean.shape[0]
            operation.moving_mean.assign((mean + rng.normal(0, 0.05, k) * np.sqrt(var)).astype(np.float32))
            operation.moving_variance.assign((var * rng.uniform(0.8, 1.25, k)).astype(np.float32))
            if operation.gamma is not None:
                operation.gamma.assign(rng.uniform(0.6, 1.4, k).astype(np.float32))
            if operation.beta is not None:
                operation.beta.assign(rng.normal(0.1, 0.2, k).astype(np.float32))
        if operation.name in classifiers:
            activation = operation.activation
            operation.activation = keras.activations.linear
            std = float(np.std(keras.ops.convert_to_numpy(operation(*args, **kwargs))))
            operation.activation = activation
            for weight in operation.weights:
                weight.assign(weight.numpy() * (logits_std / max(std, 1e-6)))
        return call(*args, **kwargs)

    trace_model(model, keras.ops.convert_to_tensor(images), intercept)
    return model


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    found = []
    for layer in model.layers:
        found.extend(_all_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return found


# ---------------------------------------------------------------------------------------------------- the pets U-Net
def pets_unet(size: tuple[int, int] = (128, 128), classes: int = 3, seed: int = 0) -> keras.Model:
    """keras.io's Oxford-pets U-Net-like model, as in the tutorial (layers named automatically)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(*size, 3))
    x = layers.Conv2D(32, 3, strides=2, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x
    for filters in [64, 128, 256]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(filters, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    for filters in [256, 128, 64, 32]:
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.UpSampling2D(2)(x)
        residual = layers.UpSampling2D(2)(previous_block_activation)
        residual = layers.Conv2D(filters, 1, padding="same")(residual)
        x = layers.add([x, residual])
        previous_block_activation = x
    outputs = layers.Conv2D(classes, 3, activation="softmax", padding="same")(x)
    return randomize(keras.Model(inputs, outputs), seed)


# ------------------------------------------------------------------------------------------------- DeepLabV3+
def _conv_block(x, filters: int, kernel: int = 3, dilation: int = 1, name: str | None = None):
    x = layers.Conv2D(filters, kernel, dilation_rate=dilation, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def _aspp(x, filters: int = 64):
    """Dilated spatial pyramid pooling: image pooling and 1x1 / dilated 3x3 convs (rates 6, 12, 18), fused by 1x1."""
    h, w = x.shape[1], x.shape[2]
    pooled = layers.AveragePooling2D(pool_size=(h, w))(x)
    pooled = _conv_block(pooled, filters, kernel=1)
    pooled = layers.UpSampling2D(size=(h, w), interpolation="bilinear")(pooled)
    branches = [pooled, _conv_block(x, filters, kernel=1)]
    branches += [_conv_block(x, filters, dilation=rate, name=f"aspp_rate{rate}") for rate in (6, 12, 18)]
    return _conv_block(layers.Concatenate(axis=-1)(branches), filters, kernel=1, name="aspp_fuse")


def deeplabv3plus_resnet50(size: tuple[int, int] = (512, 512), classes: int = 4, seed: int = 0) -> keras.Model:
    """keras.io's DeepLabV3+ on a ResNet50 (weights=None): ASPP on conv4 (1/16), decoder at 1/4, output full size."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(*size, 3))
    resnet = keras.applications.ResNet50(weights=None, include_top=False, input_tensor=inputs)
    x = _aspp(resnet.get_layer("conv4_block6_2_relu").output)
    x = layers.UpSampling2D(size=(4, 4), interpolation="bilinear")(x)
    low = _conv_block(resnet.get_layer("conv2_block3_2_relu").output, 48, kernel=1, name="decoder_low_level")
    x = layers.Concatenate(axis=-1)([x, low])
    x = _conv_block(x, 64, name="decoder_conv1")
    x = _conv_block(x, 64, name="decoder_conv2")
    x = layers.UpSampling2D(size=(4, 4), interpolation="bilinear")(x)
    outputs = layers.Conv2D(classes, 1, padding="same", name="logits")(x)
    return randomize(keras.Model(inputs, outputs, name="deeplabv3plus"), seed)


# ------------------------------------------------------------------------------------------------ MobileNetV2 LR-ASPP
def mobilenetv2_lraspp(size: tuple[int, int] = (160, 224), classes: int = 3, seed: int = 0) -> keras.Model:
    """MobileNetV2 (weights=None) as a nested two-output encoder (1/8 and 1/16 features) with an LR-ASPP head;
    logits at 1/8, then softmax as a separate layer."""
    keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(*size, 3), alpha=0.5)
    encoder = keras.Model(
        base.inputs, [base.get_layer("block_6_expand_relu").output, base.get_layer("block_13_expand_relu").output],
        name="mobilenetv2_encoder",
    )
    inputs = keras.Input(shape=(*size, 3))
    scaled = layers.Rescaling(2.0, offset=-1.0)(inputs)
    low, high = encoder(scaled)
    branch = _conv_block(high, 64, kernel=1, name="lraspp_conv")
    gate = layers.GlobalAveragePooling2D(keepdims=True)(high)
    gate = layers.Conv2D(64, 1, activation="sigmoid", name="lraspp_gate")(gate)
    x = layers.Multiply()([branch, gate])
    x = layers.UpSampling2D(2, interpolation="bilinear")(x)
    x = layers.Conv2D(classes, 1, name="lraspp_high_classifier")(x)
    low_logits = layers.Conv2D(classes, 1, name="lraspp_low_classifier")(low)
    logits = layers.Add(name="lraspp_logits")([x, low_logits])
    outputs = layers.Softmax(name="probabilities")(logits)
    model = keras.Model(inputs, outputs, name="mobilenetv2_lraspp")
    return randomize(model, seed, classifiers=("lraspp_high_classifier", "lraspp_low_classifier"))


# ---------------------------------------------------------------------------------------------- EfficientNetB0 FPN
def efficientnetb0_fpn(classes: int = 5, seed: int = 0) -> keras.Model:
    """EfficientNetB0 (weights=None, dynamic input) with an FPN head over its 1/4, 1/8, 1/16 and 1/32 features;
    logits at 1/4."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(None, None, 3))
    base = keras.applications.EfficientNetB0(weights=None, include_top=False, input_tensor=inputs)
    names = ["block2b_add", "block3b_add", "block5c_add", "top_activation"]
    features = [base.get_layer(name).output for name in names]
    top = layers.Conv2D(64, 1, name="fpn_lateral4")(features[-1])
    pyramid = [top]
    for level in (3, 2, 1):
        lateral = layers.Conv2D(64, 1, name=f"fpn_lateral{level}")(features[level - 1])
        top = layers.Add()([layers.UpSampling2D(2)(top), lateral])
        pyramid.insert(0, top)
    merged = []
    for level, feature in enumerate(pyramid):
        x = _conv_block(feature, 32, name=f"fpn_smooth{level + 1}")
        merged.append(layers.UpSampling2D(2**level, interpolation="bilinear")(x) if level else x)
    x = _conv_block(layers.Add()(merged), 32, name="fpn_head")
    outputs = layers.Conv2D(classes, 1, activation="softmax", name="fpn_logits")(x)
    return randomize(keras.Model(inputs, outputs, name="efficientnetb0_fpn"), seed, size=(96, 128))


# -------------------------------------------------------------------------------------- nested and shared layers
def nested_shared(size: tuple[int, int] = (64, 96), seed: int = 0) -> keras.Model:
    """A nested Sequential stem, a nested functional block, one conv layer shared by two branches, and two nested
    blocks that each hold a layer named "conv" (Keras asks names to be unique only within one model). Sigmoid output."""
    keras.utils.set_random_seed(seed)

    def block(name: str, filters: int) -> keras.Model:
        inputs = keras.Input((None, None, filters))
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv")(inputs)
        return keras.Model(inputs, layers.Add(name="residual")([inputs, x]), name=name)

    stem = keras.Sequential(
        [
            keras.Input((*size, 3)),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="stem_conv1"),
            layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="stem_conv2"),
        ],
        name="stem",
    )
    shared = layers.Conv2D(16, 3, padding="same", activation="relu", name="shared_conv")
    inputs = keras.Input((*size, 3))
    x = stem(inputs)
    x = block("block_a", 16)(x)
    left = shared(x)
    right = shared(layers.AveragePooling2D(2)(x))
    right = layers.UpSampling2D(2)(right)
    x = layers.Concatenate()([left, right])
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="merge_conv")(x)
    x = block("block_b", 32)(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="pre_up_conv")(x)
    x = layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu", name="up_conv")(x)
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    return randomize(keras.Model(inputs, outputs, name="nested_shared"), seed)


# --------------------------------------------------------------------------------------------- SegFormer-style
@keras.saving.register_keras_serializable(package="segxplain_zoo")
class ClassToken(layers.Layer):
    """Prepends one learned token to an (N, L, C) sequence (ViT's class token)."""

    def build(self, input_shape):
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="random_normal", name="token")

    def call(self, tokens):
        batch = keras.ops.shape(tokens)[0]
        return keras.ops.concatenate([keras.ops.tile(self.token, [batch, 1, 1]), tokens], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[2])


def _attention_block(tokens, grid: tuple[int, int], channels: int, reduction: int, name: str, class_token: bool):
    """Pre-norm efficient self-attention (keys/values from a strided conv over the grid when reduction > 1) + MLP."""
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(tokens)
    keys = x
    if reduction > 1:
        spatial = layers.Lambda(lambda t: t[:, 1:], name=f"{name}_drop_cls")(x) if class_token else x
        spatial = layers.Reshape((*grid, channels), name=f"{name}_to_grid")(spatial)
        spatial = layers.Conv2D(channels, reduction, strides=reduction, name=f"{name}_reduce")(spatial)
        keys = layers.Reshape((-1, channels), name=f"{name}_reduced_tokens")(spatial)
        keys = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm_kv")(keys)
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=channels // 2, name=f"{name}_attention")(x, keys)
    tokens = layers.Add(name=f"{name}_residual1")([tokens, attended])
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(tokens)
    x = layers.Dense(channels * 2, activation="gelu", name=f"{name}_mlp1")(x)
    x = layers.Dense(channels, name=f"{name}_mlp2")(x)
    return layers.Add(name=f"{name}_out")([tokens, x])


def segformer_like(size: tuple[int, int] = (128, 128), classes: int = 4, seed: int = 0) -> keras.Model:
    """Two stages (1/4 and 1/8 token grids; the second with a class token), an all-MLP decoder, logits at 1/4."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((*size, 3))
    stages = []
    x = inputs
    for stage, (channels, stride, reduction) in enumerate([(32, 4, 4), (64, 2, 2)], start=1):
        x = layers.Conv2D(channels, stride * 2 - 1, strides=stride, padding="same", name=f"patch_embed{stage}")(x)
        grid = (x.shape[1], x.shape[2])
        tokens = layers.Reshape((-1, channels), name=f"tokens{stage}")(x)
        tokens = layers.LayerNormalization(epsilon=1e-6, name=f"embed_norm{stage}")(tokens)
        with_cls = stage == 2
        if with_cls:
            tokens = ClassToken(name="class_token")(tokens)
        tokens = _attention_block(tokens, grid, channels, reduction, f"stage{stage}_block1", with_cls)
        if with_cls:
            tokens = layers.Lambda(lambda t: t[:, 1:], name="drop_class_token")(tokens)
        x = layers.Reshape((*grid, channels), name=f"stage{stage}_grid")(tokens)
        stages.append(x)
    decoded = []
    for stage, feature in enumerate(stages, start=1):
        y = layers.Dense(32, name=f"decoder_mlp{stage}")(feature)
        decoded.append(layers.UpSampling2D(2 ** (stage - 1), interpolation="bilinear")(y) if stage > 1 else y)
    x = layers.Concatenate()(decoded)
    x = _conv_block(x, 32, kernel=1, name="decoder_fuse")
    outputs = layers.Conv2D(classes, 1, activation="softmax", name="segformer_logits")(x)
    return randomize(keras.Model(inputs, outputs, name="segformer_like"), seed)


ZOO: dict[str, ZooModel] = {
    entry.name: entry
    for entry in (
        ZooModel("pets_unet", pets_unet, (128, 128), 1, 3),
        # At the 512x512 one forward pass costs ~1.5 s on two shared cores, so SHAP gets 20 evaluations (its
        # efficiency, the check, is exact at any count; 60 took 89 s). IG keeps the zoo's path: 64 intervals reach
        # 0.7% completeness (32 leave more than 5%).
        ZooModel("deeplabv3plus_resnet50", deeplabv3plus_resnet50, (512, 512), 1, 4, {"shap": {"max_evals": 20}}),
        ZooModel("mobilenetv2_lraspp", mobilenetv2_lraspp, (160, 224), 8, 3),
        ZooModel("efficientnetb0_fpn", efficientnetb0_fpn, (96, 128), 4, 5),
        ZooModel("nested_shared", nested_shared, (64, 96), 1, 2),
        ZooModel("segformer_like", segformer_like, (128, 128), 4, 4),
    )
}
