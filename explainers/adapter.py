"""Adapt a segmentation network into a classifier-like model with a single score.

A segmentation model maps an image x to per-pixel class logits z(x) (H' x W' x C). For a user-chosen region M (a
boolean H x W mask) and target class c, the adapted score is the mean class logit over the region,

    S_c(x; M) = (1 / |M'|) * sum_{p in M'} z_c(x)[p],      M' = M resampled to the output grid (nearest),

which equals Seg-Grad-CAM's score (Vinogradova, Dibrov & Myers, "Towards Interpretable Semantic Segmentation via
Gradient-weighted Class Activation Mapping", AAAI 2020: the sum of logits over the region) up to the factor 1/|M'|.
Any classification attribution method can then explain S.

The region and the target class enter the traced computation as *inputs* (a mask at output resolution and a one-hot
vector), so one traced function serves every selection and every class with no model rebuild per click.

Logits are found automatically: a final Softmax (layer or activation) is stripped to reach the pre-activation tensor;
a single-channel sigmoid model becomes two classes, background with logit -z and foreground with logit z.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from explainers.graph import CONV_LAYER_TYPES, LinearCopy, graph_of, leaf_layers, output_layer, trace_model

Preprocess = Callable[[np.ndarray], np.ndarray]


def default_preprocess(images: np.ndarray) -> np.ndarray:
    """Pixel values in [0, 255] (uint8, or float for perturbed images) -> float32 in [0, 1]."""
    return np.asarray(images, dtype=np.float32) / np.float32(255.0)


def resample_region(region: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resampling of a boolean (H, W) mask to the output grid (h, w).

    Output cell (i, j) takes the input pixel at its centre, floor((i + 0.5) * H / h). If that loses a small region
    entirely (a single clicked pixel on a coarse output grid), every output cell the region touches is used instead,
    so a non-empty selection never becomes an empty score.
    """
    region = np.asarray(region, dtype=bool)
    height, width = region.shape
    out_h, out_w = out_shape
    if (out_h, out_w) == (height, width):
        return region.copy()
    rows = np.minimum(((np.arange(out_h) + 0.5) * height / out_h).astype(int), height - 1)
    cols = np.minimum(((np.arange(out_w) + 0.5) * width / out_w).astype(int), width - 1)
    resampled = region[np.ix_(rows, cols)]
    if resampled.any() or not region.any():
        return resampled
    ys, xs = np.nonzero(region)
    touched = np.zeros((out_h, out_w), dtype=bool)
    touched[np.minimum(ys * out_h // height, out_h - 1), np.minimum(xs * out_w // width, out_w - 1)] = True
    return touched


@dataclass(frozen=True)
class LogitsSource:
    """How the adapter reaches the logits: the layer, what it strips, and whether the model is a sigmoid binary one."""

    layer: str
    strip: str  # "none" | "softmax_layer" | "activation" | "sigmoid_layer"
    binary: bool


def _activation_name(layer: Any) -> str | None:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    return getattr(activation, "__name__", str(activation))


def _detect_logits(model: keras.Model, logits_layer: str | None) -> tuple[Any, LogitsSource]:
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


class SegmentationAdapter:
    """A Keras 3 segmentation model seen as a classifier whose single score is the mean class logit over a region.

    Args:
        model: any functional or Sequential Keras 3 model mapping (N, H, W, 3) to (N, H', W', C) (nested models,
            dynamic input sizes and outputs coarser than the input are supported).
        class_names: one name per class; defaults to "class 0", ... (or background/foreground for sigmoid models).
        preprocess: maps an (N, H, W, 3) batch of pixel values in [0, 255] (uint8, or float32 for perturbed images)
            to the model's input; default: float32 scaled to [0, 1].
        logits_layer: name of the layer whose output is taken as the logits, overriding the automatic detection.
    """

    def __init__(
        self,
        model: keras.Model,
        class_names: list[str] | tuple[str, ...] | None = None,
        preprocess: Preprocess | None = None,
        logits_layer: str | None = None,
    ) -> None:
        self.model = model
        self.preprocess: Preprocess = preprocess or default_preprocess
        self._logits_layer = logits_layer
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._output_shapes: dict[tuple[int, int], tuple[int, int]] = {}

        if not isinstance(model, keras.Model):
            raise ValueError(f"Unsupported model: expected a Keras 3 model, got {type(model).__name__}.")
        inputs = graph_of(model).inputs
        if len(inputs) != 1:
            raise ValueError(f"Unsupported model: it has {len(inputs)} inputs; a segmentation model takes one image.")
        input_shape = tuple(inputs[0].shape)
        if input_shape is None or len(input_shape) != 4 or input_shape[-1] not in (3, None):
            raise ValueError(f"Unsupported model: expected an image input (N, H, W, 3), got {input_shape}.")
        self.input_size: tuple[int, int] | None = (
            (int(input_shape[1]), int(input_shape[2])) if input_shape[1] and input_shape[2] else None
        )
        logits_op, self.logits_source = _detect_logits(model, logits_layer)
        self.conv_layers: list[str] = [
            info.name for info in leaf_layers(model) if isinstance(info.layer, CONV_LAYER_TYPES)
        ]

        self._logits_op = logits_op
        self._features = self._build_feature_model(logits_op)
        logits_shape = tuple(self._features.outputs[0].shape)
        if len(logits_shape) != 4:
            raise ValueError(
                f"Unsupported model: its output must be (N, H, W, C) per-pixel class scores; got shape {logits_shape}."
            )
        self.num_classes = int(logits_shape[-1])
        self.layer_shapes: dict[str, tuple[int | None, int | None, int]] = {
            name: tuple(t.shape[1:]) for name, t in zip(self.conv_layers, self._features.outputs[1:], strict=True)
        }
        if class_names is None:
            class_names = (
                ["background", "foreground"]
                if self.logits_source.binary
                else [f"class {i}" for i in range(self.num_classes)]
            )
        if len(class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(class_names)} names but the model predicts {self.num_classes} classes."
            )
        self.class_names: list[str] = [str(name) for name in class_names]
        self._score_fn = tf.function(self._score_and_input_gradient, reduce_retracing=True)
        self._forward_fn = tf.function(self._forward_scores, reduce_retracing=True)
        self._cam_fn = tf.function(self._score_and_layer_gradients, reduce_retracing=True)
        self._logits_fn = tf.function(lambda x: self._features(x, training=False)[0], reduce_retracing=True)
        self._map_fns: dict[str, Any] = {}

    def with_model(self, model: keras.Model) -> SegmentationAdapter:
        """A new adapter on another model of the same architecture (e.g. a clone with randomized weights), with the
        same class names, preprocess and logits choice."""
        return SegmentationAdapter(model, self.class_names, self.preprocess, self._logits_layer)

    # ----------------------------------------------------------------------------------------------- graph building
    def _features_for(self, size: tuple[int, int]) -> keras.Model:
        """The feature graph traced for a fixed input size (dynamic-size models), for models that need static shapes."""
        return self._build_feature_model(self._logits_op, input_shape=(size[0], size[1], 3))

    def _build_feature_model(self, logits_op: Any, input_shape: tuple | None = None) -> keras.Model:
        """One flat model: image -> [logits, every conv activation in conv_layers order]."""
        source = self.logits_source
        recorded: dict[str, Any] = {}
        conv_names = set(self.conv_layers)
        linear_copies: dict[int, LinearCopy] = {}

        def intercept(operation: Any, name: str, call: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
            if operation is logits_op and source.strip in ("softmax_layer", "sigmoid_layer"):
                outputs = args[0]
            elif operation is logits_op and source.strip == "activation":
                linear = linear_copies.setdefault(id(operation), LinearCopy(operation))
                outputs = linear(*args, **kwargs)
            else:
                outputs = call(*args, **kwargs)
            if name in conv_names:
                recorded[name] = outputs
            if operation is logits_op:
                recorded["__logits__"] = outputs
            return outputs

        shape = input_shape or tuple(graph_of(self.model).inputs[0].shape[1:])
        inputs = keras.Input(shape=shape, dtype="float32", name="adapted_image")
        trace_model(self.model, inputs, intercept)
        if "__logits__" not in recorded:
            raise ValueError(f"Unsupported model: the logits layer {source.layer!r} is not reached from the input.")
        logits = recorded["__logits__"]
        if len(logits.shape) == 4 and source.binary:
            if logits.shape[-1] != 1:
                raise ValueError(f"Unsupported model: a sigmoid output must have 1 channel, got {logits.shape[-1]}.")
            logits = keras.layers.Concatenate(name="binary_logits")([-logits, logits])
        return keras.Model(inputs, [logits] + [recorded[name] for name in self.conv_layers], name="adapted_features")

    def region_score_model(self, region: np.ndarray, target: int, size: tuple[int, int]) -> keras.Model:
        """A flat Keras model image -> S_target(image; region), the region and class held as frozen linear layers.

        For graph-walking explainers (shap.DeepExplainer, other CAM libraries) that need a single-input model made of
        standard layers. It extends the adapted feature graph (same layer objects and names, no nesting), so only two
        small layers are built per call.
        """
        region = self.validate_region(region, size)
        target = self.validate_target(target)
        region_out = resample_region(region, self.output_shape_for(size)).astype(np.float32)
        features = self._features if self.input_size is not None else self._features_for(size)
        pick = keras.layers.Conv2D(1, 1, use_bias=False, trainable=False, name="target_class")
        class_logit = keras.layers.Flatten(name="flatten")(pick(features.outputs[0]))
        mean = keras.layers.Dense(1, use_bias=False, trainable=False, name="region_mean")
        score = mean(class_logit)
        pick.set_weights([np.eye(self.num_classes, dtype=np.float32)[target].reshape(1, 1, -1, 1)])
        mean.set_weights([(region_out / region_out.sum()).reshape(-1, 1)])
        return keras.Model(features.inputs, score, name="adapted_region_score")

    # ------------------------------------------------------------------------------------------------ traced steps
    def _forward_scores(self, x: tf.Tensor, region: tf.Tensor, onehot: tf.Tensor) -> tf.Tensor:
        logits = self._features(x, training=False)[0]
        return _mean_logit(logits, region[None], onehot[None])

    def _score_and_input_gradient(
        self, x: tf.Tensor, region: tf.Tensor, onehot: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            scores = self._forward_scores(x, region, onehot)
        return scores, tape.gradient(scores, x)

    def _score_and_layer_gradients(
        self, x: tf.Tensor, region: tf.Tensor, onehot: tf.Tensor, indices: tuple[int, ...] | None = None
    ) -> tuple:
        """S, and the activations and gradients of the conv layers at `indices` (all by default); the backward pass
        goes no deeper than the shallowest of them."""
        with tf.GradientTape() as tape:
            outputs = self._features(x, training=False)
            scores = _mean_logit(outputs[0], region[None], onehot[None])
        activations = list(outputs[1:]) if indices is None else [outputs[1 + i] for i in indices]
        return scores, activations, tape.gradient(scores, activations)

    # ------------------------------------------------------------------------------------------------- validation
    def validate_image(self, image: np.ndarray) -> np.ndarray:
        """Check one (H, W, 3) uint8 image against the model; return it as an array."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"The image must be an (H, W, 3) RGB array; got shape {image.shape}.")
        if image.dtype != np.uint8:
            raise ValueError(f"The image must be uint8 pixel values (0-255); got dtype {image.dtype}.")
        self._check_size(image.shape[:2])
        return image

    def _check_size(self, size: tuple[int, int]) -> None:
        if self.input_size is not None and tuple(size) != self.input_size:
            raise ValueError(
                f"The image is {size[0]}x{size[1]} but the model takes {self.input_size[0]}x{self.input_size[1]}; "
                "resize it first."
            )

    def validate_region(self, region: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Check a boolean (H, W) region for an image of `size`; return it as a bool array."""
        region = np.asarray(region)
        if region.shape != tuple(size):
            raise ValueError(f"The region mask is {region.shape} but the image is {tuple(size)}; they must match.")
        if region.dtype != bool:
            if not np.isin(region, (0, 1)).all():
                raise ValueError("The region mask must be boolean (or 0/1).")
            region = region.astype(bool)
        if not region.any():
            raise ValueError("The region is empty: select at least one pixel of the image.")
        return region

    def validate_target(self, target: int) -> int:
        """Check a target class index."""
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
            raise ValueError(f"The target class must be an integer index; got {target!r}.")
        if not 0 <= int(target) < self.num_classes:
            raise ValueError(f"Target class {target} is out of range: the model has classes 0-{self.num_classes - 1}.")
        return int(target)

    # ------------------------------------------------------------------------------------------------ public API
    def clear_cache(self) -> None:
        """Forget the kept per-layer passes (benchmarks use this to time real passes)."""
        with self._lock:
            self._cache.clear()

    def output_shape_for(self, size: tuple[int, int]) -> tuple[int, int]:
        """Spatial size (h, w) of the logits for an input image of `size` (H, W)."""
        size = (int(size[0]), int(size[1]))
        if size not in self._output_shapes:
            shape = self._features.compute_output_shape((1, size[0], size[1], 3))[0]
            if shape[1] is None or shape[2] is None:
                shape = self._logits_fn(tf.zeros((1, size[0], size[1], 3), tf.float32)).shape
            self._output_shapes[size] = (int(shape[1]), int(shape[2]))
        return self._output_shapes[size]

    def prepare(self, images: np.ndarray, region: np.ndarray, target: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Validate and convert a batch, a region and a target to the traced functions' inputs."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"Images must be an (N, H, W, 3) batch; got shape {images.shape}.")
        self._check_size(images.shape[1:3])
        region = self.validate_region(region, images.shape[1:3])
        target = self.validate_target(target)
        region_out = resample_region(region, self.output_shape_for(images.shape[1:3]))
        x = tf.convert_to_tensor(self.preprocess(images), dtype=tf.float32)
        onehot = tf.convert_to_tensor(np.eye(self.num_classes, dtype=np.float32)[target])
        return x, tf.convert_to_tensor(region_out, dtype=tf.float32), onehot

    def model_input(self, images: np.ndarray) -> np.ndarray:
        """The model's input for a batch of pixel values (the preprocess applied), as float32."""
        return np.asarray(self.preprocess(np.asarray(images)), dtype=np.float32)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """(H, W, C) float32 class probabilities at image resolution for one (H, W, 3) uint8 image."""
        image = self.validate_image(image)
        x = tf.convert_to_tensor(self.preprocess(image[None]), dtype=tf.float32)
        logits = self._logits_fn(x)
        if self.logits_source.binary:
            foreground = tf.sigmoid(logits[..., 1:])
            probabilities = tf.concat([1.0 - foreground, foreground], axis=-1)
        else:
            probabilities = tf.nn.softmax(logits, axis=-1)
        if tuple(probabilities.shape[1:3]) != image.shape[:2]:
            probabilities = tf.image.resize(probabilities, image.shape[:2], method="bilinear")
        return probabilities[0].numpy().astype(np.float32)

    def score(self, images: np.ndarray, region: np.ndarray, target: int, batch_size: int = 64) -> np.ndarray:
        """S_target(x; region) for each image of an (N, H, W, 3) batch of pixel values; returns (N,) float64."""
        scores = []
        for start in range(0, max(len(images), 1), batch_size):
            x, region_out, onehot = self.prepare(images[start : start + batch_size], region, target)
            scores.append(self._forward_fn(x, region_out, onehot).numpy())
        return np.concatenate(scores).astype(np.float64)

    def input_gradients(
        self, inputs: np.ndarray, region: np.ndarray, target: int, batch_size: int = 32
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores (N,) and dS/d(model input) (N, H, W, 3) for a batch of *model inputs* (already preprocessed)."""
        inputs = np.asarray(inputs, dtype=np.float32)
        region_out = resample_region(
            self.validate_region(region, inputs.shape[1:3]), self.output_shape_for(inputs.shape[1:3])
        )
        onehot = tf.one_hot(self.validate_target(target), self.num_classes, dtype=tf.float32)
        region_t = tf.convert_to_tensor(region_out, dtype=tf.float32)
        scores, grads = [], []
        for start in range(0, len(inputs), batch_size):
            s, g = self._score_fn(tf.convert_to_tensor(inputs[start : start + batch_size]), region_t, onehot)
            scores.append(s.numpy())
            grads.append(g.numpy())
        return np.concatenate(scores).astype(np.float64), np.concatenate(grads)

    def image_gradient(
        self, image: np.ndarray, region: np.ndarray, target: int
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """S(x), the model input x (H, W, 3) and dS/dx (H, W, 3) for one image; kept like `layer_maps`, so methods
        built on the same gradient (saliency, gradient x input) share one pass."""
        image = self.validate_image(image)
        key = ("input-gradient", _digest(image), _digest(np.asarray(region, dtype=bool)), self.validate_target(target))
        if (kept := self._recall(key)) is not None:
            return kept
        x = self.model_input(image[None])
        scores, grads = self.input_gradients(x, region, target)
        result = (float(scores[0]), _frozen(x[0]), _frozen(grads[0]))
        self._remember(key, result)
        return result

    def _recall(self, key: tuple) -> Any:
        """A kept result (marked most recently used), or None."""
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return None

    def _remember(self, key: tuple, result: Any) -> None:
        with self._lock:
            self._cache[key] = result
            while len(self._cache) > 8:
                self._cache.popitem(last=False)

    def layer_gradients(
        self, image: np.ndarray, region: np.ndarray, target: int
    ) -> tuple[float, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """S(x) and {conv layer: (activation (h, w, k), dS/dactivation (h, w, k))} for every conv layer, ONE pass.

        The last few results are kept (keyed by image, region and target), so the CAM variants asked for together
        share one forward+backward pass.
        """
        image = self.validate_image(image)
        key = (
            _digest(image),
            _digest(np.asarray(region, dtype=bool)),
            int(target) if not isinstance(target, bool) else target,
        )
        if (kept := self._recall(key)) is not None:
            return kept
        x, region_out, onehot = self.prepare(image[None], region, target)
        scores, activations, grads = self._cam_fn(x, region_out, onehot)
        pairs = zip(self.conv_layers, activations, grads, strict=True)
        result = (float(scores.numpy()[0]), {n: (_frozen(a.numpy()[0]), _frozen(g.numpy()[0])) for n, a, g in pairs})
        self._remember(key, result)
        return result

    def layer_maps(
        self,
        image: np.ndarray,
        region: np.ndarray,
        target: int,
        combiners: dict[str, Callable[[tf.Tensor, tf.Tensor], tf.Tensor]],
        layers: Sequence[str] | None = None,
    ) -> tuple[float, dict[str, LayerMaps]]:
        """S(x) and {combiner name: {conv layer: (H, W) map}} from ONE traced forward+backward pass.

        Each combiner maps one layer's activation and gradient, (h, w, k) tensors, to an (h, w) tensor. The combiners
        run for every layer in one XLA-compiled function (fused: a few memory passes instead of one per op) right
        after the backward pass. Maps are kept at each layer's own resolution and upsampled to the image (bilinear,
        half-pixel centres) when first read, so a layer that is never shown costs no resize. The last few results
        are kept, so methods asked for together share one pass.

        `layers`: only these conv layers (default: all). The backward pass then stops at the shallowest of them, so
        one layer near the output costs little more than the forward pass (what single-layer CAM tools compute).
        """
        image = self.validate_image(image)
        names = tuple(combiners)
        chosen = tuple(self.conv_layers) if layers is None else tuple(dict.fromkeys(layers))
        unknown = [layer for layer in chosen if layer not in self.layer_shapes]
        if unknown or not chosen:
            choose = f"choose from {self.conv_layers}"
            raise ValueError(f"{unknown or 'No layer'} is not a conv layer of the model; {choose}.")
        indices = tuple(self.conv_layers.index(layer) for layer in chosen)
        key = (names, indices, _digest(image), _digest(np.asarray(region, dtype=bool)), self.validate_target(target))
        if (kept := self._recall(key)) is not None:
            return kept
        x, region_out, onehot = self.prepare(image[None], region, target)
        with self._lock:  # one traced step per combiner set, layer set and image size, called as a concrete function
            step_key = (names, indices, tuple(x.shape), tuple(region_out.shape))
            if step_key not in self._map_fns:
                self._map_fns[step_key] = self._maps_step(list(combiners.values()), indices).get_concrete_function(
                    x, region_out, onehot
                )
            step = self._map_fns[step_key]
        scores, maps = step(x, region_out, onehot)
        native = [_frozen(layer_maps.numpy()) for layer_maps in maps]  # (h, w, combiners) per chosen layer
        size = image.shape[:2]
        result = (
            float(scores.numpy()[0]),
            {
                name: LayerMaps({layer: native[i][..., j] for i, layer in enumerate(chosen)}, size)
                for j, name in enumerate(names)
            },
        )
        self._remember(key, result)
        return result

    def _maps_step(
        self, combiners: list[Callable[[tf.Tensor, tf.Tensor], tf.Tensor]], indices: tuple[int, ...]
    ) -> Callable[..., Any]:
        @tf.function(jit_compile=True)
        def combine_all(activations: list[tf.Tensor], grads: list[tf.Tensor]) -> list[tf.Tensor]:
            return [
                tf.stack([combine(activation[0], grad[0]) for combine in combiners], axis=-1)
                for activation, grad in zip(activations, grads, strict=True)
            ]

        @tf.function(reduce_retracing=True)
        def step(x: tf.Tensor, region: tf.Tensor, onehot: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
            scores, activations, grads = self._score_and_layer_gradients(x, region, onehot, indices)
            return scores, combine_all(activations, grads)

        return step


class LayerMaps(Mapping[str, np.ndarray]):
    """{conv layer: (H, W) map}, stored at each layer's resolution and upsampled (bilinear, half-pixel centres, as
    tf.image.resize) to image size on first access; upsampled maps are kept and read-only."""

    def __init__(self, native: dict[str, np.ndarray], size: tuple[int, int]) -> None:
        self._native = native
        self._size = (int(size[0]), int(size[1]))
        self._upsampled: dict[str, np.ndarray] = {}

    def __getitem__(self, layer: str) -> np.ndarray:
        if layer not in self._upsampled:
            native = self._native[layer]
            if native.shape == self._size:
                upsampled = np.array(native, dtype=np.float32)
            else:
                upsampled = tf.image.resize(native[None, ..., None], self._size, method="bilinear")[0, ..., 0].numpy()
            self._upsampled[layer] = _frozen(upsampled)
        return self._upsampled[layer]

    def __iter__(self) -> Iterator[str]:
        return iter(self._native)

    def __len__(self) -> int:
        return len(self._native)

    def native(self, layer: str) -> np.ndarray:
        """The map at the layer's own resolution (h, w)."""
        return self._native[layer]


def _mean_logit(logits: Any, region: Any, onehot: Any) -> Any:
    """S = sum(z * region * onehot) / sum(region), batched: logits (N,h,w,C), region (N|1,h,w), onehot (N|1,C)."""
    region = keras.ops.cast(region, logits.dtype)
    class_logit = keras.ops.sum(logits * keras.ops.expand_dims(keras.ops.expand_dims(onehot, 1), 1), axis=-1)
    total = keras.ops.sum(class_logit * region, axis=(1, 2))
    return total / keras.ops.maximum(keras.ops.sum(region, axis=(1, 2)), 1.0)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _digest(array: np.ndarray) -> str:
    return hashlib.blake2b(
        np.ascontiguousarray(array).tobytes() + str(array.shape).encode(), digest_size=16
    ).hexdigest()
