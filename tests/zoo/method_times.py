"""Print, for every zoo architecture, its CAM-layer count, the default CAM layer and each method's time (measured once,
first call included; not asserted anywhere): python -m tests.zoo.method_times [model ...]"""

from __future__ import annotations

import sys

import numpy as np

from explainers import SegmentationAdapter, registry
from tests.zoo.conformance import question_for, run_methods
from tests.zoo.keras_models import ZOO


def main(names: list[str]) -> None:
    methods = registry.available()
    print("model | conv layers | default CAM layer | " + " | ".join(methods))
    for name in names or list(ZOO):
        entry = ZOO[name]
        adapter = SegmentationAdapter(entry.build())
        q = question_for(entry)
        labels = np.argmax(adapter.predict(q.image), axis=-1)
        q.target = int(np.bincount(labels[q.region], minlength=adapter.num_classes).argmax())
        run = run_methods(adapter, q)
        times = [f"{run.seconds[m]:.2f} s" + (" (refused)" if m in run.refused else "") for m in methods]
        print(f"{name} {entry.size[0]}x{entry.size[1]} | {len(adapter.conv_layers)} | {adapter.default_layer} | "
              + " | ".join(times), flush=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
