"""Calibration from moderators' decisions over the API: the what-if replay and the CSV export.

Both take ``site`` (a name; all of the moderator's sites when left out), ``since`` and
``until`` (UTC, ISO 8601; the last 30 days when left out) and a moderator token.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from flask import Response, request
from pydantic import BaseModel, Field, create_model
from sqlalchemy import select

from moderation.api import api_v1
from moderation.api.errors import ApiError
from moderation.api.moderation import authenticated_moderator, moderator_operation
from moderation.api.openapi import Answer
from moderation.api.responses import WhatIf as WhatIfBody
from moderation.app_state import app_state, db_session, live_model_thresholds
from moderation.db import utcnow
from moderation.models import Moderator, Site
from moderation.policy import LABELS
from moderation.schemas import Omitted
from moderation.services.labelled_export import (
    csv_lines,
    export_filename,
    export_rows,
    plan_export,
)
from moderation.services.moderation import Scope, in_scope
from moderation.services.moderators import visible_sites
from moderation.services.what_if import (
    CalibrationError,
    Period,
    SiteWhatIf,
    Tally,
    WhatIf,
    parse_period,
    parse_thresholds,
    what_if,
)

_PERIOD_ARGS = ("site", "since", "until")
_MOMENT = "UTC, ISO 8601 date or date-time; a date alone for until includes that day"


class PeriodQuery(BaseModel):
    """Whose decisions, and when: the moderator's sites over the last 30 days by default."""

    site: str | Omitted = Field(None, description="a site's name; all the moderator's if left out")
    since: str | Omitted = Field(None, description=_MOMENT)
    until: str | Omitted = Field(None, description=_MOMENT)


_THRESHOLD = "proposed hold threshold for {}; the site's current if left out"
WhatIfQuery = create_model(
    "WhatIfQuery",
    __base__=PeriodQuery,
    __doc__="The period, and a proposed hold threshold per label.",
    **{
        label: (float | Omitted, Field(None, ge=0, le=1, description=_THRESHOLD.format(label)))
        for label in LABELS
    },
)


@api_v1.get("/moderation/what-if")
@moderator_operation(
    "moderationWhatIf",
    Answer(200, WhatIfBody, "the counts"),
    query=WhatIfQuery,
    errors=(400, 401, 404, 422),
)
def moderation_what_if():
    """What proposed thresholds would have done with moderators' decisions.

    Comments whose latest moderator decision falls in the period, replayed against the
    proposed hold threshold per label (any label at or above its threshold holds the
    comment): approvals that would have been held, rejections that would have been
    published, and the same at the current thresholds. Any other query parameter is an
    unknown label (400).
    """
    moderator, scope = authenticated_moderator()
    labels = [(k, v) for k, v in request.args.items(multi=True) if k not in _PERIOD_ARGS]
    try:
        proposed = parse_thresholds(labels)
        period = _period()
    except CalibrationError as exc:
        raise ApiError(400, exc.code, exc.message, exc.field) from None
    sites = _sites(moderator, scope)
    return what_if_body(what_if(db_session(), sites, period, proposed, live_model_thresholds()))


@api_v1.get("/moderation/export.csv")
@moderator_operation(
    "moderationExport",
    Answer(200, None, "the CSV, streamed", media_type="text/csv"),
    query=PeriodQuery,
    errors=(400, 401, 404, 422),
)
def moderation_export():
    """Moderator-labelled comments in the period as a training CSV, streamed.

    Columns id, text, label_toxic (1 rejected, 0 approved), severe_toxicity, obscene,
    threat, insult, identity_attack (empty), source (moderation:<site>), domain
    (news_comment), orig_label, license: the layout `moderation model build --train` and
    `moderation evaluate` read. The text is verbatim, with no guard against spreadsheet
    formulas: the file is for training, not for opening in a spreadsheet.
    """
    moderator, scope = authenticated_moderator()
    try:
        period = _period()
    except CalibrationError as exc:
        raise ApiError(400, exc.code, exc.message, exc.field) from None
    sites = _sites(moderator, scope)
    export = plan_export(db_session(), sites, period)
    return csv_download(export_rows(app_state().sessions, export), sites, period)


def csv_download(rows: Iterable[Sequence[str]], sites: list[Site], period: Period) -> Response:
    """A streamed CSV download named after the site and period (API and moderator page)."""
    return Response(
        csv_lines(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{export_filename(sites, period)}"'},
    )


def _period() -> Period:
    return parse_period(request.args.get("since"), request.args.get("until"), now=utcnow())


def _sites(moderator: Moderator, scope: Scope) -> list[Site]:
    name = request.args.get("site")
    if not name:
        return visible_sites(db_session(), moderator)
    query = select(Site).where(Site.name == name, in_scope(Site.id, scope))
    site = db_session().scalars(query).one_or_none()
    if site is None:
        raise ApiError(404, "not_found", "no such site", "site")
    return [site]


# ------------------------------------------------------------------------------ shapes


def what_if_body(result: WhatIf) -> dict[str, Any]:
    """The replay as JSON: totals over the sites, then each site with its thresholds."""
    return {
        "period": {
            "since": result.period.since.isoformat(),
            "until": result.period.until.isoformat(),
        },
        "asked": result.asked,
        "approved": result.approved,
        "rejected": result.rejected,
        "decided": result.decided,
        "unscored": result.unscored,
        "current": _tally(result.current),
        "proposed": _tally(result.proposed),
        "sites": [_site(site) for site in result.sites],
    }


def _site(site: SiteWhatIf) -> dict[str, Any]:
    return {
        "site": site.site,
        "approved": site.approved,
        "rejected": site.rejected,
        "decided": site.decided,
        "unscored": site.unscored,
        "current": _tally(site.current) | {"thresholds": site.current_thresholds},
        "proposed": _tally(site.proposed) | {"thresholds": site.proposed_thresholds},
    }


def _tally(tally: Tally) -> dict[str, int]:
    return {"approved_held": tally.approved_held, "rejected_published": tally.rejected_published}
