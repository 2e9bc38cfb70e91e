"""P1(c): our Grad-CAM against xplique's GradCAM and tf-keras-vis's Gradcam on the same adapted model and layer.

Run with the peers' interpreter (`bash benchmarks/peers_env.sh` builds it): `benchmarks/.venv-peers/bin/python -m
benchmarks.peers --json out.json`. Every library explains the same flat Keras model image -> S_c(x; M)
(`adapter.region_score_model`) at the same conv layer. Ours is timed in its one-layer mode (the same work as the peers)
and in its default all-layer mode; times are medians over repeats after a warm-up, measured round-robin. Each peer
map is compared with ours by Pearson correlation at image resolution. A peer that cannot run records its error.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import numpy as np


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def run(layer: str | None, repeats: int) -> dict[str, Any]:
    """Ours in its one-layer mode (the same work as the peers: one layer's Grad-CAM) and in its default mode (all four
    CAM variants for every conv layer), and each peer, timed round-robin (`interleaved_medians`) so load hits all."""
    from benchmarks.engine import interleaved_medians
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

    def ours(all_layers: bool) -> Callable[[], np.ndarray]:
        def call() -> np.ndarray:
            adapter.clear_cache()
            params = {"layer": layer, "all_layers": all_layers}
            return gradcam.explain(adapter, image, region, target, params=params).heatmap

        return call

    calls: dict[str, Callable[[], np.ndarray]] = {"ours": ours(False), "ours_all_layers": ours(True)}
    ours_map = calls["ours"]()
    rows: dict[str, Any] = {"layer": layer}
    makers: dict[str, Callable[[], Callable[[], np.ndarray]]] = {
        "xplique": lambda: xplique_runner(score_model, x, layer),
        "tf-keras-vis": lambda: tfkv_runner(score_model, x, layer),
    }
    for name, make in makers.items():
        try:
            runner = make()
            peer_map = np.asarray(runner(), dtype=np.float64).reshape(image.shape[:2])
            rows[name] = {"pearson": pearson(ours_map, peer_map), "version": peer_version(name)}
            calls[name] = runner
        except Exception as error:  # record, don't hide, why a peer cannot run here
            rows[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
    medians = interleaved_medians(calls, repeats)
    rows["ours_ms"] = 1000 * medians["ours"]
    rows["ours_note"] = "one layer (all_layers=False): the same work as the peers"
    rows["ours_all_layers_ms"] = 1000 * medians["ours_all_layers"]
    rows["ours_all_layers_note"] = "the default: all 4 CAM variants for all conv layers in one pass"
    for name in makers:
        if name in calls:
            rows[name]["ms"] = 1000 * medians[name]
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
