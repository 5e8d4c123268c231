"""Rate limiting with Flask-Limiter, counted in Redis so every web process shares the counts."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from moderation.config import Settings

# Created bare and bound in the app factory; views decorate with ``@limiter.limit(...)``.
limiter = Limiter(key_func=get_remote_address, headers_enabled=True, strategy="moving-window")


def init_limiter(app: Flask, settings: Settings) -> None:
    """Bind the limiter to this app, storing counters at the configured Redis."""
    app.config["RATELIMIT_STORAGE_URI"] = settings.ratelimit_storage_url or settings.broker_url
    app.config["RATELIMIT_KEY_PREFIX"] = f"moderation-ratelimit:{settings.task_queue}"
    app.config["RATELIMIT_ENABLED"] = settings.ratelimit_enabled
    # A Redis outage must not take the API down with it; the limits are best effort then.
    app.config["RATELIMIT_SWALLOW_ERRORS"] = True
    limiter.init_app(app)
