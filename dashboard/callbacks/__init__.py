"""Dash callbacks, one module per concern; `register_callbacks` wires them all to an app.

Each module exposes `register(app, config)` that defines thin Dash wrappers over module-level `handle_*` functions,
which take plain values (and the store / adapter) and are unit-tested directly.

One writer per output
---------------------
An output that several events update (the message area, the image store, the region, the target class, the region info,
the Trust status line, the mask figure: `ids.EVENT_SOURCES`) has exactly one writer: `events` registers it (`mask` for
the mask figure, which also redraws on a new image and patches on the opacity slider). Every event source writes only
its own event store, never the output itself; the writer picks the event that fired (the newest when several fired
together) with the pure `events.decide` (`mask.decide_mask`). Events hold plain data, so nothing heavy (a figure, cards)
travels through a store. Where one concern has several inputs, they are one callback over a pure dispatcher instead
(`selection.region_event`, `trust.section_event` for the Trust section's Run, reset and cancel, the contrast callback
in `question`).

To add a new event to such an output (say, "explain this error" setting the region and the target):

1. add the source's name to that output's tuple in `ids.EVENT_SOURCES` (the layout then holds its store);
2. in the source's callback, add `events.event_output(output, "<source>")` to its outputs (for the message area:
   `common.message_output("<source>")`) and return `events.emit({prop: value, ...})` there (a `Message` triple:
   `common.message_event(message)`; the mask figure: `emit({"shapes": ...})` or `emit({"view": ...})`);
   `no_update`, or a dict of only `no_update`, sends no event;
3. test the handler's plain outputs; `tests/dashboard/test_events.py` checks that every evented output and every
   event store has one writer, so a second writer fails there.

A new output with several events: give it its sources in `ids.EVENT_SOURCES` and its properties in `events.PROPS`.

Duplicates that remain (`allow_duplicate=True`), and why:

- the class picker's value: the region callback reads it as an input and clears it; routed through a store, that
  would be a dependency cycle across callbacks, which Dash refuses (the image and model callbacks clear it too);
- the slow result store and the Trust request / result stores: a background callback's own output (`jobs.slow_job`,
  `trust.trust_job`) plus the cancel / failure markers, which Dash lets only another callback write;
- the model upload (`model_upload`), a background callback, resets a few other outputs (layer info, class-picker
  options, image info) besides their usual writer (the grids and results it clears through the region);
- the heatmap figures (`heatmap_graph(ALL)`): pattern-matching outputs, patched by the layer, opacity and zoom
  callbacks, each its own property of every card; a pattern-matching output cannot read per-source stores; the
  layer slider's two writers of the cards and the layer info (`layers`: the clientside swap from the browser's cache
  and the server's miss path, which runs after it and only when it did not show the layer);
- the slow grid (the question callback `grids` and the job's outcome `jobs.on_job_outcome`) and the Trust figures,
  table and flags (the section callback and the metric job's result callback): one callback for both would read
  the job's result and write the job's request, a dependency cycle (request -> job -> result -> request) that Dash
  cannot run; the question / section callback wins when both fire, since it replaces the job.
"""

from __future__ import annotations

from dash import Dash

from dashboard.callbacks import (
    errors,
    events,
    explain,
    grids,
    jobs,
    layers,
    mask,
    model_upload,
    overview,
    question,
    selection,
    trust,
    upload,
    view,
)
from dashboard.config import AppConfig


def register_callbacks(app: Dash, config: AppConfig) -> None:
    """Register every callback of the dashboard on `app`."""
    for module in (events, mask, upload, selection, explain, layers, grids, question, errors, overview, jobs, view,
                   model_upload, trust):  # fmt: skip
        module.register(app, config)
