"""Re-run a Keras 3 model's layer graph to reach tensors the model does not output.

A segmentation model usually outputs probabilities, and it never outputs its inner convolutional activations, yet the
explainers need both the pre-softmax logits and every conv layer's activation. ``trace_model`` replays the model's
functional graph on new inputs, operation by operation, descending into nested sub-models, and lets the caller
intercept each operation (record its output, or swap it out). Replayed on a symbolic ``keras.Input`` this yields one
flat multi-output model, which sidesteps Keras 3's "Output ... is not connected to inputs" error that a direct
``keras.Model(outer.inputs, inner_layer.output)`` raises for nested models.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

CONV_LAYER_TYPES: tuple[type, ...] = (
    keras.layers.Conv2D,
    keras.layers.Conv2DTranspose,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)

# An interceptor gets (operation, qualified name, call) and returns the operation's outputs; `call(*args, **kwargs)`
# runs the original operation.
Interceptor = Callable[[Any, str, Callable[..., Any], tuple, dict], Any]


def graph_of(model: keras.Model) -> Any:
    """Return the Functional graph behind `model`, or raise ValueError if it has none (subclassed model)."""
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:
            raise ValueError(
                "Unsupported model: this Sequential model has not been built with an input shape, so its layer graph "
                "is unknown. Build it (e.g. model.build((None, H, W, 3))) or give it a keras.Input first."
            )
        return graph
    if hasattr(model, "_run_through_graph") and hasattr(model, "_nodes_by_depth"):
        return model
    raise ValueError(
        f"Unsupported model: {type(model).__name__} is a subclassed Keras model whose layer graph cannot be read. "
        "Wrap it as a functional model (keras.Model(inputs, outputs)) so its conv layers and logits can be reached."
    )


def is_graph_model(operation: Any) -> bool:
    """True for a nested functional or Sequential model whose graph can be replayed."""
    if not isinstance(operation, keras.Model):
        return False
    try:
        graph_of(operation)
    except ValueError:
        return False
    return True


def trace_model(model: keras.Model, inputs: Any, intercept: Interceptor, prefix: str = "") -> Any:
    """Replay `model` on `inputs`, calling `intercept` for every leaf operation; nested models are replayed inline.

    Names are qualified with the nested models' names ("encoder/conv1"), so they are unique across nesting levels.
    Keras only asks layer names to be unique within one model, so two nested models may each hold a "conv1"; in the
    flat replay such a second, different layer is called through an `Alias` with a fresh name, or the flat model
    could not be built ("The name ... is used 2 times in the model").
    """
    return _trace(model, inputs, intercept, prefix, _NameBook(model))


class _NameBook:
    """The operation names a flat replay has used, so that no two different operations share one."""

    def __init__(self, model: keras.Model) -> None:
        self.taken: set[str] = {info.layer.name for info in leaf_layers(model)}
        self.owner: dict[str, int] = {}
        self.aliases: dict[int, Alias] = {}

    def callable_for(self, operation: Any, qualified: str) -> Any:
        """The operation itself, or (when its name is already used by another operation) an alias of it."""
        owner = self.owner.setdefault(operation.name, id(operation))
        if owner == id(operation):
            return operation
        if id(operation) not in self.aliases:
            base = qualified.replace("/", "__")
            name, k = base, 1
            while name in self.taken:
                k += 1
                name = f"{base}_{k}"
            self.taken.add(name)
            self.aliases[id(operation)] = Alias(operation, name=name)
        return self.aliases[id(operation)]


def _trace(model: keras.Model, inputs: Any, intercept: Interceptor, prefix: str, names: _NameBook) -> Any:
    graph = graph_of(model)

    def operation_fn(operation: Any) -> Callable[..., Any]:
        name = f"{prefix}{operation.name}"
        if is_graph_model(operation):

            def run_nested(*args: Any, **kwargs: Any) -> Any:
                return _trace(operation, args[0], intercept, f"{name}/", names)

            return run_nested

        def run_leaf(*args: Any, **kwargs: Any) -> Any:
            kwargs.pop("training", None)
            return intercept(operation, name, names.callable_for(operation, name), args, kwargs)

        return run_leaf

    outputs = graph._run_through_graph(inputs, operation_fn=operation_fn)
    if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
        return outputs[0]
    return outputs


class Alias(keras.layers.Layer):
    """One graph node that calls another callable (a layer, or a layer's `call`) under a name of its own.

    Replaying a layer's inner `call` on symbolic tensors would record each op inside it (the convolution, the bias
    add) as a separate, automatically named operation, and those names can clash with the model's own (a saved
    model's layers are named "add", "add_1", ... from its file, while a fresh process names its next op "add"). An
    Alias records one operation with a chosen name instead; at run time it just calls its target.
    """

    def __init__(self, target: Callable[..., Any], name: str) -> None:
        super().__init__(name=name, trainable=False)
        self._target = target
        owner = getattr(target, "__self__", target)
        self.wrapped = owner  # tracked, so the alias's weights are its target's
        self._pass_training = bool(getattr(owner, "_call_has_training_arg", False))

    def call(self, *args: Any, training: bool | None = None, **kwargs: Any) -> Any:
        if self._pass_training:
            kwargs["training"] = training
        return self._target(*args, **kwargs)


@dataclass
class LayerInfo:
    """A leaf layer met while walking a model, with its qualified name."""

    name: str
    layer: Any


def leaf_layers(model: keras.Model, prefix: str = "") -> list[LayerInfo]:
    """Every leaf layer of `model` in graph (input -> output) order, nested models flattened."""
    graph = graph_of(model)
    found: list[LayerInfo] = []
    for depth in sorted(graph._nodes_by_depth.keys(), reverse=True):
        for node in graph._nodes_by_depth[depth]:
            operation = node.operation
            if operation is None or node.is_input or isinstance(operation, keras.layers.InputLayer):
                continue
            name = f"{prefix}{operation.name}"
            if is_graph_model(operation):
                found.extend(leaf_layers(operation, prefix=f"{name}/"))
            elif all(info.layer is not operation for info in found):
                found.append(LayerInfo(name, operation))
    return found


def output_layer(model: keras.Model, prefix: str = "") -> LayerInfo:
    """The leaf layer that produces the model's (first) output, descending into a nested output model."""
    graph = graph_of(model)
    outputs = graph.outputs
    if len(outputs) != 1:
        raise ValueError(f"Unsupported model: it has {len(outputs)} outputs; a segmentation model has one.")
    operation = outputs[0]._keras_history.operation
    name = f"{prefix}{operation.name}"
    if is_graph_model(operation):
        return output_layer(operation, prefix=f"{name}/")
    return LayerInfo(name, operation)


class LinearCopy:
    """A layer with its activation replaced by the identity, sharing the original's weights, called as ONE graph node
    named after the original (the original itself is never called where its copy is)."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        linear = copy.copy(layer)
        object.__setattr__(linear, "activation", keras.activations.linear)
        self._node = Alias(linear.call, name=f"{layer.name}_linear")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._node(*args, **kwargs)
