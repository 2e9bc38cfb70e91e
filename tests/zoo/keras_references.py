"""The zoo's independent references on a Keras model (tests/zoo/conformance.py's `References`), computed with the
model's own layers and a plain `tf.GradientTape`, never with the engine: the pre-softmax logits and Seg-Grad-CAM."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from explainers import SegmentationAdapter
from explainers.backends.tf_isolation import TFGradientState
from tests.zoo.conformance import Question, with_a_token_layer


def reference_logits_fn(model: keras.Model) -> tuple[keras.Model, Any]:
    """(a model image -> [final layer's input], a function of that input -> pre-activation logits (N, h, w, C)),
    built from the model's own last layer: Softmax / Activation layers are skipped, a conv with a softmax or sigmoid
    activation is re-applied without it (keras.ops.conv with its own kernel), a sigmoid becomes (-z, z)."""
    final = model.layers[-1]
    body = keras.Model(model.inputs, final.input)
    activation = getattr(getattr(final, "activation", None), "__name__", None)
    sigmoid = activation == "sigmoid"
    if isinstance(final, (keras.layers.Softmax, keras.layers.Activation)):

        def head(x: Any) -> Any:
            return x
    elif isinstance(final, keras.layers.Conv2D) and activation in ("softmax", "sigmoid", "linear"):

        def head(x: Any) -> Any:
            z = keras.ops.conv(x, final.kernel, strides=final.strides, padding=final.padding,
                               dilation_rate=final.dilation_rate)  # fmt: skip
            return z + final.bias if final.use_bias else z
    else:
        raise AssertionError(f"no reference logits for a final {type(final).__name__}")

    def logits(x: Any) -> Any:
        z = head(x)
        return keras.ops.concatenate([-z, z], axis=-1) if sigmoid else z

    return body, logits


def outputs_logits(model: keras.Model) -> bool:
    """Whether the model's output is raw logits: its last layer is neither a Softmax / Activation layer nor a layer
    with a softmax or sigmoid activation of its own (e.g. keras.io's DeepLabV3+, whose last layer is a linear conv)."""
    final = model.layers[-1]
    activation = getattr(getattr(final, "activation", None), "__name__", None)
    if isinstance(final, keras.layers.Softmax):
        return False
    return activation not in ("softmax", "sigmoid")


def _uses(model: keras.Model, layer: Any) -> int:
    """How often `layer` is called in `model`'s own graph (the adapter's replays add nodes elsewhere)."""
    return sum(node.operation is layer for nodes in model._nodes_by_depth.values() for node in nodes)


class KerasReferences:
    """References for one Keras zoo model."""

    def __init__(self, model: keras.Model) -> None:
        self.model = model

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        out = np.asarray(self.model(image[None].astype(np.float32) / 255.0, training=False))[0]
        return self._as_probabilities(out)

    def round_off(self, image: np.ndarray) -> float:
        """The largest probability difference between the model's eager output and its output compiled by
        `tf.function`."""
        x = tf.constant(image[None].astype(np.float32) / 255.0)
        eager = np.asarray(self.model(x, training=False))[0]
        compiled = np.asarray(tf.function(lambda t: self.model(t, training=False))(x))[0]
        return float(np.abs(self._as_probabilities(eager) - self._as_probabilities(compiled)).max())

    def _as_probabilities(self, out: np.ndarray) -> np.ndarray:
        """The model's output (h', w', C) as class probabilities: as it is where the model ends in a softmax, the
        softmax (float64) of a raw-logits output, and (1 - p, p) for one channel (p the output, or the sigmoid of
        a raw logit)."""
        if outputs_logits(self.model):
            z = out.astype(np.float64)
            if z.shape[-1] == 1:
                out = 1.0 / (1.0 + np.exp(-z))
            else:
                e = np.exp(z - z.max(axis=-1, keepdims=True))
                out = e / e.sum(axis=-1, keepdims=True)
        return np.concatenate([1.0 - out, out], axis=-1) if out.shape[-1] == 1 else out

    def cam_layers(self, adapter: SegmentationAdapter, count: int = 3) -> list[str]:
        """CAM layers of the outer model (reachable as model.get_layer(name).output: not nested, not shared, not the
        final layer, whose output is past the logits), spread over its depth; token layers included (`seg_grad_cam`
        reshapes them itself)."""
        model = self.model
        nested = {layer.name for layer in model.layers if isinstance(layer, keras.Model)}
        top = [
            layer.name
            for layer in adapter.layers
            if "/" not in layer.name
            and layer.name != model.layers[-1].name
            and _uses(model, model.get_layer(layer.name)) == 1
            and layer.name not in nested
        ]
        picks = [top[i] for i in np.unique(np.linspace(0, len(top) - 1, count).round().astype(int))]
        return with_a_token_layer(picks, [layer.name for layer in adapter.layers if layer.tokens and layer.name in top])

    def seg_grad_cam(self, layers: list[str], q: Question) -> dict[str, np.ndarray]:
        """Seg-Grad-CAM from one tape compiled by `tf.function`, TensorFlow's graph mode, as the adapter runs its
        models. Eagerly, a deep net's float32 gradients round off differently: on DeepLabV3+ / ResNet50 at 512x512 the
        eager and compiled maps at conv1_conv differ by 1.3% of their maximum (0.3% at conv4_block1_3_conv), while
        both are 2.4-3.0% off a float64 evaluation of the same weights; the compiled reference and the engine agree to
        6e-6 there (measured)."""
        model = self.model
        outputs = [model.get_layer(name).output for name in layers]
        body, logits_of = reference_logits_fn(model)
        probe = keras.Model(model.inputs, [*outputs, body.output])
        x = tf.constant(q.image[None].astype(np.float32) / 255.0)
        cells = tf.constant(q.region[q.stride // 2 :: q.stride, q.stride // 2 :: q.stride], tf.float32)

        @tf.function
        def activations_and_gradients(x: tf.Tensor) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
            with tf.GradientTape() as tape:
                *activations, before_head = probe(x, training=False)
                total = tf.reduce_sum(logits_of(before_head)[0, :, :, q.target] * cells)
            return activations, tape.gradient(total, activations)

        activations, grads = activations_and_gradients(x)
        maps = {}
        for name, a, g in zip(layers, activations, grads, strict=True):
            a, g = a[0], g[0]
            if len(a.shape) == 2:  # tokens (L, C): the last h * w are the patches, row-major on a conv's grid
                h, w = self._token_grid(name, int(a.shape[0]))
                a, g = (tf.reshape(t[-h * w :], (h, w, -1)) for t in (a, g))
            alpha = tf.reduce_sum(g, axis=(0, 1))
            maps[name] = tf.nn.relu(tf.reduce_sum(a * alpha, axis=-1)).numpy()
        return maps

    def _token_grid(self, name: str, tokens: int) -> tuple[int, int]:
        """The grid of the last conv before layer `name` whose h * w is the token count, or one less (a class
        token)."""
        before = self.model.layers[: [layer.name for layer in self.model.layers].index(name)]
        for layer in reversed(before):
            if isinstance(layer, keras.layers.Conv2D):
                h, w = int(layer.output.shape[1]), int(layer.output.shape[2])
                if h * w in (tokens, tokens - 1):
                    return h, w
        raise AssertionError(f"no conv grid before {name} for {tokens} tokens")

    def global_state(self) -> TFGradientState:
        return TFGradientState.capture()

    def differences(self, snapshot: TFGradientState) -> list[str]:
        return snapshot.differences()
