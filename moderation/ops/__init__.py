"""The admins' ops page at /ops: the facts of `moderation status` and a 24-hour chart."""

from __future__ import annotations

from flask import Blueprint

ops = Blueprint(
    "ops",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/ops/static",
)

from moderation.ops import views  # noqa: E402, F401  (registers routes)
