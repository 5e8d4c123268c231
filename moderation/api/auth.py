"""Site authentication with ``Authorization: Bearer <site key>``."""

from __future__ import annotations

from flask import request

from moderation.api.errors import ApiError
from moderation.app_state import db_session
from moderation.models import Site
from moderation.services.sites import site_for_api_key

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="moderation"'}


def bearer_key() -> str | None:
    """The key of ``Authorization: Bearer KEY``, or None."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


def authenticated_site() -> Site:
    """The site whose key the request carries, or a 401."""
    key = bearer_key()
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            "send the site key as 'Authorization: Bearer <key>'",
            headers=_CHALLENGE,
        )
    site = site_for_api_key(db_session(), key)
    if site is None:
        raise ApiError(401, "unauthorized", "the site key is not valid", headers=_CHALLENGE)
    return site
