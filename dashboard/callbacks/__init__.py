"""Dash callbacks, one module per concern; `register_callbacks` wires them all to an app.

Each module exposes `register(app, config)` that defines thin Dash wrappers over module-level `handle_*` functions,
which take plain values (and the store / adapter) and are unit-tested directly.
"""

from __future__ import annotations

from dash import Dash

from dashboard.callbacks import explain, jobs, model_upload, question, selection, trust, upload, view
from dashboard.config import AppConfig


def register_callbacks(app: Dash, config: AppConfig) -> None:
    """Register every callback of the dashboard on `app`."""
    for module in (upload, selection, explain, question, jobs, view, model_upload, trust):
        module.register(app, config)
