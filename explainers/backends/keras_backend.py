"""The Keras 3 (TensorFlow) model backend: logits, scores, gradients and every layer's CAMs of a Keras model.

A Keras segmentation model usually outputs probabilities and never outputs its inner conv activations, so the model's
layer graph is replayed once (explainers.graph) into one flat *feature model*: image -> [logits, every conv layer's
activation] (a token layer's as its patch grid: a LayerNormalization whose output (N, L, C) is a patch grid of
the input, explainers.backends.tokens). Logits are found automatically: a final Softmax (layer or activation) is
stripped to reach the pre-activation tensor; a single-channel sigmoid model becomes two classes, background -z and
foreground z.

The region mask and the class weights enter the traced functions as inputs, so one `tf.function` serves every
selection with no rebuild per click. The CAM step is one concrete function per (combiners, layers, image size): one
forward pass, one `tf.GradientTape` gradient for every chosen layer at once, then every CAM combiner of a layer in one
XLA-compiled function per layer (run as soon as that layer's gradient exists; the registered CAMs fused,
explainers.backends.tf_cams); only the small (h, w) maps leave TensorFlow. `fast_pass` asks the same tape for dS/dx too
(saliency and gradient x input), so the whole fast set costs one forward and one backward pass.

The sanity check's clone / re-initialise / snapshot and DeepSHAP's native score model live here too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from explainers.backends.base import Combiner, LayerInfo, NativeScoreModel, ScoreSpec
from explainers.backends.tf_cams import layer_maps_function
from explainers.backends.tokens import keras_grid
from explainers.graph import CONV_LAYER_TYPES, LinearCopy, graph_of, leaf_layers, output_layer, trace_model

# Token layers: a LayerNormalization whose output (N, L, C) is a patch grid of the input image.
TOKEN_TYPES: tuple[type, ...] = (keras.layers.LayerNormalization,)
# Activation layers: one that rectifies a conv's output (directly or after one BatchNormalization) is listed as its
# rectified feature maps (the CAM papers explain these maps, and explainers.layer_choice prefers them): after that
# conv, or, for a conv -> BN -> ReLU block, instead of it (one entry per block).
RECTIFIER_LAYER_TYPES: tuple[type, ...] = (
    keras.layers.ReLU, keras.layers.ELU, keras.layers.LeakyReLU, keras.layers.PReLU,
)
ACTIVATION_TYPES: tuple[type, ...] = (keras.layers.Activation, *RECTIFIER_LAYER_TYPES)
# The activations that make a layer's output a rectified feature map (Keras's own function names; swish is silu).
RECTIFIERS = frozenset({"relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "hard_silu", "mish", "softplus"})


@dataclass(frozen=True)
class LogitsSource:
    """How the backend reaches the logits: the layer, what it strips, and whether the model is a sigmoid binary one."""

    layer: str
    strip: str  # "none" | "softmax_layer" | "activation" | "sigmoid_layer"
    binary: bool


def _activation_name(layer: Any) -> str | None:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    return getattr(activation, "__name__", str(activation))


def rectifies(layer: Any) -> bool:
    """Whether `layer` applies a rectifying nonlinearity (RECTIFIERS): an activation layer, or a conv's own
    activation."""
    if isinstance(layer, RECTIFIER_LAYER_TYPES):
        return True
    return _activation_name(layer) in RECTIFIERS


def detect_logits(model: keras.Model, logits_layer: str | None) -> tuple[Any, LogitsSource]:
    """The layer whose output (or pre-activation) is the logits, and how to reach it."""
    layers = {info.name: info.layer for info in leaf_layers(model)}
    if logits_layer is not None:
        if logits_layer not in layers:
            raise ValueError(f"logits_layer {logits_layer!r} is not a layer of the model; layers: {sorted(layers)}")
        return layers[logits_layer], LogitsSource(logits_layer, "none", binary=False)
    final = output_layer(model)
    kind = type(final.layer).__name__
    activation = _activation_name(final.layer)
    if isinstance(final.layer, keras.layers.Softmax) or (kind == "Activation" and activation == "softmax"):
        return final.layer, LogitsSource(final.name, "softmax_layer", binary=False)
    if kind == "Activation" and activation == "sigmoid":
        return final.layer, LogitsSource(final.name, "sigmoid_layer", binary=True)
    if activation == "softmax":
        return final.layer, LogitsSource(final.name, "activation", binary=False)
    if activation == "sigmoid":
        return final.layer, LogitsSource(final.name, "activation", binary=True)
    return final.layer, LogitsSource(final.name, "none", binary=False)


def mean_logit(logits: Any, region: Any, weights: Any) -> Any:
    """S = sum(z . weights * region) / sum(region), batched: logits (N,h,w,C), region (N|1,h,w), weights (N|1,C)."""
    region = keras.ops.cast(region, logits.dtype)
    class_logit = keras.ops.sum(logits * keras.ops.expand_dims(keras.ops.expand_dims(weights, 1), 1), axis=-1)
    total = keras.ops.sum(class_logit * region, axis=(1, 2))
    return total / keras.ops.maximum(keras.ops.sum(region, axis=(1, 2)), 1.0)


class KerasBackend:
    """A functional or Sequential Keras 3 model mapping (N, H, W, 3) to (N, H', W', C) (nested models, dynamic input
    sizes and outputs coarser than the input are supported). Thread-safe: the traced steps are built under a lock."""

    framework = "keras"
    gradients = True
    why_no_gradients: str | None = None

    def __init__(self, model: keras.Model, logits_layer: str | None = None) -> None:
        if not isinstance(model, keras.Model):
            raise ValueError(f"Unsupported model: expected a Keras 3 model, got {type(model).__name__}.")
        self.model = model
        self._logits_layer = logits_layer
        self._lock = threading.Lock()
        self._output_shapes: dict[tuple[int, int], tuple[int, int]] = {}
        inputs = graph_of(model).inputs
        if len(inputs) != 1:
            raise ValueError(f"Unsupported model: it has {len(inputs)} inputs; a segmentation model takes one image.")
        input_shape = tuple(inputs[0].shape)
        if input_shape is None or len(input_shape) != 4 or input_shape[-1] not in (3, None):
            raise ValueError(f"Unsupported model: expected an image input (N, H, W, 3), got {input_shape}.")
        self.input_size: tuple[int, int] | None = (
            (int(input_shape[1]), int(input_shape[2])) if input_shape[1] and input_shape[2] else None
        )
        self._logits_op, self.logits_source = detect_logits(model, logits_layer)
        self.binary = self.logits_source.binary
        candidates = [
            info for info in leaf_layers(model)
            if isinstance(info.layer, (*CONV_LAYER_TYPES, *TOKEN_TYPES))
            or (isinstance(info.layer, ACTIVATION_TYPES) and info.layer is not self._logits_op
                and rectifies(info.layer))
        ]  # fmt: skip
        self.conv_layers: list[str] = [info.name for info in candidates]
        self._token_layers: set[str] = set()
        self._rectified_conv: dict[str, str] = {}  # an activation layer listed as a CAM layer -> the conv it rectifies
        self._normalised_blocks: dict[str, str] = {}  # those with a BatchNormalization between: listed instead of it
        self._features = self._build_feature_model(find_tokens=True)
        conv = [info for info in candidates if info.name in self.conv_layers]
        kernels = {info.name: _kernel(info.layer) for info in candidates}
        logits_shape = tuple(self._features.outputs[0].shape)
        if len(logits_shape) != 4:
            raise ValueError(
                f"Unsupported model: its output must be (N, H, W, C) per-pixel class scores; got shape {logits_shape}."
            )
        self.num_classes = int(logits_shape[-1])
        self.layers: list[LayerInfo] = [
            LayerInfo(
                name=info.name,
                kind=type(info.layer).__name__,
                channels=_int_or_none(tensor.shape[-1]),
                kernel=None if info.name in self._token_layers
                else kernels[self._rectified_conv.get(info.name, info.name)],
                tokens=info.name in self._token_layers,
                shape=tuple(_int_or_none(v) for v in tensor.shape[1:]),
                activated=info.name in self._rectified_conv or rectifies(info.layer),
            )
            for info, tensor in zip(conv, self._features.outputs[1:], strict=True)
        ]
        self._score_fn = tf.function(self._score_and_input_gradient, reduce_retracing=True)
        self._forward_fn = tf.function(self._forward_scores, reduce_retracing=True)
        self._logits_fn = tf.function(lambda x: self._features(x, training=False)[0], reduce_retracing=True)
        self._map_fns: dict[tuple, Any] = {}

    # ----------------------------------------------------------------------------------------------- graph building
    def _build_feature_model(self, input_shape: tuple | None = None, find_tokens: bool = False) -> keras.Model:
        """One flat model: image -> [logits, every conv activation in conv_layers order]. A token layer's activation
        is its patch grid (N, h, w, C), put on the forward path (explainers.backends.tokens). `find_tokens`: the
        candidate LayerNormalization layers are kept in conv_layers only where their output is a patch grid (a model
        of fixed input size only: a dynamic one has no static token count), and the candidate activation layers only
        where they rectify a conv's output, directly or after one BatchNormalization."""
        source, logits_op = self.logits_source, self._logits_op
        recorded: dict[str, Any] = {}
        conv_names = set(self.conv_layers)
        linear_copies: dict[int, LinearCopy] = {}
        # id(tensor) -> (tensor, conv, normalised): a linear conv's output (False), or its BatchNormalization's (True)
        conv_outputs: dict[int, tuple[Any, str, bool]] = {}

        def intercept(operation: Any, name: str, call: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
            if operation is logits_op and source.strip in ("softmax_layer", "sigmoid_layer"):
                outputs = args[0]
            elif operation is logits_op and source.strip == "activation":
                linear = linear_copies.setdefault(id(operation), LinearCopy(operation))
                outputs = linear(*args, **kwargs)
            else:
                outputs = call(*args, **kwargs)
            produced_by = conv_outputs.get(id(args[0])) if args else None
            if isinstance(operation, CONV_LAYER_TYPES) and not rectifies(operation):
                conv_outputs[id(outputs)] = (outputs, name, False)
            elif isinstance(operation, keras.layers.BatchNormalization) and produced_by is not None:
                conv_outputs[id(outputs)] = (outputs, produced_by[1], True)
            if name in conv_names and isinstance(operation, TOKEN_TYPES):
                grid = keras_grid(outputs, image_size) if image_size is not None else None
                if grid is not None and (find_tokens or name in self._token_layers):
                    recorded[name], outputs = grid
                    self._token_layers.add(name)
            elif name in conv_names and isinstance(operation, ACTIVATION_TYPES):
                if find_tokens and produced_by is not None:
                    self._rectified_conv[name] = produced_by[1]
                    if produced_by[2]:
                        self._normalised_blocks[name] = produced_by[1]
                if name in self._rectified_conv:
                    recorded[name] = outputs
            elif name in conv_names:
                recorded[name] = outputs
            if operation is logits_op:
                recorded["__logits__"] = outputs
            return outputs

        shape = input_shape or tuple(graph_of(self.model).inputs[0].shape[1:])
        image_size = (int(shape[0]), int(shape[1])) if shape[0] and shape[1] else None
        inputs = keras.Input(shape=shape, dtype="float32", name="adapted_image")
        trace_model(self.model, inputs, intercept)
        if find_tokens:
            # One entry per conv -> BN -> activation block: its rectified output. The conv's raw output, before the
            # BatchNormalization rescales each channel, is not listed beside it. (A conv rectified directly, with no
            # BN between, keeps both entries: its raw maps are the signed pre-activations on the same scale.)
            blocks = {conv for activation, conv in self._normalised_blocks.items() if activation in recorded}
            self.conv_layers = [name for name in self.conv_layers if name in recorded and name not in blocks]
        if "__logits__" not in recorded:
            raise ValueError(f"Unsupported model: the logits layer {source.layer!r} is not reached from the input.")
        logits = recorded["__logits__"]
        if len(logits.shape) == 4 and source.binary:
            if logits.shape[-1] != 1:
                raise ValueError(f"Unsupported model: a sigmoid output must have 1 channel, got {logits.shape[-1]}.")
            logits = keras.layers.Concatenate(name="binary_logits")([-logits, logits])
        return keras.Model(inputs, [logits] + [recorded[name] for name in self.conv_layers], name="adapted_features")

    @property
    def listed_as(self) -> dict[str, str]:
        """{conv: the activation layer listed instead of it}: one CAM layer per conv -> BN -> activation block."""
        return {conv: act for act, conv in self._normalised_blocks.items() if act in self.conv_layers}

    @property
    def features(self) -> keras.Model:
        """The flat feature model image -> [logits, conv activations...] (benchmarks build per-layer peers on it)."""
        return self._features

    def region_score_model(self, spec: ScoreSpec, size: tuple[int, int]) -> keras.Model:
        """A flat Keras model image -> S(image), the region and class weights held as frozen linear layers.

        For graph-walking explainers (shap.DeepExplainer, other CAM libraries) that need a single-input model made of
        standard layers. It extends the adapted feature graph (same layer objects and names, no nesting), so only two
        small layers are built per call.
        """
        features = self._features if self.input_size is not None else self._build_feature_model((*size, 3))
        pick = keras.layers.Conv2D(1, 1, use_bias=False, trainable=False, name="target_class")
        class_logit = keras.layers.Flatten(name="flatten")(pick(features.outputs[0]))
        mean = keras.layers.Dense(1, use_bias=False, trainable=False, name="region_mean")
        score = mean(class_logit)
        pick.set_weights([np.asarray(spec.weights, dtype=np.float32).reshape(1, 1, -1, 1)])
        mean.set_weights([(spec.region / spec.region.sum()).reshape(-1, 1).astype(np.float32)])
        return keras.Model(features.inputs, score, name="adapted_region_score")

    def score_model(self, spec: ScoreSpec, size: tuple[int, int]) -> NativeScoreModel:
        """DeepSHAP's model: `region_score_model`, fed NHWC numpy as it is."""
        return NativeScoreModel(
            self.region_score_model(spec, size),
            to_native=lambda x: np.asarray(x, dtype=np.float32),
            to_nhwc=np.asarray,
        )

    # ------------------------------------------------------------------------------------------------ traced steps
    def _forward_scores(self, x: tf.Tensor, region: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        logits = self._features(x, training=False)[0]
        return mean_logit(logits, region[None], weights[None])

    def _score_and_input_gradient(
        self, x: tf.Tensor, region: tf.Tensor, weights: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            scores = self._forward_scores(x, region, weights)
        return scores, tape.gradient(scores, x)

    def _score_and_layer_gradients(
        self,
        x: tf.Tensor,
        region: tf.Tensor,
        weights: tf.Tensor,
        indices: tuple[int, ...] | None = None,
        input_gradient: bool = False,
    ) -> tuple:
        """S, the activations and gradients of the conv layers at `indices` (all by default) and, with
        `input_gradient`, dS/dx (else None), all from one tape: one forward and one backward pass, which goes no
        deeper than the shallowest tensor asked for."""
        with tf.GradientTape() as tape:
            if input_gradient:
                tape.watch(x)
            outputs = self._features(x, training=False)
            scores = mean_logit(outputs[0], region[None], weights[None])
        activations = list(outputs[1:]) if indices is None else [outputs[1 + i] for i in indices]
        if not input_gradient:
            return scores, activations, tape.gradient(scores, activations), None
        input_grad, *grads = tape.gradient(scores, [x, *activations])
        return scores, activations, grads, input_grad

    def _maps_step(
        self, combiners: Sequence[Combiner], indices: tuple[int, ...], input_gradient: bool = False
    ) -> Callable[..., Any]:
        combine_all = combined_maps(combiners)

        @tf.function(reduce_retracing=True)
        def step(x: tf.Tensor, region: tf.Tensor, weights: tf.Tensor) -> tuple:
            scores, activations, grads, input_grad = self._score_and_layer_gradients(
                x, region, weights, indices, input_gradient
            )
            maps = combine_all(activations, grads)
            return (scores, maps, input_grad) if input_gradient else (scores, maps)

        return step

    def _shared_maps_step(
        self, combiners: Sequence[Combiner], indices: tuple[int, ...], count: int
    ) -> Callable[..., Any]:
        """One forward pass, then the gradient of each of `count` scores from the same tape, and every combiner."""

        combine_all = combined_maps(combiners)

        @tf.function(reduce_retracing=True)
        def step(x: tf.Tensor, regions: tf.Tensor, weights: tf.Tensor) -> tuple[tf.Tensor, list[list[tf.Tensor]]]:
            with tf.GradientTape(persistent=True) as tape:
                outputs = self._features(x, training=False)
                scores = mean_logit(outputs[0], regions, weights)  # (1, h, w, C) with (K, h, w), (K, C) -> (K,)
                picked = [scores[k] for k in range(count)]
            activations = [outputs[1 + i] for i in indices]
            maps = []
            for k in range(count):
                grads = tape.gradient(picked[k], activations)
                grads = [tf.zeros_like(a) if g is None else g for a, g in zip(activations, grads, strict=True)]
                maps.append(combine_all(activations, grads))
            return scores, maps

        return step

    @staticmethod
    def _spec_tensors(spec: ScoreSpec) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.convert_to_tensor(spec.region, tf.float32), tf.convert_to_tensor(spec.weights, tf.float32)

    def _indices(self, layers: Sequence[str]) -> tuple[int, ...]:
        return tuple(self.conv_layers.index(layer) for layer in layers)

    # ------------------------------------------------------------------------------------------------- the seam
    def output_shape_for(self, size: tuple[int, int]) -> tuple[int, int]:
        size = (int(size[0]), int(size[1]))
        if size not in self._output_shapes:
            shape = self._features.compute_output_shape((1, size[0], size[1], 3))[0]
            if shape[1] is None or shape[2] is None:
                shape = self._logits_fn(tf.zeros((1, size[0], size[1], 3), tf.float32)).shape
            self._output_shapes[size] = (int(shape[1]), int(shape[2]))
        return self._output_shapes[size]

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self._logits_fn(tf.convert_to_tensor(x, tf.float32)).numpy()

    def scores(self, x: np.ndarray, spec: ScoreSpec) -> np.ndarray:
        region, weights = self._spec_tensors(spec)
        return self._forward_fn(tf.convert_to_tensor(x, tf.float32), region, weights).numpy()

    def input_gradients(self, x: np.ndarray, spec: ScoreSpec) -> tuple[np.ndarray, np.ndarray]:
        region, weights = self._spec_tensors(spec)
        scores, grads = self._score_fn(tf.convert_to_tensor(x, tf.float32), region, weights)
        return scores.numpy(), grads.numpy()

    def layer_gradients(
        self, x: np.ndarray, spec: ScoreSpec, layers: Sequence[str]
    ) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
        region, weights = self._spec_tensors(spec)
        scores, activations, grads, _ = self._score_and_layer_gradients(
            tf.convert_to_tensor(x, tf.float32), region, weights, self._indices(layers)
        )
        return float(scores.numpy()[0]), [(a.numpy()[0], g.numpy()[0]) for a, g in zip(activations, grads, strict=True)]

    def _run_maps_step(
        self, x: np.ndarray, spec: ScoreSpec, combiners: Sequence[Combiner], layers: Sequence[str], input_gradient: bool
    ) -> tuple:
        indices = self._indices(layers)
        x_t = tf.convert_to_tensor(x, tf.float32)
        region, weights = self._spec_tensors(spec)
        # One traced step per combiner set, layer set and image size, called as a concrete function. A step already
        # traced is looked up without the lock, so a request never waits for another one's tracing (of a new size or
        # layer set); tracing itself is serialised by the lock, and a second caller of the same step waits for it.
        step_key = (tuple(combiners), indices, input_gradient, tuple(x_t.shape), tuple(region.shape))
        step = self._map_fns.get(step_key)
        if step is None:
            with self._lock:
                if step_key not in self._map_fns:
                    traced = self._maps_step(tuple(combiners), indices, input_gradient)
                    self._map_fns[step_key] = traced.get_concrete_function(x_t, region, weights)
                step = self._map_fns[step_key]
        return step(x_t, region, weights)

    def layer_maps(
        self, x: np.ndarray, spec: ScoreSpec, combiners: Sequence[Combiner], layers: Sequence[str]
    ) -> tuple[float, list[np.ndarray]]:
        scores, maps = self._run_maps_step(x, spec, combiners, layers, input_gradient=False)
        return float(scores.numpy()[0]), [layer_maps.numpy() for layer_maps in maps]

    def fast_pass(
        self, x: np.ndarray, spec: ScoreSpec, combiners: Sequence[Combiner], layers: Sequence[str]
    ) -> tuple[float, list[np.ndarray], np.ndarray]:
        scores, maps, input_grad = self._run_maps_step(x, spec, combiners, layers, input_gradient=True)
        return float(scores.numpy()[0]), [layer_maps.numpy() for layer_maps in maps], input_grad.numpy()[0]

    def layer_maps_shared(
        self, x: np.ndarray, specs: Sequence[ScoreSpec], combiners: Sequence[Combiner], layers: Sequence[str]
    ) -> tuple[list[float], list[list[np.ndarray]]]:
        """`layer_maps` for several questions about one image: ONE forward pass on a persistent tape, then one
        gradient per question from it (no forward pass repeated), all in one traced function (traced once per power
        of two of the number of questions, capped at the number of classes)."""
        indices = self._indices(layers)
        x_t = tf.convert_to_tensor(x, tf.float32)
        # The step is traced per number of questions: pad it to a power of two, at most the number of classes
        # (repeating the last question; the extra maps are dropped), so a few traces serve every count.
        count = min(1 << max(len(specs) - 1, 0).bit_length(), max(len(specs), self.num_classes))
        padded = [*specs, *[specs[-1]] * (count - len(specs))]
        regions = tf.convert_to_tensor(np.stack([spec.region for spec in padded]), tf.float32)
        weights = tf.convert_to_tensor(np.stack([spec.weights for spec in padded]), tf.float32)
        with self._lock:
            step_key = ("shared", tuple(combiners), indices, tuple(x_t.shape), tuple(regions.shape))
            if step_key not in self._map_fns:
                self._map_fns[step_key] = self._shared_maps_step(
                    tuple(combiners), indices, count
                ).get_concrete_function(x_t, regions, weights)
            step = self._map_fns[step_key]
        scores, maps = step(x_t, regions, weights)
        kept = len(specs)
        return [float(s) for s in scores.numpy()[:kept]], [[m.numpy() for m in per] for per in maps[:kept]]

    # ------------------------------------------------------------------------------------------- the sanity check
    def clone(self) -> KerasBackend:
        return KerasBackend(clone_with_weights(self.model), self._logits_layer)

    def randomization_units(self) -> list[list[str]]:
        return randomization_units(self.model)

    def reinitialise(self, names: Sequence[str], seed: int) -> None:
        reinitialise(self.model, names, seed)

    def snapshot(self, names: Sequence[str] | None = None) -> list[tuple[Any, np.ndarray]]:
        chosen = None if names is None else set(names)
        return [
            (variable, np.array(variable))
            for info in leaf_layers(self.model)
            if chosen is None or info.name in chosen
            for variable in info.layer.weights
        ]

    def restore(self, snapshot: list[tuple[Any, np.ndarray]]) -> None:
        for variable, value in snapshot:
            variable.assign(value)

    # ---------------------------------------------------------------------------------------------- memory budget
    def activation_bytes(self, size: tuple[int, int]) -> int:
        """Bytes of the forward tensors one image of `size` keeps for its backward pass: the tensors of the traced
        score-and-input-gradient graph (TensorFlow's own shapes at this size) that a gradient op reads, weights
        excluded. Traced, never run; an upper bound, since TensorFlow fuses some of them at run time."""
        h, w = self.output_shape_for(size)
        specs = (tf.TensorSpec((1, int(size[0]), int(size[1]), 3), tf.float32), tf.TensorSpec((h, w), tf.float32),
                 tf.TensorSpec((self.num_classes,), tf.float32))  # fmt: skip
        graph = tf.function(self._score_and_input_gradient).get_concrete_function(*specs).graph
        return saved_tensor_bytes(graph)


WEIGHT_OPS = frozenset({"Const", "ReadVariableOp", "VarHandleOp", "Placeholder", "ResourceGather"})


def saved_tensor_bytes(graph: Any) -> int:
    """Total bytes of the distinct forward tensors with a known shape that ops of the gradient tape read in `graph`
    (a traced tf.function graph holding a `tf.GradientTape` gradient), weights and constants excluded."""
    saved: dict[str, int] = {}
    for op in graph.get_operations():
        if "gradient_tape" not in op.name:
            continue
        for tensor in op.inputs:
            source = tensor.op
            if "gradient_tape" in source.name or source.type in WEIGHT_OPS or not tensor.shape.is_fully_defined():
                continue
            saved[tensor.name] = int(tensor.shape.num_elements()) * int(tensor.dtype.size)
    return sum(saved.values())


def combined_maps(combiners: Sequence[Combiner]) -> Callable[..., Any]:
    """(per-layer activations, per-layer gradients) of one image -> per layer, an (h, w, len(combiners)) stack of
    every combiner's map, from one XLA-compiled function per layer (explainers.backends.tf_cams, the registered CAMs
    fused).

    Per layer, not one function over all layers: a layer's maps are then computed as soon as its gradient exists,
    during the backward pass, and its activation and gradient can be freed at once. One function over every layer
    needs all of them alive together: at 512x512 on DeepLabV3+ (88 layers as listed then) that raised the pass's peak
    memory by about 0.7 GB (which TensorFlow's CPU allocator keeps), and it compiled 2x slower and ran ~15% slower."""
    combine_layer = layer_maps_function(combiners)

    def combine_all(activations: list[tf.Tensor], grads: list[tf.Tensor]) -> list[tf.Tensor]:
        return [combine_layer(activation, grad) for activation, grad in zip(activations, grads, strict=True)]

    return combine_all


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _kernel(layer: Any) -> tuple[int, int] | None:
    size = getattr(layer, "kernel_size", None)
    return (int(size[0]), int(size[1])) if size is not None and len(size) == 2 else None


# ------------------------------------------------------------------------------------- sanity-check helpers (Keras)
def randomization_blocks(model: keras.Model) -> list[str]:
    """Names of the model's weighted leaf layers from the logits toward the input (graph order reversed)."""
    return [info.name for info in reversed(leaf_layers(model)) if info.layer.weights]


def randomization_units(model: keras.Model) -> list[list[str]]:
    """Weighted layers grouped as (conv layer + the weighted non-conv layers that follow it, e.g. its BatchNorm),
    from the logits toward the input."""
    units: list[list[str]] = []
    for info in leaf_layers(model):
        if not info.layer.weights:
            continue
        if isinstance(info.layer, CONV_LAYER_TYPES) or not units:
            units.append([info.name])
        else:
            units[-1].append(info.name)
    return [list(reversed(unit)) for unit in reversed(units)]


def _initializer_for(layer: Any, variable: Any, seed: int) -> Any:
    name = variable.name.split("/")[-1]
    candidates = (f"{name}_initializer", f"{name.removesuffix('_kernel')}_initializer")
    initializer = next((getattr(layer, c) for c in candidates if getattr(layer, c, None) is not None), None)
    if initializer is None:
        std = float(np.std(np.asarray(variable))) or 0.05
        return keras.initializers.RandomNormal(stddev=std, seed=seed)
    config = initializer.get_config()
    if "seed" in config:
        return type(initializer).from_config({**config, "seed": seed})
    return initializer


def reinitialise(model: keras.Model, layer_names: Sequence[str], seed: int) -> None:
    """Assign freshly initialised values to every weight of the named leaf layers of `model` (in place), from each
    weight's own initializer (`kernel_initializer`, ..., seeded); a weight without one is drawn from a normal with the
    weight's own standard deviation."""
    layers = {info.name: info.layer for info in leaf_layers(model)}
    for i, name in enumerate(layer_names):
        layer = layers[name]
        for j, variable in enumerate(layer.weights):
            initializer = _initializer_for(layer, variable, seed=seed * 100_003 + i * 101 + j)
            variable.assign(initializer(tuple(variable.shape), dtype=variable.dtype))


def clone_with_weights(model: keras.Model) -> keras.Model:
    """An independent copy of `model` (new variables) holding the same weights."""
    try:
        clone = keras.models.clone_model(model)
    except Exception as error:  # Keras raises several types for models it cannot rebuild from their config
        raise ValueError(f"The model cannot be cloned for the randomization check: {error}") from error
    clone.set_weights(model.get_weights())
    return clone
