"""Reading a site key the way each protocol sends it."""

from __future__ import annotations

from flask import request


def bearer_key() -> str | None:
    """The key of ``Authorization: Bearer KEY`` (OpenAI's clients), or None."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()
