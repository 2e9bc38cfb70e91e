"""Print, for every zoo architecture (Keras and torch), its CAM-layer count, the default CAM layer and each method's
time (measured once, first call included; not asserted anywhere): python -m tests.zoo.method_times [model ...]"""

from __future__ import annotations

import sys

from explainers import SegmentationAdapter, registry
from tests.zoo.conformance import run_methods, user_question


def _zoo() -> dict[str, object]:
    from tests.zoo.keras_models import ZOO

    zoo: dict[str, object] = dict(ZOO)
    try:
        from tests.zoo.torch_models import TORCH_ZOO
    except ImportError:  # torch is optional
        return zoo
    return {**zoo, **TORCH_ZOO}


def main(names: list[str]) -> None:
    zoo = _zoo()
    methods = registry.available()
    print("model | CAM layers (tokens) | default CAM layer | " + " | ".join(methods))
    for name in names or list(zoo):
        entry = zoo[name]
        adapter = SegmentationAdapter(entry.build())
        q = user_question(entry, adapter)
        run = run_methods(adapter, q, getattr(entry, "method_params", None))
        times = [f"{run.seconds[m]:.2f} s" + (" (refused)" if m in run.refused else "") for m in methods]
        tokens = sum(layer.tokens for layer in adapter.layers)
        print(f"{name} {entry.size[0]}x{entry.size[1]} | {len(adapter.conv_layers)} ({tokens}) | "
              f"{adapter.default_layer} | " + " | ".join(times), flush=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
