"""The demo U-Net (``models.unet``) in PyTorch, and its trained weights converted from the committed Keras model.

``TorchUNet`` is the same architecture module for module (Conv2d without bias + BatchNorm2d(eps=1e-3) + ReLU blocks,
ConvTranspose2d up-sampling, skip concatenation, a 1x1 ``logits`` conv and a final ``nn.Softmax``), with the Keras
layer names turned into module paths (``enc1.conv1``, ``up3``, ``logits``). ``mushroom_unet.pt`` holds the demo
model's weights as a state dict, so the app can serve the demo as a torch model:

    python app.py --torch models.torch_unet:TorchUNet --weights models/mushroom_unet.pt

``python -m models.torch_unet`` (re)writes that file from ``mushroom_unet.keras`` (needs TensorFlow); loading it needs
torch only. Input: (N, 3, H, W) float32 in [0, 1]; output: per-pixel class probabilities (N, 6, H, W).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.unet import DEFAULT_FILTERS

TORCH_WEIGHTS_PATH = Path(__file__).resolve().parent / "mushroom_unet.pt"


class Block(nn.Module):
    """Two (3x3 conv, BatchNorm, ReLU) layers, as ``models.unet._block``."""

    def __init__(self, channels_in: int, filters: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, filters, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters, eps=1e-3)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(filters, filters, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(filters, eps=1e-3)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))


class TorchUNet(nn.Module):
    """The demo U-Net: three down-sampling levels, a bottleneck, three up-sampling levels, logits, softmax."""

    def __init__(self, num_classes: int = 6, filters: tuple[int, int, int, int] = DEFAULT_FILTERS) -> None:
        super().__init__()
        f1, f2, f3, fb = filters
        self.enc1, self.enc2, self.enc3 = Block(3, f1), Block(f1, f2), Block(f2, f3)
        self.bottleneck = Block(f3, fb)
        self.pool = nn.MaxPool2d(2)
        self.up3, self.dec3 = nn.ConvTranspose2d(fb, f3, 2, stride=2), Block(2 * f3, f3)
        self.up2, self.dec2 = nn.ConvTranspose2d(f3, f2, 2, stride=2), Block(2 * f2, f2)
        self.up1, self.dec1 = nn.ConvTranspose2d(f2, f1, 2, stride=2), Block(2 * f1, f1)
        self.logits = nn.Conv2d(f1, num_classes, 1)
        self.probabilities = nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        x = self.bottleneck(self.pool(e3))
        for up, dec, skip in ((self.up3, self.dec3, e3), (self.up2, self.dec2, e2), (self.up1, self.dec1, e1)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.probabilities(self.logits(x))


def state_dict_from_keras(model: Any) -> dict[str, torch.Tensor]:
    """The TorchUNet state dict holding a ``models.unet.build_unet`` Keras model's weights."""
    state: dict[str, torch.Tensor] = {}

    def tensor(array: Any) -> torch.Tensor:
        return torch.from_numpy(array.copy()).float()

    for layer in model.layers:
        weights = [w.numpy() if hasattr(w, "numpy") else w for w in layer.get_weights()]
        if not weights:
            continue
        kind, name = type(layer).__name__, layer.name
        path = name.replace("_conv", ".conv").replace("_bn", ".bn")
        if kind == "Conv2D":  # (kh, kw, in, out) -> (out, in, kh, kw)
            state[f"{path}.weight"] = tensor(weights[0].transpose(3, 2, 0, 1))
            if len(weights) > 1:
                state[f"{path}.bias"] = tensor(weights[1])
        elif kind == "Conv2DTranspose":  # (kh, kw, out, in) -> (in, out, kh, kw)
            state[f"{path}.weight"] = tensor(weights[0].transpose(3, 2, 0, 1))
            state[f"{path}.bias"] = tensor(weights[1])
        elif kind == "BatchNormalization":
            gamma, beta, mean, variance = weights
            state.update({f"{path}.weight": tensor(gamma), f"{path}.bias": tensor(beta),
                          f"{path}.running_mean": tensor(mean), f"{path}.running_var": tensor(variance),
                          f"{path}.num_batches_tracked": torch.tensor(0)})  # fmt: skip
        else:
            raise ValueError(f"No torch counterpart for the weighted Keras layer {name!r} ({kind}).")
    return state


def main() -> None:
    """Convert the committed Keras demo model's weights into ``mushroom_unet.pt`` and check the two agree."""
    import numpy as np

    import models

    keras_model = models.load_demo_model()
    network = TorchUNet()
    network.load_state_dict(state_dict_from_keras(keras_model), strict=True)
    network.eval()
    x = np.random.default_rng(0).random((2, 128, 128, 3), dtype=np.float32)
    with torch.no_grad():
        ours = network(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    difference = float(np.abs(ours - np.asarray(keras_model(x))).max())
    torch.save(network.state_dict(), TORCH_WEIGHTS_PATH)
    print(f"wrote {TORCH_WEIGHTS_PATH} (max |torch - keras| probability difference {difference:.2e})")


if __name__ == "__main__":
    main()
