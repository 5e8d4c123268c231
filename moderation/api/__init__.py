"""The JSON API under ``/api/v1``."""

from flask import Blueprint

api_v1 = Blueprint("api_v1", __name__, url_prefix="/api/v1")

from moderation.api import (  # noqa: E402, F401  (registers routes)
    articles,
    calibration,
    comments,
    community,
    dsa_public,
    moderation,
    openapi,
    webhooks,
)
from moderation.api.parsing import refuse_nul_characters  # noqa: E402
from moderation.api.public import limit_per_site_key  # noqa: E402

limit_per_site_key(api_v1)
api_v1.before_request(refuse_nul_characters)
