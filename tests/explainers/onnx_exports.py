"""ONNX files for the ONNX tests, each exported from a tiny torch network with the TorchScript exporter
(`torch.onnx.export(..., dynamo=False)`, opset 17), then rewritten with the onnx API where a test needs what other
exporters produce (weights as Constant nodes, as Paddle writes them).
"""

from __future__ import annotations

import io

import numpy as np
import onnx
import torch
from onnx import helper
from torch import nn
from torch.nn import functional as F

OPSET = 17


class TinyTorchUNet(nn.Module):
    """A two-level U-Net (NCHW) ending in a 1x1 logits conv and an optional final softmax / sigmoid."""

    def __init__(self, classes: int = 4, final: str | None = "softmax", seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.enc1 = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.bottom = nn.Conv2d(8, 12, 3, padding=1)
        self.up = nn.ConvTranspose2d(12, 8, 2, stride=2)
        self.dec1 = nn.Conv2d(16, 8, 3, padding=1)
        self.logits = nn.Conv2d(8, classes, 1)
        for conv in (self.enc1, self.bottom, self.up, self.dec1, self.logits):
            nn.init.normal_(conv.bias, std=0.1)  # random biases: a zero-bias net is linear in its input's scale
        self.final = final

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = torch.relu(self.enc1(x))
        bottom = torch.relu(self.bottom(self.pool(e1)))
        d1 = torch.relu(self.dec1(torch.cat([e1, self.up(bottom)], dim=1)))
        z = self.logits(d1)
        if self.final == "softmax":
            return torch.softmax(z, dim=1)
        if self.final == "sigmoid":
            return torch.sigmoid(z)
        return z


class NHWCNet(nn.Module):
    """A TensorFlow-style model: takes (N, H, W, 3) and outputs (N, H, W, C) probabilities."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.inner(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return torch.softmax(z, dim=-1)


class GridSampleNet(nn.Module):
    """A conv net warping its features with GridSample (a fixed affine grid): onnxruntime runs GridSample, onnx2torch
    1.5 has no converter for it."""

    def __init__(self, size: tuple[int, int] = (32, 32), classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.logits = nn.Conv2d(6, classes, 1)
        nn.init.normal_(self.conv.bias, std=0.1)
        theta = torch.tensor([[[0.9, 0.1, 0.0], [-0.1, 0.9, 0.0]]])
        self.register_buffer("grid", F.affine_grid(theta, (1, 6, *size), align_corners=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        y = F.grid_sample(y, self.grid.expand(x.shape[0], -1, -1, -1), align_corners=False)
        return torch.softmax(self.logits(y), dim=1)


def export(module: nn.Module, size: tuple[int, int] = (32, 32), *, nhwc: bool = False, dynamic: bool = False,
           dynamic_batch: bool = True) -> onnx.ModelProto:  # fmt: skip
    """Export `module` (eval mode) with the TorchScript exporter; dynamic: symbolic height and width too."""
    module = module.eval()
    shape = (1, *size, 3) if nhwc else (1, 3, *size)
    axes: dict[int, str] = {0: "batch"} if dynamic_batch else {}
    if dynamic:
        axes.update({1: "height", 2: "width"} if nhwc else {2: "height", 3: "width"})
    buffer = io.BytesIO()
    torch.onnx.export(module, (torch.rand(shape),), buffer, dynamo=False, opset_version=OPSET,
                      input_names=["image"], output_names=["out"],
                      dynamic_axes={"image": axes, "out": dict(axes)} if axes else None)  # fmt: skip
    return onnx.load_model_from_string(buffer.getvalue())


def to_constant_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with every initializer rewritten as a Constant node (as Paddle exports store weights)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    constants = [helper.make_node("Constant", [], [t.name], value=t, name=f"const_{t.name}")
                 for t in model.graph.initializer]  # fmt: skip
    initializers = {t.name for t in model.graph.initializer}
    kept_inputs = [i for i in model.graph.input if i.name not in initializers]
    del model.graph.initializer[:]
    del model.graph.input[:]
    model.graph.input.extend(kept_inputs)
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(constants + nodes)
    return model


def torch_logits_nhwc(module: nn.Module, x_nhwc: np.ndarray) -> np.ndarray:
    """The torch module's output (N, C, h, w) for an NHWC float batch, as NHWC numpy."""
    with torch.inference_mode():
        out = module.eval()(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))))
    return out.numpy().transpose(0, 2, 3, 1)
