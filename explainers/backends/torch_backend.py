"""The PyTorch model backend: logits, scores, gradients and every layer's CAMs of a `torch.nn.Module`.

The module maps an (N, 3, H, W) float batch to per-pixel logits (N, C, H', W'), or to a dict holding them
(torchvision's `{"out": ...}`; a one-entry dict is read too) or a tuple/list whose first entry they are. A
single-channel output is a binary model: its one channel z is the foreground logit (the model's final `nn.Sigmoid`,
if it ends in one, is stripped) and the two classes are background -z and foreground z. A final `nn.Softmax` /
`nn.Softmax2d` module is stripped to reach the logits, as the Keras backend strips a final softmax. (An activation
applied as a function in `forward`, `torch.sigmoid(x)`, cannot be seen: pass a module, or `logits_layer`.)

How it runs:

- The seam is NHWC numpy; inside, tensors are NCHW on the model's device (the device of its first parameter: move
  the model with `model.to("cuda")` before building the adapter to run on the GPU; `explainers.model_loading` does
  that for `--torch` when `torch.cuda.is_available()`). The module is put in `eval()` mode.
- Conv layers are the `named_modules()` names of every `Conv2d` / `ConvTranspose2d`, in FORWARD order, recorded by
  forward hooks during one probe pass (definition order can differ from the order of use). Token layers join them:
  a `LayerNorm` whose output is a token sequence (N, L, C) on the probe image's patch grid (a class token allowed) is
  a CAM layer, its activation reshaped to the grid of each input (explainers.backends.tokens).
- Forward-only batches run under `torch.inference_mode()`. Gradients come from `torch.autograd.grad` with respect to
  the input or to hooked activations: parameters are never asked for gradients and `.grad` is never written.
- CAMs: one forward pass with hooks capturing every chosen layer's activation, one `autograd.grad` call for all of
  them (`fast_pass`: and for the input, for saliency and gradient x input), then every CAM combiner (explainers.cam)
  on the torch tensors, on the device, the registered CAMs fused (explainers.backends.torch_cams); only the small
  (h, w) maps (and dS/dx) are copied to numpy, in one copy.
- One lock serialises calls: hooks are registered on the shared module for the duration of a call.
- The sanity check works on a deep copy (`clone`), re-initialised with each module's `reset_parameters()` (BatchNorm
  running statistics too) under a seeded, forked RNG. DeepSHAP runs `shap.DeepExplainer` on a deep copy wrapped as a
  region-score module (in-place activations switched off, the final activation replaced by `nn.Identity`).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from explainers.backends.base import Combiner, LayerInfo, NativeScoreModel, ScoreSpec
from explainers.backends.tokens import token_grid, torch_grid
from explainers.backends.torch_cams import layer_maps

CONV_MODULE_TYPES: tuple[type, ...] = (nn.Conv2d, nn.ConvTranspose2d)
STRIPPED_SOFTMAX: tuple[type, ...] = (nn.Softmax, nn.Softmax2d)
TOKEN_MODULE_TYPES: tuple[type, ...] = (nn.LayerNorm,)  # token layers: a LayerNorm whose output is a patch grid
PROBE_SIZE = (64, 64)


def logits_tensor(output: Any) -> torch.Tensor:
    """The logits in a module's output: the tensor, a dict's "out" (or only) entry, or a tuple's first entry."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        if "out" in output:
            return logits_tensor(output["out"])
        if len(output) == 1:
            return logits_tensor(next(iter(output.values())))
        raise ValueError(
            f"Unsupported model: it returns a dict with keys {sorted(map(str, output))}; the logits must be under "
            "'out' (as torchvision's segmentation models) or be its only entry."
        )
    if isinstance(output, (tuple, list)) and output:
        return logits_tensor(output[0])
    raise ValueError(f"Unsupported model: it returns {type(output).__name__}; expected a tensor of logits.")


def _has_own_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False)) or any(
        buffer.is_floating_point() for buffer in module.buffers(recurse=False)
    )


