"""The project's demo segmentation model: a small U-Net trained on procedural mushroom images.

``load_demo_model()`` returns the committed Keras model (input (128, 128, 3) float32 in [0, 1], output per-pixel
probabilities over ``CLASS_NAMES``); ``SAMPLES_DIR`` holds a dozen sample PNGs and their ground-truth masks
(``SAMPLES_DIR / "ground_truth"``).  Importing this package does not import TensorFlow; only ``load_demo_model``
does.  How the model is made: ``models/train.py``; how it scores: ``models/mushroom_unet.metrics.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from models.mushrooms import CLASS_NAMES

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["CLASS_NAMES", "DEMO_MODEL_PATH", "METRICS_PATH", "SAMPLES_DIR", "load_demo_model"]

_HERE = Path(__file__).resolve().parent
DEMO_MODEL_PATH: Path = _HERE / "mushroom_unet.keras"
METRICS_PATH: Path = _HERE / "mushroom_unet.metrics.json"
SAMPLES_DIR: Path = _HERE.parent / "assets" / "samples"


def load_demo_model(path: str | Path | None = None) -> keras.Model:
    """Load the committed demo U-Net (``compile=False``); ``path`` overrides ``DEMO_MODEL_PATH``."""
    import keras  # lazy: keep `import models` free of TensorFlow

    return keras.models.load_model(Path(path) if path is not None else DEMO_MODEL_PATH, compile=False)
