"""Tiny torch segmentation models for the explainer tests, and their Keras twins (the same weights).

`TinyTorchUNet` mirrors `tiny_models.tiny_unet` (enc1 -> pool -> bottom -> transposed-conv up -> skip concat -> dec1
-> 1x1 logits -> softmax), with random biases so path methods are not degenerate. Its modules are defined in a
different order than they run, so a backend that lists conv layers in definition order fails the tests.
`keras_twin` builds the same network in Keras with separate ReLU layers (a torch Conv2d's output is pre-activation)
and the torch model's weights copied across.
"""

from __future__ import annotations

import keras
import numpy as np
import torch
from torch import nn

CONV_ORDER = ["enc1", "bottom", "up", "dec1", "logits"]


class TinyTorchUNet(nn.Module):
    """A two-level U-Net ending in a 1x1 "logits" conv, an optional logit scale, and nn.Softmax (or nn.Sigmoid when
    classes == 1)."""

    def __init__(self, classes: int = 4, logit_scale: float = 1.0, seed: int = 0, final: bool = True) -> None:
        super().__init__()
        self.logits = nn.Conv2d(8, classes, 1)  # defined first, runs last
        self.dec1 = nn.Conv2d(16, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(12, 8, 2, stride=2)
        self.bottom = nn.Conv2d(8, 12, 3, padding=1)
        self.enc1 = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.relu_enc1, self.relu_bottom, self.relu_dec1 = nn.ReLU(), nn.ReLU(), nn.ReLU()
        self.logit_scale = logit_scale
        self.final = (nn.Sigmoid() if classes == 1 else nn.Softmax(dim=1)) if final else nn.Identity()
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in (self.enc1, self.bottom, self.up, self.dec1, self.logits):
                fan = module.weight[0].numel()
                module.weight.uniform_(-(6 / (2 * fan)) ** 0.5 * 1.5, (6 / (2 * fan)) ** 0.5 * 1.5, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.relu_enc1(self.enc1(x))
        bottom = self.relu_bottom(self.bottom(self.pool(e1)))
        merged = torch.cat([e1, self.up(bottom)], dim=1)
        z = self.logits(self.relu_dec1(self.dec1(merged)))
        if self.logit_scale != 1.0:
            z = z * self.logit_scale
        return self.final(z)


class DictOutput(nn.Module):
    """Wraps a network the way torchvision's segmentation models answer: {"out": logits, "aux": ...}."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.network(x)
        return {"out": out, "aux": out.detach() * 0.0}


def keras_twin(model: TinyTorchUNet, size: tuple[int, int] = (32, 32)) -> keras.Model:
    """The same network in Keras (channels last), with the torch model's weights."""
    state = {name: p.detach().cpu().numpy() for name, p in model.state_dict().items()}

    def conv(name: str, filters: int, kernel: int) -> keras.layers.Conv2D:
        return keras.layers.Conv2D(filters, kernel, padding="same", name=name)

    inputs = keras.Input((*size, 3), name="image")
    enc1 = conv("enc1", 8, 3)
    e1 = keras.layers.ReLU(name="relu_enc1")(enc1(inputs))
    bottom = conv("bottom", 12, 3)
    b = keras.layers.ReLU(name="relu_bottom")(bottom(keras.layers.MaxPooling2D(name="pool")(e1)))
    up = keras.layers.Conv2DTranspose(8, 2, strides=2, name="up")
    merged = keras.layers.Concatenate(name="skip")([e1, up(b)])
    dec1 = conv("dec1", 8, 3)
    classes = model.logits.out_channels
    logits_layer = conv("logits", classes, 1)
    z = logits_layer(keras.layers.ReLU(name="relu_dec1")(dec1(merged)))
    if model.logit_scale != 1.0:
        z = keras.layers.Rescaling(model.logit_scale, name="logit_scale")(z)
    outputs = keras.layers.Softmax(name="probabilities")(z)
    twin = keras.Model(inputs, outputs, name="tiny_unet_twin")
    for name, layer in (("enc1", enc1), ("bottom", bottom), ("dec1", dec1), ("logits", logits_layer)):
        layer.set_weights([state[f"{name}.weight"].transpose(2, 3, 1, 0), state[f"{name}.bias"]])
    # torch ConvTranspose2d weight (in, out, kh, kw); Keras Conv2DTranspose kernel (kh, kw, out, in)
    up.set_weights([state["up.weight"].transpose(2, 3, 1, 0), state["up.bias"]])
    return twin


def to_nchw(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1] (the adapter's default preprocess, channels first)."""
    return torch.from_numpy(image.astype(np.float32)[None].transpose(0, 3, 1, 2) / 255.0).contiguous()
