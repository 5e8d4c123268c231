"""The DSA exports of the site API: ``/api/v1/dsa``, with the site's secret key.

``GET /api/v1/dsa/statements?since=&until=`` answers the site's statements of reasons issued
in that period, in the Transparency Database's layout; ``GET /api/v1/dsa/report`` the
transparency report's figures.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import Blueprint, request
from pydantic import BaseModel, Field

from moderation.api.auth import authenticated_site
from moderation.api.errors import ApiError
from moderation.api.openapi import Answer, Tag, documented
from moderation.api.parsing import refuse_nul_characters
from moderation.api.public import limit_per_site_key
from moderation.api.responses import TransparencyPeriod, TransparencyReport
from moderation.app_state import db_session
from moderation.dsa.report import transparency_report
from moderation.dsa.transparency import ExportError, export, statements_in_period

dsa_api = Blueprint("dsa_api", __name__, url_prefix="/api/v1/dsa")
limit_per_site_key(dsa_api)
dsa_api.before_request(refuse_nul_characters)
MAX_STATEMENTS = 10_000

DSA = Tag(
    "dsa",
    "The EU Digital Services Act: notices of illegal content, statements of reasons and "
    "appeals from readers' browsers (the publishable key in the path, as the widget), and the "
    "site's Transparency Database export and transparency report (the secret key).",
)


class DsaPeriodQuery(BaseModel):
    """The period asked, as ``period`` reads it."""

    since: datetime | date = Field(
        description="ISO 8601, included: a time (UTC when it has no offset) or a date "
        "(midnight UTC)"
    )
    until: datetime | date = Field(description="ISO 8601 like `since`, excluded; after `since`")


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
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        moment.astimezone(UTC)  # the database compares in UTC (0001-01-01T00:00+01:00 is not)
    except OverflowError:
        raise ApiError(400, "invalid_period", f"{name} is out of range", name) from None
    return moment


@dsa_api.get("/statements")
@documented(
    "dsaExportStatements",
    Answer(200, TransparencyPeriod, "the statements issued in the period"),
    tag=DSA,
    query=DsaPeriodQuery,
    errors=(400, 401, 422),
)
def statements():
    """The site's statements of reasons of a period, as the Transparency Database takes them.

    400 `invalid_period` for a missing, unreadable or inverted period; `too_many` when the
    period holds too many statements to answer at once (ask a shorter one)."""
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
@documented(
    "dsaTransparencyReport",
    Answer(200, TransparencyReport, "the period's figures"),
    tag=DSA,
    query=DsaPeriodQuery,
    errors=(400, 401, 422),
)
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
