"""Component ids: every id used in the layout and the callbacks, in one place.

Plain strings for singletons, small factories for pattern-matching (dict) ids. A test walks the layout and checks that
every id is unique.
"""

from __future__ import annotations

# Stores (hold keys into the server-side state only, never arrays).
SESSION = "session-store"
IMAGE = "image-store"
REGION = "region-store"
RESULTS = "results-store"
SLOW_REQUEST = "slow-request-store"
SLOW_RESULT = "slow-result-store"
VIEW = "view-store"
LAYER_NAMES = "layer-names"
LAYER_MAPS = "layer-maps-store"  # the browser's cache of prefetched layers (read only clientside: `callbacks.layers`)
LAYER_STATE = "layer-state-store"  # slider position, whether the browser showed it, the cached layers

# Image source.
UPLOAD = "image-upload"
UPLOAD_REFUSED = "image-upload-refused"  # dcc.Store: {name, size} of a file the browser refused (too large)
SAMPLE = "sample-thumb"
IMAGE_INFO = "image-info"

# Model upload (only with --allow-model-upload).
MODEL_UPLOAD = "model-upload"
MODEL_CLASS_NAMES = "model-class-names"
MODEL_STATUS = "model-status"
MODEL_PANEL = "model-check-panel"
MODEL_PROGRESS = "model-check-progress"
MODEL_PROGRESS_TEXT = "model-check-text"
MODEL_FACTS = "model-facts"

# Prediction and region.
MASK_GRAPH = "mask-graph"
MASK_OPACITY = "mask-opacity"
CLASS_PICKER = "class-picker"
TARGET = "target-class"
CONTRAST = "contrast-class"  # the "rather than" class (empty: no contrast)
RUNNER_UP = "runner-up"
QUESTION_TEXT = "question-text"
REGION_INFO = "region-info"
SELECT_MODE = "select-mode"  # exact shape / whole objects
REGION_BORDER = "region-border"  # whole / inner ring / outer ring / inside
BORDER_WIDTH = "border-width"
MESSAGE = "message"

# Methods and heatmaps.
METHODS = "method-checklist"
LAYER = "layer-slider"
LAYER_INFO = "layer-info"
HEATMAP_OPACITY = "heatmap-opacity"
FAST_GRID = "fast-grid"
SLOW_GRID = "slow-grid"
HEATMAP_GRAPH = "heatmap-graph"
HEATMAP_SUBTITLE = "heatmap-subtitle"
HEATMAP_NOTE = "heatmap-note"
HEATMAP_SCALE = "heatmap-scale"

# Background jobs.
SLOW_PANEL = "slow-panel"
PROGRESS = "slow-progress"
PROGRESS_TEXT = "slow-progress-text"
CANCEL = "slow-cancel"

# Trust section (faithfulness, sanity check, agreement, export).
TRUST_OPTIONS = "trust-options"
TRUST_STEPS = "trust-steps"
TRUST_RUN = "trust-run"
TRUST_EXPORT = "trust-export"
TRUST_DOWNLOAD = "trust-download"
TRUST_DOWNLOAD_LINK = "trust-download-link"
TRUST_STATUS = "trust-status"
TRUST_REQUEST = "trust-request-store"
TRUST_RESULT = "trust-result-store"
TRUST_PANEL = "trust-panel"
TRUST_PROGRESS = "trust-progress"
TRUST_PROGRESS_TEXT = "trust-progress-text"
TRUST_CANCEL = "trust-cancel"
TRUST_CURVES = "trust-curves"
TRUST_TABLE = "trust-table"
TRUST_SHARE = "trust-share"
TRUST_AGREEMENT = "trust-agreement"
TRUST_SANITY = "trust-sanity"
TRUST_FLAGS = "trust-flags"

# The model's errors (a ground truth uploaded with the image) and the every-class overview.
TRUTH_UPLOAD = "truth-upload"
TRUTH = "truth-store"  # the ground truth of the shown image: {key, image, name, form, note, void}
TRUTH_INFO = "truth-info"
ERRORS_TABLE = "errors-table"
ERROR_REGION = "error-region"  # "false_positive:<class>" / "false_negative:<class>"
EXPLAIN_ERROR = "explain-error"
OVERVIEW_METHOD = "overview-method"
OVERVIEW_GRID = "overview-grid"
OVERVIEW_NOTE = "overview-note"


def sample(name: str) -> dict[str, str]:
    """The id of the gallery thumbnail of the bundled sample `name`."""
    return {"type": SAMPLE, "index": name}


def heatmap_graph(method: str) -> dict[str, str]:
    """The id of the dcc.Graph in the heatmap card of `method`."""
    return {"type": HEATMAP_GRAPH, "method": method}


def overview_graph(target: int) -> dict[str, str]:
    """The id of the graph of class `target`'s overview card: a heatmap graph, so the linked zoom and the heatmap
    opacity reach it (the layer callback skips it: it is no method)."""
    return heatmap_graph(f"overview-{int(target)}")


def heatmap_subtitle(method: str) -> dict[str, str]:
    """The id of the subtitle (layer name for CAMs) in the heatmap card of `method`."""
    return {"type": HEATMAP_SUBTITLE, "method": method}


def heatmap_scale(method: str) -> dict[str, str]:
    """The id of the tick labels of the colour bar in the heatmap card of `method`."""
    return {"type": HEATMAP_SCALE, "method": method}


def heatmap_note(method: str) -> dict[str, str]:
    """The id of the footer note (time, score, warnings) in the heatmap card of `method`."""
    return {"type": HEATMAP_NOTE, "method": method}


# Event stores: an output with several event sources has one dcc.Store per source ("the source's event"); only that
# source writes it, and one writer callback per output reads them all (`dashboard.callbacks.events`).
EVENT_SOURCES: dict[str, tuple[str, ...]] = {
    MESSAGE: ("upload", "refused", "sample", "image", "region", "explain", "job", "runner-up", "model",
              "truth"),
    IMAGE: ("upload", "sample", "model"),
    REGION: ("image", "region", "model"),
    MASK_GRAPH: ("region", "view"),  # plus the image store and the opacity slider (`dashboard.callbacks.mask`)
    TARGET: ("image", "region", "model"),
    REGION_INFO: ("image", "region"),
    TRUST_STATUS: ("section", "result", "export"),
}


def event(output: str, source: str) -> str:
    """The id of the event store through which `source` asks for a change of `output` (see `EVENT_SOURCES`)."""
    if source not in EVENT_SOURCES.get(output, ()):
        raise KeyError(f"{source!r} is not an event source of {output!r}: add it to ids.EVENT_SOURCES")
    return f"{output}--{source}-event"
