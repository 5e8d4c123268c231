"""Rate limiting with Flask-Limiter, counted in Redis so every web process shares the counts."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterable

from flask import Flask, Response, current_app, g, has_request_context
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, WindowStats, parse_many
from limits.storage import RedisStorage
from limits.strategies import STRATEGIES, MovingWindowRateLimiter
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from moderation.config import Settings

log = logging.getLogger(__name__)


class MovingWindowWithStats(MovingWindowRateLimiter):
    """The moving window, where a hit on Redis reads the window's figures in the same round
    trip: the ``X-RateLimit-*`` headers of the request then cost no second call.

    Flask-Limiter hits each limit before the view and asks for its figures after it; the
    figures read with the hit are kept for the rest of the request and given once.
    """

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        storage = self.storage
        if not (has_request_context() and _pipelines(storage)):
            return super().hit(item, *identifiers, cost=cost)
        key = storage.prefixed_key(item.key_for(*identifiers))
        now, expiry = time.time(), item.get_expiry()
        acquire, window = storage.lua_acquire_moving_window, storage.lua_moving_window
        pipe = storage.get_connection().pipeline(transaction=False)
        # By digest: a Script on a pipeline would ask Redis whether it is loaded each time.
        pipe.evalsha(acquire.sha, 1, key, now, item.amount, expiry, cost)
        pipe.evalsha(window.sha, 1, key, now - expiry, item.amount)
        taken, figures = pipe.execute(raise_on_error=False)
        if isinstance(taken, NoScriptError):  # the hit did not count: ask again
            _load_forgotten(storage, [(acquire, taken), (window, figures)])
            return self.hit(item, *identifiers, cost=cost)
        if isinstance(taken, Exception):
            raise taken
        if _load_forgotten(storage, [(window, figures)]):
            # The hit counted; only the figures are asked again (never the hit twice).
            figures = window([key], [now - expiry, item.amount])
        elif isinstance(figures, Exception):
            raise figures
        start, used = (float(figures[0]), int(figures[1])) if figures else (now, 0)
        _read_with_hit()[key] = WindowStats(start + expiry, item.amount - used)
        return bool(taken)

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        if has_request_context() and _pipelines(self.storage):
            key = self.storage.prefixed_key(item.key_for(*identifiers))
            figures = _read_with_hit().pop(key, None)
            if figures is not None:
                return figures
        return super().get_window_stats(item, *identifiers)


def _pipelines(storage: object) -> bool:
    """Whether the storage is Redis with the limits library's moving-window scripts."""
    return isinstance(storage, RedisStorage) and hasattr(storage, "lua_acquire_moving_window")


_READ_WITH_HIT = "ratelimit_read_with_hit"


def _read_with_hit() -> dict[str, WindowStats]:
    return g.setdefault(_READ_WITH_HIT, {})


def _load_forgotten(storage: RedisStorage, answers: Iterable[tuple[Script, object]]) -> bool:
    """Load again each script whose answer is a ``NoScriptError`` (a restarted Redis forgot
    it), and only those; whether any was."""
    forgotten = {
        script.sha: script for script, answer in answers if isinstance(answer, NoScriptError)
    }
    for script in forgotten.values():
        storage.get_connection().script_load(script.script)
    return bool(forgotten)


STRATEGIES["moving-window-with-stats"] = MovingWindowWithStats  # type: ignore[assignment]

# Created bare and bound in the app factory; views decorate with ``@limiter.limit(...)``.
limiter = Limiter(
    key_func=get_remote_address, headers_enabled=True, strategy="moving-window-with-stats"
)


def init_limiter(app: Flask, settings: Settings) -> None:
    """Bind the limiter to this app, storing counters at the configured Redis."""
    app.config["RATELIMIT_STORAGE_URI"] = settings.ratelimit_storage_url or settings.broker_url
    app.config["RATELIMIT_KEY_PREFIX"] = f"moderation-ratelimit:{settings.task_queue}"
    app.config["RATELIMIT_ENABLED"] = settings.ratelimit_enabled
    # A Redis outage must not take the API down with it; the limits are best effort then.
    app.config["RATELIMIT_SWALLOW_ERRORS"] = True
    # Flask runs after-request hooks last registered first: these two bracket the limiter's.
    app.after_request(_settle_retry_after)
    limiter.init_app(app)
    app.after_request(_remember_retry_after)
    # Figures read with a hit belong to that request; none may reach another one that
    # shares the application context (tests, scripts).
    app.teardown_request(lambda _exc=None: g.pop(_READ_WITH_HIT, None))


