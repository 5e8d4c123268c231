"""Site authentication with ``Authorization: Bearer <site key>``."""

from __future__ import annotations

from collections.abc import Callable

from flask_limiter.util import get_remote_address

from moderation.api.errors import ApiError
from moderation.app_state import app_state, db_session
from moderation.bearer import bearer_key
from moderation.limits import author_wait, record_failure, too_many_failures
from moderation.models import Site
from moderation.services.integration import site_rules
from moderation.services.sites import cached_site, site_for_api_key

INVALID_KEY_SCOPE = "invalid-key"

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="moderation"'}


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
    # A key seen in the last seconds costs no query, so it skips the invalid-key count too.
    site = cached_site(db_session(), key) or site_for_key(
        lambda: site_for_api_key(db_session(), key)
    )
    if site is None:
        raise ApiError(401, "unauthorized", "the site key is not valid", headers=_CHALLENGE)
    return site


def site_for_key(lookup: Callable[[], Site | None]) -> Site | None:
    """Run a key lookup, unless this client sent too many invalid keys lately (a 429).

    Every kind of key (secret, publishable, the compatible APIs') goes through here, so a
    flood of made-up keys from one address costs the database nothing after the first few.
    """
    client = get_remote_address() or "unknown"
    limit = app_state().settings.ratelimit_invalid_key
    wait = too_many_failures(INVALID_KEY_SCOPE, limit, client)
    if wait is not None:
        raise ApiError(
            429,
            "too_many_invalid_keys",
            "too many requests with keys that are not valid; try again later",
            headers={"Retry-After": str(int(wait))},
        )
    site = lookup()
    if site is None:
        record_failure(INVALID_KEY_SCOPE, limit, client)
    return site


def refuse_when_author_over_limit(site: Site, author_id: str) -> None:
    """A 429 with ``Retry-After`` when this author is over the site's per-author limit.

    Every ingest path calls it (the site API and the widget), after the request is valid and
    before anything is written.
    """
    limit = site_rules(site).author_rate_limit or app_state().settings.ratelimit_author
    wait = author_wait(site.id, author_id, limit)
    if wait is not None:
        raise ApiError(
            429,
            "author_rate_limited",
            f"this author posted too many comments in a short time (limit {limit}); "
            "try again later",
            field="author_id",
            headers={"Retry-After": str(int(wait))},
        )
