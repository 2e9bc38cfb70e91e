"""shap's numba warm-up: run on import by the background-job forkserver (listed in `background.FORKSERVER_PRELOAD`),
and imported by the web process's warm-up thread when jobs run in its threads (`dashboard.factory.warm_up`).

shap's Partition explainer runs numba-compiled helpers (masking, clustering, Owen-value recursion). numba compiles
them on first call in every process, which costs ~15-25 s on two cores: paid by *every* job, since each job is a fresh
child. Running a tiny Partition explanation of a pure-numpy function here, in the forkserver, compiles them once; every
job child forked afterwards inherits the compiled code. No TensorFlow op runs here, so forking stays safe.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def warm_shap(side: int = 16) -> None:
    """Compile shap's numba code paths for the Partition explainer with an Image blur masker."""
    import shap

    image = np.zeros((side, side, 3), dtype=np.float32)
    masker = shap.maskers.Image("blur(3,3)", image.shape)
    for dtype in (np.float32, np.float64):

        def score(batch: np.ndarray, dtype: type = dtype) -> np.ndarray:
            return np.asarray(batch, dtype=np.float32).reshape(len(batch), -1).mean(axis=1).astype(dtype)

        explainer = shap.explainers.Partition(score, masker)
        explainer(image[None], max_evals=60, batch_size=50, fixed_context=1, silent=True)


try:
    warm_shap()
except Exception:
    log.exception("shap warm-up failed")