def _remember_retry_after(response: Response) -> Response:
    """Keep the ``Retry-After`` the service itself set (a 503's advice, an invalid key's
    wait) before the limiter's header hook rewrites it."""
    g.service_retry_after = response.headers.get("Retry-After")
    return response


def _settle_retry_after(response: Response) -> Response:
    """The ``Retry-After`` a client sees: the service's own where it set one; on a 429 of
    the limiter, whole seconds rounded up (the limiter truncates, which can say 0); and
    none on other answers, which the limiter would otherwise stamp with its window."""
    own = g.pop("service_retry_after", None)
    if own is not None:
        response.headers["Retry-After"] = own
    elif response.status_code == 429:
        response.headers["Retry-After"] = str(max(1, _whole_seconds(response.headers)))
    else:
        response.headers.pop("Retry-After", None)
    return response


def _whole_seconds(headers) -> int:
    """Seconds until the limiter's window resets, rounded up."""
    try:
        return math.ceil(float(headers.get("X-RateLimit-Reset", "")) - time.time())
    except ValueError:
        return 1


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


AUTHOR_SCOPE = "author-comments"


def author_wait(site_id: int, author_id: str, limit: str) -> float | None:
    """Count one comment of this author on this site; seconds to wait when over ``limit``.

    The site's own per-author limit (``SiteRules.author_rate_limit``), checked on every
    ingest path after the request is valid and before anything is written. Counted in the
    limiter's storage; without Redis nobody is turned away.
    """
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return None
    key = f"{site_id}:{hashlib.sha256(author_id.encode()).hexdigest()[:32]}"
    items = parse_many(limit)
    try:
        over = _acquire_all(items, AUTHOR_SCOPE, key)
        if over is not None:
            reset = limiter.limiter.get_window_stats(over, AUTHOR_SCOPE, key).reset_time
            return max(1.0, math.ceil(reset - time.time()))
    except Exception as exc:  # the storage's own errors vary with the backend
        log.warning("author limit not checked: %r", exc)
    return None


def _acquire_all(items: list[RateLimitItem], *identifiers: str) -> RateLimitItem | None:
    """Take one entry in every window, as ``hit`` on each in turn would; the first window
    that is full, else None.

    On Redis, every window is asked in one pipelined round trip (with the limits library's
    own moving-window script); the entries taken in the windows after a full one are given
    back, so a refused comment counts in none that ``hit`` would not have reached.
    """
    storage = limiter.limiter.storage
    if not _pipelines(storage) or not isinstance(limiter.limiter, MovingWindowRateLimiter):
        for item in items:
            if not limiter.limiter.hit(item, *identifiers):
                return item
        return None
    keys = [storage.prefixed_key(item.key_for(*identifiers)) for item in items]
    script = storage.lua_acquire_moving_window
    pipe = storage.get_connection().pipeline(transaction=False)
    now = time.time()
    for item, key in zip(items, keys, strict=True):
        # By digest: a Script on a pipeline would ask Redis whether it is loaded each time.
        pipe.evalsha(script.sha, 1, key, now, item.amount, item.get_expiry(), 1)
    taken = pipe.execute(raise_on_error=False)
    if _load_forgotten(storage, [(script, answer) for answer in taken]):
        return _acquire_all(items, *identifiers)  # no entry was taken: ask again
    if error := next((answer for answer in taken if isinstance(answer, Exception)), None):
        raise error
    full = next((i for i, ok in enumerate(taken) if not ok), None)
    if full is None:
        return None
    later = [key for key, ok in zip(keys[full + 1 :], taken[full + 1 :], strict=True) if ok]
    if later:
        undo = storage.get_connection().pipeline(transaction=False)
        for key in later:
            undo.lpop(key)  # the script pushed our entry at the head
        undo.execute()
    return items[full]
