"""The photo under every figure, served once per image by URL instead of embedded in each figure.

The mask figure and every heatmap card draw the same photo under their overlays. Embedded as a PNG data URI it was
sent once per figure (six cards: ~260 KB of a ~510 KB selection response on the demo model). Instead each figure has
a layout image pointing at ``_segx/photo/<session>/<image key>.png`` (plotly.js image traces take data URIs only); the
browser fetches it once and keeps it, since the key is the image's content hash (the response is immutable). The URL
is relative, so it resolves under whatever path prefix the app is served at.
"""

from __future__ import annotations

import base64
import re

from flask import Flask, Response, abort

from dashboard.config import AppConfig
from dashboard.state.resources import get_store

PHOTO_PATH = "_segx/photo"
_URL_PART = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")


def photo_url(session: str, image_key: str) -> str:
    """The (relative) URL of a stored image's photo PNG."""
    return f"{PHOTO_PATH}/{session}/{image_key}.png"


def png_bytes(data_uri: str) -> bytes:
    """The PNG bytes of a ``data:image/png;base64,...`` URI."""
    header, _, payload = data_uri.partition(",")
    if header != "data:image/png;base64":
        raise ValueError("not a base64 PNG data URI")
    return base64.b64decode(payload)


def register_photo_route(server: Flask, config: AppConfig, routes_prefix: str = "/") -> None:
    """Serve stored photos at ``<routes_prefix>_segx/photo/<session>/<key>.png`` (404 for unknown or expired ones)."""

    def serve_photo(session: str, image_key: str) -> Response:
        if not (_URL_PART.match(session) and _URL_PART.match(image_key)):
            abort(404)
        try:
            uri = get_store(config).get(session, "png", image_key)
        except ValueError:  # not a valid session id
            abort(404)
        if uri is None:
            abort(404)
        response = Response(png_bytes(uri), mimetype="image/png")
        response.headers["Cache-Control"] = "private, max-age=86400, immutable"
        return response

    server.add_url_rule(
        f"{routes_prefix}{PHOTO_PATH}/<session>/<image_key>.png", endpoint="segx_photo", view_func=serve_photo
    )
