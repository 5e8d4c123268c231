"""The one reader of ``Authorization: Bearer <token>``: site keys, moderator and metrics tokens."""

from __future__ import annotations

from flask import request


def bearer_key() -> str | None:
    """The token of the request's ``Authorization: Bearer TOKEN`` header, or None."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()
