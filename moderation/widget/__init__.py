"""The embeddable comment widget: one script and one stylesheet, served by the app.

A page embeds it with ``<div data-article-id="...">`` and
``<script src="https://<this service>/widget/v1/comments.js" data-key="mpk_..." defer>``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

STATIC_DIR = Path(__file__).parent / "static"
FILES = {"comments.js", "comments.css"}
# Browsers re-check after five minutes, so a new widget version reaches readers quickly.
MAX_AGE = 300

widget = Blueprint("widget", __name__, url_prefix="/widget/v1")


@widget.get("/<name>")
def asset(name: str) -> Response:
    """The widget's script or stylesheet, cacheable and usable from any site's page."""
    if name not in FILES:
        return Response("not found\n", status=404, mimetype="text/plain")
    response = send_from_directory(STATIC_DIR, name, max_age=MAX_AGE)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
