"""Every class at once: one explanation per predicted class of the shown image, for one method.

Class c's question is its whole predicted region (region = the pixels predicted c, target c, no contrast), the
question the whole-class picker asks. The missing ones are computed in ONE engine request
(`explainers.overview.explain_classes`: for a CAM method every class's backward pass shares one forward pass) and
stored exactly like any other result (`analysis.store_result`, every conv layer's map), so the layer slider is a lookup
and picking that class afterwards finds its result already there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from dashboard.state.store import StateStore
from dashboard.usecases.analysis import image_data, ingest_region, store_result, stored_result

if TYPE_CHECKING:
    from explainers import SegmentationAdapter


def class_question(store: StateStore, session: str, image_key: str, labels: np.ndarray, target: int) -> dict[str, Any]:
    """The stored question of class `target`'s whole predicted region."""
    region = ingest_region(store, session, image_key, np.asarray(labels) == target, "class")
    return {"image": image_key, "region": region["key"], "target": int(target), "contrast": None, "label": "class"}


def compute_overview(
    adapter: SegmentationAdapter,
    store: StateStore,
    session: str,
    image_ref: Mapping[str, Any],
    method: str,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """[(question, stored summary)] for every predicted class in index order, computing only the missing ones in one
    request; ValueError with the reason (an expired image, a method the model cannot run)."""
    from explainers.overview import explain_classes

    image, labels, _ = image_data(store, session, image_ref["key"])
    labels = np.asarray(labels).astype(np.int64)
    questions = {int(c): class_question(store, session, image_ref["key"], labels, int(c)) for c in np.unique(labels)}
    found = {c: stored_result(store, session, q, method) for c, q in questions.items()}
    missing = [c for c, summary in found.items() if summary is None]
    if missing:
        results = explain_classes(adapter, image, method, classes=missing, labels=labels)
        for c, result in results.items():
            found[c] = store_result(store, session, questions[c], result)
    return [(questions[c], found[c]) for c in questions]  # type: ignore[misc]
