"""Black-box ONNX benchmark: SHAP Partition evaluations per second vs onnxruntime's batched forward throughput.

The model is a torch U-Net of the demo model's architecture (three levels of two conv+BatchNorm+ReLU blocks, widths
12/24/48/96, transposed-conv up-sampling with skips, a 1x1 logits conv and a softmax; 6 classes, 128x128), with
seeded random weights (throughput does not depend on what the weights learned), exported with the TorchScript
exporter (opset 17) and served through onnxruntime alone (`load_onnx(..., backend="onnxruntime")`).

Two forward rates are measured, each with the SHAP method's own batch size and the same number of evaluations as one
SHAP run: `InferenceSession.run` on the normalised graph alone (the runtime's throughput, the target's reference),
and the adapter's batched score (the same plus the region score reduction). SHAP's rate is `max_evals` over one
default `shap` run's wall time. Timed variants are interleaved round-robin (shared machine).

`python -m benchmarks.onnx_blackbox` prints the figures; `benchmarks.run` calls `p3_onnx_shap`.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

SIZE = (128, 128)
CLASSES = 6


def demo_like_onnx(seed: int = 0) -> bytes:
    """The demo U-Net's architecture in torch, random (seeded) weights, exported to ONNX bytes."""
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i in range(2):
            layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU()]  # fmt: skip
        return nn.Sequential(*layers)

    class UNet(nn.Module):
        def __init__(self, widths: tuple[int, int, int, int] = (12, 24, 48, 96)) -> None:
            super().__init__()
            f1, f2, f3, fb = widths
            self.enc1, self.enc2, self.enc3, self.bottleneck = block(3, f1), block(f1, f2), block(f2, f3), block(f3, fb)
            self.pool = nn.MaxPool2d(2)
            self.up3, self.up2, self.up1 = (nn.ConvTranspose2d(a, b, 2, stride=2) for a, b in ((fb, f3), (f3, f2),
                                                                                                (f2, f1)))  # fmt: skip
            self.dec3, self.dec2, self.dec1 = block(2 * f3, f3), block(2 * f2, f2), block(2 * f1, f1)
            self.logits = nn.Conv2d(f1, CLASSES, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            e1 = self.enc1(x)
            e2 = self.enc2(self.pool(e1))
            e3 = self.enc3(self.pool(e2))
            b = self.bottleneck(self.pool(e3))
            d3 = self.dec3(torch.cat([self.up3(b), e3], 1))
            d2 = self.dec2(torch.cat([self.up2(d3), e2], 1))
            d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
            return torch.softmax(self.logits(d1), dim=1)

    torch.manual_seed(seed)
    net = UNet().eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after training
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    buffer = io.BytesIO()
    torch.onnx.export(net, (torch.rand(1, 3, *SIZE),), buffer, dynamo=False, opset_version=17,
                      input_names=["image"], output_names=["out"],
                      dynamic_axes={"image": {0: "batch"}, "out": {0: "batch"}})  # fmt: skip
    return buffer.getvalue()


def p3_onnx_shap(repeats: int = 3) -> dict[str, Any]:
    """SHAP Partition evaluations/s on the black-box ONNX U-Net vs onnxruntime's batched forward throughput."""
    from benchmarks.engine import interleaved_medians
    from explainers import SegmentationAdapter, registry
    from explainers.onnx_loading import check_images, load_onnx

    loaded = load_onnx(demo_like_onnx(), backend="onnxruntime")
    adapter = SegmentationAdapter(loaded.backend)
    image = (check_images(SIZE, 1)[0] * 255).astype(np.uint8)
    region = np.zeros(SIZE, dtype=bool)
    region[40:90, 30:100] = True
    target = 1
    shap_method = registry.get("shap")
    max_evals, batch_size = shap_method.defaults["max_evals"], shap_method.defaults["batch_size"]
    batches = int(np.ceil(max_evals / batch_size))
    x = np.ascontiguousarray(adapter.model_input(np.repeat(image[None], batch_size, axis=0)).transpose(0, 3, 1, 2))
    graph, session = loaded.graph, loaded.backend.session
    pixels = np.repeat(image[None], batch_size, axis=0)

    def runtime_forward() -> None:  # onnxruntime alone: the same evaluations, in SHAP's batch size
        for _ in range(batches):
            session.run([graph.output_name], {graph.input_name: x})

    def adapter_scores() -> None:
        for _ in range(batches):
            adapter.score(pixels, region, target, batch_size=batch_size)

    def shap_run() -> None:
        shap_method.explain(adapter, image, region, target)

    medians = interleaved_medians({"runtime": runtime_forward, "scores": adapter_scores, "shap": shap_run}, repeats)
    evaluations = batches * batch_size
    runtime_rate, score_rate = evaluations / medians["runtime"], evaluations / medians["scores"]
    shap_rate = max_evals / medians["shap"]
    return {
        "model": f"demo-architecture U-Net, {SIZE[0]}x{SIZE[1]}, {CLASSES} classes, onnxruntime black box",
        "max_evals": max_evals,
        "batch_size": batch_size,
        "shap_s": medians["shap"],
        "runtime_evals_per_s": runtime_rate,
        "score_evals_per_s": score_rate,
        "shap_evals_per_s": shap_rate,
        "ratio": shap_rate / runtime_rate,
    }


if __name__ == "__main__":
    print(json.dumps(p3_onnx_shap(), indent=2))
