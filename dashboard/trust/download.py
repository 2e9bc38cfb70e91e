"""The export download: a ticket stored by the export button, and the Flask route that streams its zip.

The export button (`callbacks.trust`) checks that there is something to export, stores a ticket (the question, the
methods, the layer and the options, all plain data) under a random token in the session's state, and the page then
fetches ``_segx/export/<session>/<token>.zip``. The route rebuilds the members from the stored results
(`metrics.export_members`) and streams the zip one member at a time, so it is never held whole in memory nor
base64-encoded into a callback's JSON. Any web process of the deployment can serve it (the state is shared); a ticket
lives as long as the session's state. The URL is relative, like the photo route's.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, abort, stream_with_context

from dashboard.config import AppConfig
from dashboard.state.resources import get_store
from dashboard.state.store import StateStore
from dashboard.trust import metrics

EXPORT_PATH = "_segx/export"
_URL_PART = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")


def issue_ticket(store: StateStore, session: str, request: Mapping[str, Any]) -> tuple[str, str]:
    """(relative URL, file name) of a download of `request` (`metrics.export_members`' arguments after the store and
    session: question, methods, layer and its keyword options). Raises ValueError with the user's message when there
    is nothing to export, before any ticket is stored."""
    _, filename = metrics.export_members(store, session, **request)  # checks; members are made only when streamed
    token = secrets.token_urlsafe(18)
    store.put(session, "export", token, dict(request))
    return f"{EXPORT_PATH}/{session}/{token}.zip", filename


def register_export_route(server: Flask, config: AppConfig, routes_prefix: str = "/") -> None:
    """Stream ticketed exports at ``<routes_prefix>_segx/export/<session>/<token>.zip`` (404 for an unknown ticket,
    410 when what it exports has expired)."""

    def serve_export(session: str, token: str) -> Response:
        if not (_URL_PART.match(session) and _URL_PART.match(token)):
            abort(404)
        store = get_store(config)
        try:
            request = store.get(session, "export", token)
        except ValueError:  # not a valid session id
            abort(404)
        if request is None:
            abort(404)
        try:
            members, filename = metrics.export_members(store, session, **request)
        except ValueError as err:
            return Response(str(err), status=410, mimetype="text/plain")
        from dashboard.usecases.export import stream_zip

        response = Response(stream_with_context(stream_zip(members)), mimetype="application/zip")
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        response.headers["Cache-Control"] = "private, no-store"
        return response

    server.add_url_rule(f"{routes_prefix}{EXPORT_PATH}/<session>/<token>.zip", endpoint="segx_export",
                        view_func=serve_export)  # fmt: skip
