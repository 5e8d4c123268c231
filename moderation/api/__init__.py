"""The JSON API under ``/api/v1``."""

from flask import Blueprint

api_v1 = Blueprint("api_v1", __name__, url_prefix="/api/v1")

from moderation.api import comments, openapi  # noqa: E402, F401  (registers routes)
