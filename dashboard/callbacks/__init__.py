"""Dash callbacks, one module per concern; `register_callbacks` wires them all to an app.

Each module exposes `register(app, config)` that defines thin Dash wrappers over module-level `handle_*` functions,
which take plain values (and the store / adapter) and are unit-tested directly.

One writer per output
---------------------
An output that several events update (the message area, the region, the target class, the class picker, the region
info, the Trust status line: `ids.EVENT_SOURCES`) has exactly one writer, registered by `events`. Every event source
writes only its own event store and never the output itself; the writer picks the event that fired (the newest when
several fired together) with the pure `events.decide`. To add a new event to such an output (say, "explain this
error" setting the region and the target):

1. add the source's name to that output's tuple in `ids.EVENT_SOURCES` (the layout then holds its store);
2. in the source's callback, add `events.event_output(output, "<source>")` to its outputs (for the message area:
   `common.message_output("<source>")`), and return `events.emit({prop: value, ...})` there (a `Message` triple:
   `common.message_event(message)`); `no_update`, or a dict of only `no_update`, sends no event;
3. test the handler's plain outputs; `events.decide` is already tested (tests/dashboard/test_events.py).

A new output with several events: give it its sources in `ids.EVENT_SOURCES` and its properties in `events.PROPS`.

Duplicates that remain (`allow_duplicate=True`), and why:

- the mask figure, the heatmap figures (`heatmap_graph(ALL)`), the view store, the slow grid and the slow result,
  the image store, the contrast value, and the Trust figures, table and flags still have several writers; the mask
  figure and heatmaps are updated by `Patch`es (zoom, opacity, outline), which cannot travel through a store;
- a background callback (`jobs.slow_job`, `trust.trust_job`, `model_upload`) writes its result through Dash's
  background machinery and its `running=` / `progress=` outputs belong to it alone;
- the pattern-matching heatmap outputs (`heatmap_graph(ALL)`) are written by the layer, opacity and zoom callbacks,
  each patching only its own property of every card, and a pattern-matching output cannot read per-source stores.
"""

from __future__ import annotations

from dash import Dash

from dashboard.callbacks import events, explain, jobs, mask, model_upload, question, selection, trust, upload, view
from dashboard.config import AppConfig


def register_callbacks(app: Dash, config: AppConfig) -> None:
    """Register every callback of the dashboard on `app`."""
    for module in (events, mask, upload, selection, explain, question, jobs, view, model_upload, trust):
        module.register(app, config)
