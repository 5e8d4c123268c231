"""The DSA exports of the site API: ``/api/v1/dsa``, with the site's secret key.

``GET /api/v1/dsa/statements?since=&until=`` answers the site's statements of reasons issued
in that period, in the Transparency Database's layout; ``GET /api/v1/dsa/report`` the
transparency report's figures.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, request

from moderation.api.auth import authenticated_site
from moderation.api.errors import ApiError
from moderation.api.parsing import refuse_nul_characters
from moderation.api.public import limit_per_site_key
from moderation.app_state import db_session
from moderation.dsa.report import transparency_report
from moderation.dsa.transparency import ExportError, export, statements_in_period

dsa_api = Blueprint("dsa_api", __name__, url_prefix="/api/v1/dsa")
limit_per_site_key(dsa_api)
dsa_api.before_request(refuse_nul_characters)
MAX_STATEMENTS = 10_000


def period() -> tuple[datetime, datetime]:
    """``since`` and ``until`` from the query (ISO 8601; a date is midnight UTC), or a 400."""
    since, until = _moment("since"), _moment("until")
    if until <= since:
        raise ApiError(400, "invalid_period", "until must be after since", "until")
    return since, until


def _moment(name: str) -> datetime:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        raise ApiError(400, "invalid_period", f"{name} is required (ISO 8601)", name)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "invalid_period", f"{name} is not an ISO 8601 time", name) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dsa_api.get("/statements")
def statements():
    """The site's statements of reasons of a period, as the Transparency Database takes them."""
    site = authenticated_site()
    since, until = period()
    try:
        found = statements_in_period(db_session(), [site.id], since, until)
    except ExportError as exc:
        raise ApiError(400, "invalid_period", str(exc), "until") from None
    if len(found) > MAX_STATEMENTS:
        raise ApiError(400, "too_many", f"over {MAX_STATEMENTS} statements: ask a shorter period")
    return {"since": since.isoformat(), "until": until.isoformat(), "statements": export(found)}


@dsa_api.get("/report")
def report():
    """The transparency report's figures for a period."""
    site = authenticated_site()
    since, until = period()
    figures = transparency_report(db_session(), [site.id], since, until)
    return {
        "rows": [
            {"section": section, "item": item, "value": value}
            for section, item, value in figures.rows()
        ]
    }
