"""Adapt a segmentation network into a classifier-like model with a single score.

A segmentation model maps an image x to per-pixel class logits z(x) (H' x W' x C). For a user-chosen region M (a
boolean H x W mask) and target class c, the adapted score is the mean class logit over the region,

    S_c(x; M) = (1 / |M'|) * sum_{p in M'} z_c(x)[p],      M' = M resampled to the output grid (nearest),

which equals Seg-Grad-CAM's score (Vinogradova, Dibrov & Myers, "Towards Interpretable Semantic Segmentation via
Gradient-weighted Class Activation Mapping", AAAI 2020: the sum of logits over the region) up to the factor 1/|M'|.
Any classification attribution method can then explain S.

`SegmentationAdapter` is framework-neutral: it validates and preprocesses images, resamples the region to the logits
grid, defines the score (a `ScoreSpec`: region mask and class weights) and keeps the caches. The framework work
(logits, gradients, every layer's CAMs in one pass, the sanity check's clones) is done by a model backend
(explainers.backends): Keras 3, PyTorch, or any object implementing `ModelBackend` (e.g. onnxruntime). Each framework
is imported only when a model of that framework is given. Logits are found automatically by each backend: a final
softmax is stripped; a single-channel sigmoid model becomes two classes, background -z and foreground z.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from explainers import memory
from explainers.backends import backend_for
from explainers.backends.base import Combiner, LayerInfo, ModelBackend, NativeScoreModel, ScoreSpec
from explainers.keys import content_key
from explainers.layer_choice import default_cam_layer
from explainers.question import Question
from explainers.resize import bilinear_resize

log = logging.getLogger(__name__)

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


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


class SegmentationAdapter:
    """A segmentation model seen as a classifier whose single score is the mean class logit over a region.

    Args:
        model: a Keras 3 functional or Sequential model mapping (N, H, W, 3) to (N, H', W', C) (nested models, dynamic
            input sizes and coarse outputs are supported); a `torch.nn.Module` mapping (N, 3, H, W) to logits
            (N, C, H', W') (or a dict / tuple holding them, or one sigmoid channel); or a built `ModelBackend`.
        class_names: one name per class; defaults to "class 0", ... (or background/foreground for sigmoid models).
        preprocess: maps an (N, H, W, 3) batch of pixel values in [0, 255] (uint8, or float32 for perturbed images)
            to the model's input, channels last (a torch backend transposes it); default: float32 scaled to [0, 1].
        logits_layer: name of the layer whose output is taken as the logits, overriding the automatic detection.
    """

    def __init__(
        self,
        model: Any,
        class_names: list[str] | tuple[str, ...] | None = None,
        preprocess: Preprocess | None = None,
        logits_layer: str | None = None,
    ) -> None:
        self.backend: ModelBackend = backend_for(model, logits_layer)
        self.preprocess: Preprocess = preprocess or default_preprocess
        self._logits_layer = logits_layer
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        # Bytes a batched method may use for its images at once (explainers.memory); the app sets --memory-budget.
        self.memory_budget: int = memory.default_budget()
        self._activation_bytes: dict[tuple[int, int], int | None] = {}
        # Measured seconds per image of the model calls made so far, by kind and size (explainers.estimate).
        self.throughput = memory.Throughput()
        backend = self.backend
        self.model = getattr(backend, "model", model)
        self.framework: str = backend.framework
        self.input_size: tuple[int, int] | None = backend.input_size
        self.num_classes: int = int(backend.num_classes)
        self.layers: list[LayerInfo] = list(backend.layers)
        self.conv_layers: list[str] = [layer.name for layer in self.layers]
        # The CAM methods' default layer (explainers.layer_choice: the last one before the classifier head that mixes
        # spatial context); None without CAM layers.
        self.default_layer: str | None = default_cam_layer(self.layers, self.num_classes) if self.layers else None
        self.layer_shapes: dict[str, tuple[int | None, ...]] = {
            layer.name: tuple(layer.shape) if layer.shape is not None else (None, None, layer.channels)
            for layer in self.layers
        }
        if class_names is None:
            class_names = (
                ["background", "foreground"] if backend.binary else [f"class {i}" for i in range(self.num_classes)]
            )
        if len(class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(class_names)} names but the model predicts {self.num_classes} classes."
            )
        self.class_names: list[str] = [str(name) for name in class_names]

    @property
    def gradients(self) -> bool:
        """False for a black-box backend: the gradient methods cannot run (see `why_no_gradients`)."""
        return bool(self.backend.gradients)

    @property
    def why_no_gradients(self) -> str | None:
        """Why the backend has no gradients (None when it has them)."""
        return None if self.backend.gradients else (self.backend.why_no_gradients or "the model gives no gradients")

    @property
    def logits_source(self) -> Any:
        """How the Keras backend reaches the logits (layer, what it strips, binary); None for other backends."""
        return getattr(self.backend, "logits_source", None)

    def with_model(self, model: Any) -> SegmentationAdapter:
        """A new adapter on another model of the same architecture, with the same class names, preprocess and
        logits choice and memory budget."""
        return self._alike(SegmentationAdapter(model, self.class_names, self.preprocess, self._logits_layer))

    def with_backend(self, backend: ModelBackend) -> SegmentationAdapter:
        """A new adapter on another backend (e.g. the sanity check's randomized clone), same names, preprocess and
        memory budget."""
        return self._alike(SegmentationAdapter(backend, self.class_names, self.preprocess))

    def _alike(self, other: SegmentationAdapter) -> SegmentationAdapter:
        other.memory_budget = self.memory_budget
        return other

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
        return self.backend.output_shape_for((int(size[0]), int(size[1])))

    def question(
        self,
        region: np.ndarray | Question,
        target: int | None = None,
        contrast: int | None = None,
        size: tuple[int, int] | None = None,
    ) -> Question:
        """The `Question` (region, target, contrast) checked against this model (and an image of `size`).

        Every method of the adapter that takes `region, target` also takes a `Question` in place of `region` (then
        without `target` and `contrast`); this is where both forms become one.
        """
        if isinstance(region, Question):
            if target is not None or contrast is not None:
                raise ValueError("Give either a Question or a region with its target (and contrast), not both.")
            question = region
        else:
            if target is None:
                raise ValueError("Choose a target class to explain.")
            if size is not None:
                region = self.validate_region(region, size)
            question = Question(region, self.validate_target(target), contrast)
        return question.check(self.num_classes, size)

    def score_spec(
        self,
        region: np.ndarray | Question,
        target: int | None = None,
        size: tuple[int, int] | None = None,
        *,
        contrast: int | None = None,
    ) -> ScoreSpec:
        """The question for images of `size` on the backend's logits grid: the region resampled to it and the class
        weights, one-hot(target), minus one-hot(contrast) when a contrast is given."""
        if size is None:
            raise ValueError("score_spec needs the image size (H, W).")
        question = self.question(region, target, contrast, size)
        region_out = resample_region(question.region, self.output_shape_for(size)).astype(np.float32)
        return ScoreSpec(region=region_out, weights=question.weights(self.num_classes))

    def model_input(self, images: np.ndarray) -> np.ndarray:
        """The model's input for a batch of pixel values (the preprocess applied), as float32."""
        return np.asarray(self.preprocess(np.asarray(images)), dtype=np.float32)

    def logits(self, image: np.ndarray) -> np.ndarray:
        """(h, w, C) float32 logits on the model's output grid for one (H, W, 3) uint8 image."""
        image = self.validate_image(image)
        with self.throughput.timing("forward", image.shape[:2], 1):
            return np.asarray(self.backend.logits(self.model_input(image[None]))[0], dtype=np.float32)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """(H, W, C) float32 class probabilities at image resolution for one (H, W, 3) uint8 image."""
        logits = self.logits(image)
        if self.backend.binary:
            foreground = _sigmoid(logits[..., 1:])
            probabilities = np.concatenate([1.0 - foreground, foreground], axis=-1)
        else:
            probabilities = _softmax(logits)
        if probabilities.shape[:2] != image.shape[:2]:
            probabilities = bilinear_resize(probabilities, image.shape[:2])
        return probabilities.astype(np.float32)

    def _check_batch(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"Images must be an (N, H, W, 3) batch; got shape {images.shape}.")
        self._check_size(images.shape[1:3])
        return images

    def score(
        self,
        images: np.ndarray,
        region: np.ndarray | Question,
        target: int | None = None,
        batch_size: int | None = None,
        *,
        contrast: int | None = None,
    ) -> np.ndarray:
        """S(x) for each image of an (N, H, W, 3) batch of pixel values; returns (N,) float64.

        S is the mean over the region of the target's logit, or with a `contrast` class c' of z_target - z_c'. The
        images go through the model `batch_size` at a time (None: as many as the memory budget allows).
        """
        images = self._check_batch(images)
        spec = self.score_spec(region, target, images.shape[1:3], contrast=contrast)
        batch_size = batch_size or self.batch_size("forward", images.shape[1:3], len(images))
        with self.throughput.timing("forward", images.shape[1:3], len(images)):
            scores = [
                self.backend.scores(self.model_input(images[start : start + batch_size]), spec)
                for start in range(0, max(len(images), 1), batch_size)
            ]
        return np.concatenate(scores).astype(np.float64)

    def _require_gradients(self) -> None:
        if not self.backend.gradients:
            from explainers.backends.base import GradientsUnavailable

            raise GradientsUnavailable(f"This model gives no gradients: {self.why_no_gradients}")

    def input_gradients(
        self,
        inputs: np.ndarray,
        region: np.ndarray | Question,
        target: int | None = None,
        batch_size: int | None = None,
        *,
        contrast: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores (N,) and dS/d(model input) (N, H, W, 3) for a batch of *model inputs* (already preprocessed),
        `batch_size` at a time (None: as many as the memory budget allows)."""
        self._require_gradients()
        inputs = np.asarray(inputs, dtype=np.float32)
        spec = self.score_spec(region, target, inputs.shape[1:3], contrast=contrast)
        batch_size = batch_size or self.batch_size("gradient", inputs.shape[1:3], len(inputs))
        scores, grads = [], []
        with self.throughput.timing("gradient", inputs.shape[1:3], len(inputs)):
            for start in range(0, len(inputs), batch_size):
                s, g = self.backend.input_gradients(inputs[start : start + batch_size], spec)
                scores.append(np.asarray(s))
                grads.append(np.asarray(g, dtype=np.float32))
        return np.concatenate(scores).astype(np.float64), np.concatenate(grads)

    def image_gradient(
        self,
        image: np.ndarray,
        region: np.ndarray | Question,
        target: int | None = None,
        *,
        contrast: int | None = None,
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """S(x), the model input x (H, W, 3) and dS/dx (H, W, 3) for one image; kept like `layer_maps` (keyed by the
        image and the question), so methods built on the same gradient (saliency, gradient x input) share one pass."""
        image = self.validate_image(image)
        question = self.question(region, target, contrast, image.shape[:2])
        key = ("input-gradient", content_key(image), question.key)
        if (kept := self._recall(key)) is not None:
            return kept
        x = self.model_input(image[None])
        scores, grads = self.input_gradients(x, question)
        result = (float(scores[0]), _frozen(x[0]), _frozen(grads[0]))
        self._remember(key, result)
        return result

    def activation_bytes(self, size: tuple[int, int]) -> int | None:
        """Bytes of the intermediate tensors one image of `size` (H, W) creates in the model (as the backend's
        framework counts them, explainers.memory), measured once per size; None where the backend cannot tell."""
        size = (int(size[0]), int(size[1]))
        if size not in self._activation_bytes:
            counter = getattr(self.backend, "activation_bytes", None)
            try:
                counted = int(counter(size)) if counter is not None else None
            except Exception:  # an estimate only: a model the counter cannot trace falls back to fixed batches
                log.warning("could not count the activation memory of %s at %s", self.framework, size, exc_info=True)
                counted = None
            self._activation_bytes[size] = counted or None
        return self._activation_bytes[size]

    def batch_size(self, kind: str, size: tuple[int, int], wanted: int) -> int:
        """How many of `wanted` images of `size` to run at once: "gradient" (forward + backward) or "forward"
        batches, within `memory_budget` (explainers.memory.batch_size_for)."""
        if wanted <= 1:  # one image runs whatever the budget: no need to count (no tracing on the request path)
            return 1
        fallback = memory.FALLBACK_BATCH[kind]
        return memory.batch_size_for(self.activation_bytes(size), kind, self.memory_budget, wanted, fallback)

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

    def _chosen_layers(self, layers: Sequence[str] | None) -> tuple[str, ...]:
        chosen = tuple(self.conv_layers) if layers is None else tuple(dict.fromkeys(layers))
        unknown = [layer for layer in chosen if layer not in self.layer_shapes]
        if unknown or not chosen:
            raise ValueError(self.unknown_layer_message(unknown))
        return chosen

    def unknown_layer_message(self, unknown: Sequence[str]) -> str:
        """Why `unknown` are not CAM layers: the choices, and for a conv listed as its rectified output (Keras: the
        activation layer after conv -> BN) which name to ask for."""
        listed_as = getattr(self.backend, "listed_as", {})
        hints = [f"{name!r} is listed as its rectified output {listed_as[name]!r}"
                 for name in unknown if name in listed_as]  # fmt: skip
        what = ", ".join(repr(name) for name in unknown) or "No layer"
        hint = f" ({'; '.join(hints)})" if hints else ""
        return f"{what} is not a conv layer of the model{hint}; choose one of {self.conv_layers}."

    def layer_gradients(
        self,
        image: np.ndarray,
        region: np.ndarray | Question,
        target: int | None = None,
        *,
        contrast: int | None = None,
    ) -> tuple[float, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """S(x) and {conv layer: (activation (h, w, k), dS/dactivation (h, w, k))} for every conv layer, ONE pass.

        The raw tensors are large (the CAM methods use `layer_maps`, which keeps only the maps); the last few results
        are kept, keyed by the image and the question.
        """
        self._require_gradients()
        image = self.validate_image(image)
        question = self.question(region, target, contrast, image.shape[:2])
        key = ("layer-gradients", content_key(image), question.key)
        if (kept := self._recall(key)) is not None:
            return kept
        spec = self.score_spec(question, size=image.shape[:2])
        score, pairs = self.backend.layer_gradients(self.model_input(image[None]), spec, self.conv_layers)
        layers = zip(self.conv_layers, pairs, strict=True)
        result = (float(score), {name: (_frozen(np.asarray(a)), _frozen(np.asarray(g))) for name, (a, g) in layers})
        self._remember(key, result)
        return result

    def layer_maps(
        self,
        image: np.ndarray,
        region: np.ndarray | Question,
        target: int | None = None,
        combiners: dict[str, Combiner] | None = None,
        layers: Sequence[str] | None = None,
        *,
        contrast: int | None = None,
    ) -> tuple[float, dict[str, LayerMaps]]:
        """S(x) and {combiner name: {conv layer: (H, W) map}} from ONE forward+backward pass of the backend.

        Each combiner, `combine(ops, activation, gradient)`, maps one layer's (h, w, k) activation and gradient to an
        (h, w) map in the backend's own tensors (explainers.cam); the backend runs every combiner for every layer right
        after its backward pass (Keras: in one XLA-compiled function) and returns only the small maps. Maps are kept
        at each layer's own resolution and upsampled to the image (bilinear, half-pixel centres) when first read, so
        a layer that is never shown costs no resize. The last few results are kept, so methods asked for together
        share one pass. With every conv layer chosen (the default) the same pass also gives dS/dx (the backend's
        `fast_pass`), kept for `image_gradient`: saliency and gradient x input then cost no second pass.

        `layers`: only these conv layers (default: all). The backward pass then stops at the shallowest of them, so
        one layer near the output costs little more than the forward pass (what single-layer CAM tools compute).
        """
        self._require_gradients()
        if not combiners:
            raise ValueError("layer_maps needs at least one CAM combiner.")
        image = self.validate_image(image)
        question = self.question(region, target, contrast, image.shape[:2])
        names = tuple(combiners)
        chosen = self._chosen_layers(layers)
        key = (names, chosen, content_key(image), question.key)
        if (kept := self._recall(key)) is not None:
            return kept
        spec = self.score_spec(question, size=image.shape[:2])
        x = self.model_input(image[None])
        if chosen == tuple(self.conv_layers):  # the backward pass reaches the input anyway: dS/dx on the same tape
            with self.throughput.timing("gradient", image.shape[:2], 1):  # one forward+backward: the time estimates
                score, maps, grad = self.backend.fast_pass(x, spec, list(combiners.values()), chosen)
            gradient = (float(score), _frozen(x[0]), _frozen(np.asarray(grad, dtype=np.float32)))
            self._remember(("input-gradient", content_key(image), question.key), gradient)
        else:
            score, maps = self.backend.layer_maps(x, spec, list(combiners.values()), chosen)
        native = [_frozen(np.asarray(layer_maps, dtype=np.float32)) for layer_maps in maps]  # (h, w, combiners)
        size = image.shape[:2]
        result = (
            float(score),
            {
                name: LayerMaps({layer: native[i][..., j] for i, layer in enumerate(chosen)}, size)
                for j, name in enumerate(names)
            },
        )
        self._remember(key, result)
        return result

    def layer_maps_many(
        self,
        image: np.ndarray,
        questions: Sequence[Question],
        combiners: dict[str, Combiner],
        layers: Sequence[str] | None = None,
    ) -> list[tuple[float, dict[str, LayerMaps]]]:
        """`layer_maps` for several questions about one image, in order, sharing ONE forward pass where the backend
        has `layer_maps_shared` (Keras, torch); otherwise one `layer_maps` per question. Each result is kept under
        the key `layer_maps` uses, so asking one of these questions afterwards is a lookup."""
        self._require_gradients()
        if not combiners:
            raise ValueError("layer_maps needs at least one CAM combiner.")
        image = self.validate_image(image)
        questions = [self.question(question, size=image.shape[:2]) for question in questions]
        shared = getattr(self.backend, "layer_maps_shared", None)
        if shared is None or len(questions) < 2:
            return [self.layer_maps(image, question, combiners=combiners, layers=layers) for question in questions]
        names, chosen, size = tuple(combiners), self._chosen_layers(layers), image.shape[:2]
        specs = [self.score_spec(question, size=size) for question in questions]
        scores, maps = shared(self.model_input(image[None]), specs, list(combiners.values()), chosen)
        results = []
        for question, score, per_question in zip(questions, scores, maps, strict=True):
            native = [_frozen(np.asarray(layer_maps, dtype=np.float32)) for layer_maps in per_question]
            result = (
                float(score),
                {
                    name: LayerMaps({layer: native[i][..., j] for i, layer in enumerate(chosen)}, size)
                    for j, name in enumerate(names)
                },
            )
            self._remember((names, chosen, content_key(image), question.key), result)
            results.append(result)
        return results

    def native_score_model(
        self,
        region: np.ndarray | Question,
        target: int | None = None,
        size: tuple[int, int] | None = None,
        *,
        contrast: int | None = None,
    ) -> NativeScoreModel:
        """The region score as a model of the backend's framework, with its input/output conversions (DeepSHAP)."""
        self._require_gradients()
        spec = self.score_spec(region, target, size, contrast=contrast)
        return self.backend.score_model(spec, (int(size[0]), int(size[1])))

    def region_score_model(
        self,
        region: np.ndarray | Question,
        target: int | None = None,
        size: tuple[int, int] | None = None,
        *,
        contrast: int | None = None,
    ) -> Any:
        """The native model image -> S(image) (a flat keras.Model for Keras, an nn.Module for torch), for
        graph-walking explainers (shap.DeepExplainer, other CAM libraries)."""
        return self.native_score_model(region, target, size, contrast=contrast).model


class LayerMaps(Mapping[str, np.ndarray]):
    """{conv layer: (H, W) map}, stored at each layer's resolution and upsampled (bilinear, half-pixel centres, as
    tf.image.resize and torch's interpolate) to image size on first access; upsampled maps are kept and read-only."""

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
                upsampled = bilinear_resize(native, self._size)
            self._upsampled[layer] = _frozen(upsampled)
        return self._upsampled[layer]

    def __iter__(self) -> Iterator[str]:
        return iter(self._native)

    def __len__(self) -> int:
        return len(self._native)

    def native(self, layer: str) -> np.ndarray:
        """The map at the layer's own resolution (h, w)."""
        return self._native[layer]


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array
