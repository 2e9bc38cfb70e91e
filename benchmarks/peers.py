"""P1(c): our Grad-CAM against xplique's GradCAM and tf-keras-vis's Gradcam on the same adapted model and layer.

Run with the peers' interpreter (`bash benchmarks/peers_env.sh` builds it): `benchmarks/.venv-peers/bin/python -m
benchmarks.peers --json out.json`. Every library explains the same flat Keras model image -> S_c(x; M)
(`adapter.region_score_model`) at the same conv layer; times are medians over repeats after a warm-up, and each peer
map is compared with ours by Pearson correlation at image resolution. A peer that cannot run records its error.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def median_ms(call: Callable[[], Any], repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def run(layer: str | None, repeats: int) -> dict[str, Any]:
    from benchmarks.methods import demo_question
    from explainers import registry

    adapter, image, region, target = demo_question()
    layer = layer or adapter.conv_layers[-2]  # the last conv before the 1x1 logits head
    import keras

    # A standalone clone: the adapted graph shares layer objects with the original model, and a peer that asks a layer
    # for its `.output` would get the original graph's tensor.
    shared = adapter.region_score_model(region, target, image.shape[:2])
    score_model = keras.models.clone_model(shared)
    score_model.set_weights(shared.get_weights())
    x = adapter.model_input(image[None])
    gradcam = registry.get("gradcam")

    def ours_one_layer() -> np.ndarray:
        adapter.clear_cache()
        return gradcam.explain(adapter, image, region, target, params={"layer": layer}).heatmap

    ours_map = ours_one_layer()
    rows: dict[str, Any] = {
        "layer": layer,
        "ours_ms": median_ms(ours_one_layer, repeats),
        "ours_note": "all 4 CAM variants for all conv layers in the same pass",
    }
    peers: dict[str, Callable[[], Callable[[], np.ndarray]]] = {
        "xplique": lambda: xplique_runner(score_model, x, layer),
        "tf-keras-vis": lambda: tfkv_runner(score_model, x, layer),
    }
    for name, make in peers.items():
        try:
            runner = make()
            peer_map = np.asarray(runner(), dtype=np.float64).reshape(image.shape[:2])
            rows[name] = {
                "ms": median_ms(runner, repeats),
                "pearson": pearson(ours_map, peer_map),
                "version": peer_version(name),
            }
        except Exception as error:  # record, don't hide, why a peer cannot run here
            rows[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
    return rows


def peer_version(name: str) -> str:
    from importlib.metadata import version

    return version("xplique" if name == "xplique" else "tf-keras-vis")


def xplique_runner(score_model: Any, x: np.ndarray, layer: str) -> Callable[[], np.ndarray]:
    from xplique.attributions import GradCAM

    explainer = GradCAM(score_model, conv_layer=layer)
    targets = np.ones((1, 1), dtype=np.float32)
    return lambda: np.asarray(explainer.explain(x, targets))[0]


def tfkv_runner(score_model: Any, x: np.ndarray, layer: str) -> Callable[[], np.ndarray]:
    from tf_keras_vis.gradcam import Gradcam

    explainer = Gradcam(score_model, clone=False)
    return lambda: np.asarray(explainer(lambda output: output[:, 0], x, penultimate_layer=layer, normalize_cam=False))[
        0
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default=None)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = run(args.layer, args.repeats)
    print(json.dumps(rows, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