class TorchBackend:
    """A `torch.nn.Module` segmentation model behind the seam (NHWC numpy in, NCHW inside)."""

    framework = "torch"
    gradients = True
    why_no_gradients: str | None = None
    input_size: tuple[int, int] | None = None  # a torch module declares no input size

    def __init__(self, model: nn.Module, logits_layer: str | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"Unsupported model: expected a torch.nn.Module, got {type(model).__name__}.")
        self.model = model.eval()
        self._logits_layer = logits_layer
        self._lock = threading.RLock()
        self._modules: dict[str, nn.Module] = dict(model.named_modules())
        if logits_layer is not None and logits_layer not in self._modules:
            raise ValueError(
                f"logits_layer {logits_layer!r} is not a module of the model; modules: {sorted(self._modules)[:40]}"
            )
        first = next(iter(model.parameters()), None)
        first = first if first is not None else next(iter(model.buffers()), None)
        self.device = first.device if first is not None else torch.device("cpu")
        self.dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
        self._output_shapes: dict[tuple[int, int], tuple[int, int]] = {}
        self._strip: str | None = None
        order, raw, token_layers = self._probe()
        self._token_layers = set(token_layers)
        conv = [name for name in order if isinstance(self._modules[name], CONV_MODULE_TYPES) or name in token_layers]
        self._weighted_order = [name for name in order if _has_own_state(self._modules[name])]
        channels = int(raw.shape[1])
        self.binary = channels == 1
        self.num_classes = 2 if self.binary else channels
        self.layers: list[LayerInfo] = [self._layer_info(name) for name in conv]
        self.conv_layers = [layer.name for layer in self.layers]

    # ------------------------------------------------------------------------------------------------- helpers
    def _layer_info(self, name: str) -> LayerInfo:
        module = self._modules[name]
        if name in self._token_layers:
            channels = int(module.normalized_shape[-1])
            return LayerInfo(name=name, kind=type(module).__name__, channels=channels, tokens=True,
                             shape=(None, None, channels))  # fmt: skip
        kernel = getattr(module, "kernel_size", None)
        channels = int(module.out_channels)
        return LayerInfo(
            name=name,
            kind=type(module).__name__,
            channels=channels,
            kernel=(int(kernel[0]), int(kernel[1])) if kernel is not None else None,
            shape=(None, None, channels),
        )

    def _probe(self) -> tuple[list[str], torch.Tensor, list[str]]:
        """One forward pass on a grey image, hooks on every module: the order modules run in, the final activation
        to strip, the raw logits, and the token layers (a LayerNorm whose output (N, L, C) is a patch grid of the
        probe image, explainers.backends.tokens)."""
        order: list[str] = []
        outputs: dict[str, Any] = {}

        def hook(name: str) -> Any:
            def record(module: nn.Module, inputs: Any, output: Any) -> None:
                if name not in outputs:
                    order.append(name)
                outputs[name] = output

            return record

        leaves = {name: m for name, m in self._modules.items() if name and not any(True for _ in m.children())}
        handles = [module.register_forward_hook(hook(name)) for name, module in leaves.items()]
        try:
            with self._lock, torch.inference_mode():
                output = self.model(torch.full((1, 3, *PROBE_SIZE), 0.5, device=self.device, dtype=self.dtype))
        except Exception as error:
            raise ValueError(
                f"Unsupported model: it failed on a (1, 3, {PROBE_SIZE[0]}, {PROBE_SIZE[1]}) test batch: "
                f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
            ) from None
        finally:
            for handle in handles:
                handle.remove()
        if self._logits_layer is not None:
            if self._logits_layer not in outputs:
                raise ValueError(f"Unsupported model: logits_layer {self._logits_layer!r} did not run in a forward "
                                 "pass.")  # fmt: skip
            raw = logits_tensor(outputs[self._logits_layer])
        else:
            raw = logits_tensor(output)
            final = next((name for name in reversed(order) if outputs[name] is raw), None)
            if final is not None:
                module = self._modules[final]
                if isinstance(module, STRIPPED_SOFTMAX) or (isinstance(module, nn.Sigmoid) and raw.shape[1] == 1):
                    self._strip = final
        if raw.ndim != 4:
            raise ValueError(
                "Unsupported model: its output must be (N, C, H, W) per-pixel class scores; got shape "
                f"{tuple(raw.shape)}."
            )
        tokens = [
            name
            for name in order
            if isinstance(self._modules[name], TOKEN_MODULE_TYPES)
            and isinstance(outputs[name], torch.Tensor)
            and outputs[name].ndim == 3
            and token_grid(int(outputs[name].shape[1]), PROBE_SIZE) is not None
        ]
        return order, raw, tokens

    @contextmanager
    def _hooked(
        self, capture: Sequence[str] = (), size: tuple[int, int] | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Hooks for one call: the final activation stripped, and the outputs of `capture` (and of logits_layer); a
        token layer's as its (N, C, h, w) patch grid for an input of `size`, the grid put on the forward path."""
        captured: dict[str, torch.Tensor] = {}
        handles = []
        if self._strip is not None:
            handles.append(self._modules[self._strip].register_forward_hook(lambda module, inputs, output: inputs[0]))

        def hook(name: str) -> Any:
            def record(module: nn.Module, inputs: Any, output: Any) -> Any:
                if name in self._token_layers and size is not None:
                    grid, output = torch_grid(output, size)
                    captured.setdefault(name, grid)
                    return output
                captured.setdefault(name, output)
                return None

            return record

        names = list(dict.fromkeys([*capture, *([self._logits_layer] if self._logits_layer else [])]))
        handles.extend(self._modules[name].register_forward_hook(hook(name)) for name in names)
        try:
            yield captured
        finally:
            for handle in handles:
                handle.remove()

    def _to_tensor(self, x: np.ndarray) -> torch.Tensor:
        """NHWC numpy -> NCHW tensor on the model's device."""
        tensor = torch.from_numpy(np.ascontiguousarray(np.asarray(x, dtype=np.float32).transpose(0, 3, 1, 2)))
        return tensor.to(device=self.device, dtype=self.dtype)

    def _logits(self, x: torch.Tensor, captured: dict[str, torch.Tensor]) -> torch.Tensor:
        """(N, C, h, w) logits of one forward pass inside `_hooked` (binary models: the two-class logits)."""
        output = self.model(x)
        z = logits_tensor(captured[self._logits_layer] if self._logits_layer else output)
        return torch.cat([-z, z], dim=1) if self.binary else z

    def _spec_tensors(self, spec: ScoreSpec) -> tuple[torch.Tensor, torch.Tensor]:
        region = torch.as_tensor(np.asarray(spec.region, dtype=np.float32), device=self.device, dtype=self.dtype)
        weights = torch.as_tensor(np.asarray(spec.weights, dtype=np.float32), device=self.device, dtype=self.dtype)
        return region, weights

    @staticmethod
    def _score(z: torch.Tensor, region: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """S (N,) = sum(z . weights * region) / sum(region)."""
        if tuple(z.shape[2:]) != tuple(region.shape):
            raise ValueError(f"The region grid {tuple(region.shape)} does not match the logits {tuple(z.shape[2:])}.")
        class_logit = torch.einsum("nchw,c->nhw", z, weights)
        return (class_logit * region).sum(dim=(1, 2)) / region.sum().clamp(min=1.0)

    def _check_layers(self, layers: Sequence[str]) -> None:
        unknown = [name for name in layers if name not in self.conv_layers]
        if unknown:
            raise ValueError(f"{unknown} is not a conv layer of the model; choose from {self.conv_layers}.")

    def _activations_and_grads(
        self, x: np.ndarray, spec: ScoreSpec, layers: Sequence[str], input_gradient: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor | None]:
        """One forward with the chosen layers hooked, one autograd.grad for all of them and, with `input_gradient`,
        for the input too (else None); call under the lock."""
        self._check_layers(layers)
        region, weights = self._spec_tensors(spec)
        x_t = self._to_tensor(x).requires_grad_(True)  # so activations are in a graph even for frozen parameters
        with torch.enable_grad(), self._hooked(layers, size=(int(x.shape[1]), int(x.shape[2]))) as captured:
            scores = self._score(self._logits(x_t, captured), region, weights)
            missing = [name for name in layers if name not in captured]
            if missing:
                raise ValueError(f"The layer(s) {missing} did not run in the forward pass.")
            activations = [captured[name] for name in layers]
            wanted = [x_t, *activations] if input_gradient else activations
            grads = list(torch.autograd.grad(scores.sum(), wanted, allow_unused=True))
        input_grad = grads.pop(0) if input_gradient else None
        grads = [torch.zeros_like(a) if g is None else g for a, g in zip(activations, grads, strict=True)]
        if input_grad is None and input_gradient:
            input_grad = torch.zeros_like(x_t)
        return scores.detach(), [a.detach() for a in activations], [g.detach() for g in grads], input_grad

    def _combined(
        self, activations: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], combiners: Sequence[Combiner]
    ) -> list[np.ndarray]:
        """Every combiner's (h, w) map for every layer, stacked per layer to (h, w, len(combiners)) numpy (the
        registered CAMs fused, explainers.backends.torch_cams)."""
        return layer_maps(activations, grads, combiners) if activations else []

    # ------------------------------------------------------------------------------------------------- the seam
    def output_shape_for(self, size: tuple[int, int]) -> tuple[int, int]:
        size = (int(size[0]), int(size[1]))
        if size not in self._output_shapes:
            with self._lock, torch.inference_mode(), self._hooked() as captured:
                z = self._logits(torch.zeros((1, 3, *size), device=self.device, dtype=self.dtype), captured)
            self._output_shapes[size] = (int(z.shape[2]), int(z.shape[3]))
        return self._output_shapes[size]

    def logits(self, x: np.ndarray) -> np.ndarray:
        with self._lock, torch.inference_mode(), self._hooked() as captured:
            z = self._logits(self._to_tensor(x), captured)
            return z.permute(0, 2, 3, 1).float().cpu().numpy()

    def scores(self, x: np.ndarray, spec: ScoreSpec) -> np.ndarray:
        region, weights = self._spec_tensors(spec)
        with self._lock, torch.inference_mode(), self._hooked() as captured:
            return self._score(self._logits(self._to_tensor(x), captured), region, weights).float().cpu().numpy()

    def input_gradients(self, x: np.ndarray, spec: ScoreSpec) -> tuple[np.ndarray, np.ndarray]:
        region, weights = self._spec_tensors(spec)
        with self._lock:
            x_t = self._to_tensor(x).requires_grad_(True)
            with torch.enable_grad(), self._hooked() as captured:
                scores = self._score(self._logits(x_t, captured), region, weights)
                (grad,) = torch.autograd.grad(scores.sum(), x_t)
        return scores.detach().float().cpu().numpy(), grad.permute(0, 2, 3, 1).float().cpu().numpy()

    def layer_gradients(
        self, x: np.ndarray, spec: ScoreSpec, layers: Sequence[str]
    ) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
        with self._lock:
            scores, activations, grads, _ = self._activations_and_grads(x, spec, layers)
        pairs = [
            (a[0].permute(1, 2, 0).float().cpu().numpy(), g[0].permute(1, 2, 0).float().cpu().numpy())
            for a, g in zip(activations, grads, strict=True)
        ]
        return float(scores[0]), pairs

    def layer_maps(
        self, x: np.ndarray, spec: ScoreSpec, combiners: Sequence[Combiner], layers: Sequence[str]
    ) -> tuple[float, list[np.ndarray]]:
        with self._lock:
            scores, activations, grads, _ = self._activations_and_grads(x, spec, layers)
            return float(scores[0]), self._combined(activations, grads, combiners)

    def fast_pass(
        self, x: np.ndarray, spec: ScoreSpec, combiners: Sequence[Combiner], layers: Sequence[str]
    ) -> tuple[float, list[np.ndarray], np.ndarray]:
        with self._lock:
            scores, activations, grads, input_grad = self._activations_and_grads(x, spec, layers, input_gradient=True)
            native = self._combined(activations, grads, combiners)
        return float(scores[0]), native, input_grad[0].permute(1, 2, 0).float().cpu().numpy()

    def layer_maps_shared(
        self, x: np.ndarray, specs: Sequence[ScoreSpec], combiners: Sequence[Combiner], layers: Sequence[str]
    ) -> tuple[list[float], list[list[np.ndarray]]]:
        """`layer_maps` for several questions about one image: ONE forward pass, then one batched backward pass
        (`autograd.grad(..., is_grads_batched=True)`, a vmap over the K score gradients; a loop of K backward passes
        over the kept graph where vmap does not cover an operator)."""
        self._check_layers(layers)
        pairs = [self._spec_tensors(spec) for spec in specs]
        regions = torch.stack([region for region, _ in pairs])  # (K, h, w)
        weights = torch.stack([w for _, w in pairs])  # (K, C)
        with self._lock:
            x_t = self._to_tensor(x).requires_grad_(True)
            with torch.enable_grad(), self._hooked(layers) as captured:
                z = self._logits(x_t, captured)
                if tuple(z.shape[2:]) != tuple(regions.shape[1:]):
                    raise ValueError(
                        f"The region grid {tuple(regions.shape[1:])} does not match the logits {tuple(z.shape[2:])}."
                    )
                class_logits = torch.einsum("chw,kc->khw", z[0], weights)
                scores = (class_logits * regions).sum(dim=(1, 2)) / regions.sum(dim=(1, 2)).clamp(min=1.0)  # (K,)
                missing = [name for name in layers if name not in captured]
                if missing:
                    raise ValueError(f"The layer(s) {missing} did not run in the forward pass.")
                activations = [captured[name] for name in layers]
                grads = self._batched_grads(scores, activations)
            maps = [self._combined(activations, [g[k] for g in grads], combiners) for k in range(len(specs))]
        return [float(s) for s in scores.detach().float().cpu()], maps

    @staticmethod
    def _batched_grads(scores: torch.Tensor, activations: list[torch.Tensor]) -> list[torch.Tensor]:
        """d scores[k] / d activation for every k: (K, *activation.shape) per activation."""
        count = int(scores.shape[0])
        eye = torch.eye(count, dtype=scores.dtype, device=scores.device)
        try:
            grads = torch.autograd.grad(
                scores, activations, grad_outputs=eye, is_grads_batched=True, allow_unused=True, retain_graph=True
            )
        except RuntimeError:  # an operator without a batching rule: K plain backward passes over the kept graph
            per_score = [
                torch.autograd.grad(scores[k], activations, allow_unused=True, retain_graph=True) for k in range(count)
            ]
            grads = tuple(
                torch.stack([torch.zeros_like(a) if g is None else g for g in column])
                for a, column in zip(activations, zip(*per_score, strict=True), strict=True)
            )
        return [
            torch.zeros((count, *a.shape), dtype=a.dtype, device=a.device) if g is None else g.detach()
            for a, g in zip(activations, grads, strict=True)
        ]

    # ------------------------------------------------------------------------------------------- the sanity check
    def clone(self) -> TorchBackend:
        return TorchBackend(copy.deepcopy(self.model), self._logits_layer)

    def randomization_units(self) -> list[list[str]]:
        """Modules with their own weights, in forward order, grouped as (conv + the weighted modules that follow it,
        e.g. its BatchNorm), from the logits toward the input."""
        units: list[list[str]] = []
        for name in self._weighted_order:
            if isinstance(self._modules[name], CONV_MODULE_TYPES) or not units:
                units.append([name])
            else:
                units[-1].append(name)
        return [list(reversed(unit)) for unit in reversed(units)]

    def reinitialise(self, names: Sequence[str], seed: int) -> None:
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            for i, name in enumerate(names):
                module = self._modules[name]
                torch.manual_seed(seed * 100_003 + i * 101)
                if callable(getattr(module, "reset_parameters", None)):
                    module.reset_parameters()  # BatchNorm: weight 1, bias 0 and its running statistics reset
                else:
                    for parameter in module.parameters(recurse=False):
                        std = float(parameter.std()) if parameter.numel() > 1 else 0.05
                        parameter.normal_(0.0, std or 0.05)
                if callable(getattr(module, "reset_running_stats", None)):
                    module.reset_running_stats()

    def snapshot(self, names: Sequence[str] | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        modules = self._modules.values() if names is None else [self._modules[name] for name in names]
        tensors = {id(t): t for m in modules for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)]}
        return [(tensor, tensor.detach().clone()) for tensor in tensors.values()]

    def restore(self, snapshot: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        with self._lock, torch.no_grad():
            for tensor, value in snapshot:
                tensor.copy_(value)

    # ------------------------------------------------------------------------------------------------- DeepSHAP
    def score_model(self, spec: ScoreSpec, size: tuple[int, int]) -> NativeScoreModel:
        """A fresh deep copy of the network wrapped as an nn.Module x -> (N, 1) region score, for shap.DeepExplainer
        (which hooks every leaf module: a copy keeps those hooks off the shared model). In-place activations are
        switched off (shap's backward hooks cannot see through them) and the final activation becomes nn.Identity."""
        with self._lock:
            network = copy.deepcopy(self.model).eval()
        if self._strip is not None:
            parent_name, _, child = self._strip.rpartition(".")
            setattr(network.get_submodule(parent_name) if parent_name else network, child, nn.Identity())
        for module in network.modules():
            if getattr(module, "inplace", False) is True:
                module.inplace = False
        region, weights = self._spec_tensors(spec)
        score = RegionScore(network, region, weights, binary=self.binary, logits_layer=self._logits_layer).eval()

        def to_nhwc(values: Any) -> np.ndarray:
            values = np.asarray(values)
            return values.reshape(values.shape[:4]).transpose(0, 2, 3, 1)

        return NativeScoreModel(score, to_native=self._to_tensor, to_nhwc=to_nhwc)


    # ---------------------------------------------------------------------------------------------- memory budget
    def activation_bytes(self, size: tuple[int, int]) -> int:
        """Bytes of the tensors autograd saves for the backward pass in one forward of one image of `size` (counted by
        `torch.autograd.graph.saved_tensors_hooks`, each storage once, parameters excluded), plus the logits."""
        parameters = {p.data_ptr() for p in self.model.parameters()} | {b.data_ptr() for b in self.model.buffers()}
        saved: dict[tuple[int, int], int] = {}

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            if tensor.data_ptr() not in parameters:
                saved[(tensor.data_ptr(), tensor.storage_offset())] = tensor.numel() * tensor.element_size()
            return tensor

        with self._lock:
            x_t = torch.zeros((1, 3, int(size[0]), int(size[1])), device=self.device, dtype=self.dtype)
            x_t.requires_grad_(True)
            with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                with self._hooked() as captured:
                    z = self._logits(x_t, captured)
        return sum(saved.values()) + z.numel() * z.element_size()

class RegionScore(nn.Module):
    """x (N, 3, H, W) -> S (N, 1): the region score of a network, as one module (for shap.DeepExplainer)."""

    def __init__(
        self, network: nn.Module, region: torch.Tensor, weights: torch.Tensor, *, binary: bool, logits_layer: str | None
    ) -> None:
        super().__init__()
        self.network = network
        self.binary = binary
        self.register_buffer("region", region / region.sum().clamp(min=1.0))
        self.register_buffer("weights", weights)
        self._captured: dict[str, Any] = {}
        if logits_layer is not None:
            network.get_submodule(logits_layer).register_forward_hook(
                lambda module, inputs, output: self._captured.__setitem__("logits", output)
            )
        self._use_capture = logits_layer is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = self.network(x)
        z = logits_tensor(self._captured.pop("logits") if self._use_capture else output)
        if self.binary:
            z = torch.cat([-z, z], dim=1)
        class_logit = torch.einsum("nchw,c->nhw", z, self.weights)
        return (class_logit * self.region).sum(dim=(1, 2))[:, None]
