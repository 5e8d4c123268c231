"""Rate limiting with Flask-Limiter, counted in Redis so every web process shares the counts."""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many

from moderation.config import Settings

log = logging.getLogger(__name__)

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


def too_many_failures(scope: str, limit: str, client: str) -> float | None:
    """Seconds to wait when ``client`` already failed ``limit`` times in ``scope``, else None.

    Checked before the work a failure costs (a key lookup in the database): a client that
    sends made-up keys is turned away without a query. Counted in the limiter's storage, so
    every web process shares the count; without Redis nobody is turned away.
    """
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return None
    try:
        for item in parse_many(limit):
            if not limiter.limiter.test(item, scope, client):
                reset = limiter.limiter.get_window_stats(item, scope, client).reset_time
                return max(1.0, math.ceil(reset - time.time()))
    except Exception as exc:  # the storage's own errors vary with the backend
        log.warning("failure limit not checked: %r", exc)
    return None


def record_failure(scope: str, limit: str, client: str) -> None:
    """Count one failure of ``client`` in ``scope``; best effort."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    try:
        for item in parse_many(limit):
            limiter.limiter.hit(item, scope, client)
    except Exception as exc:
        log.warning("failure not counted: %r", exc)
