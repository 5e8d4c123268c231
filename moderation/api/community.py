"""Moderators' community tools as JSON: dismiss reports, read an author's standing, sanctions.

The same moderator token and scope as the rest of the moderation API: another site's
comment, author or sanction is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from moderation.api import api_v1
from moderation.api.errors import ApiError
from moderation.api.moderation import (
    answer_action,
    authenticated_moderator,
    body_string,
    bulk_result,
    moderator_operation,
)
from moderation.api.openapi import Answer
from moderation.api.parsing import json_object
from moderation.api.responses import AuthorStanding, ModerationOutcome, Sanction, SanctionResult
from moderation.app_state import db_session
from moderation.models import AuthorSanction, Site
from moderation.schemas import Omitted
from moderation.services.authors import (
    SanctionRefused,
    author_standing,
    in_force,
    lift_sanction,
    sanction_author,
    sanction_for_site_ids,
)
from moderation.services.moderation import (
    QUICK_REJECT_REASONS,
    ModerationError,
    Scope,
    comment_for_moderator,
    dismiss_reports,
    in_scope,
)

RejectReason = Literal[tuple(QUICK_REJECT_REASONS)]  # type: ignore[valid-type]


class ReportsDismissal(BaseModel):
    """Dismiss a comment's open reports."""

    version: str | Omitted = Field(None, description="from a read; a stale one is a 409")


class SanctionRequest(BaseModel):
    """A sanction on an author: what, why, until when."""

    kind: Literal["warn", "suspend", "ban", "premoderate"]
    reason: str = Field(
        min_length=1, max_length=1000, description="why; a warning shows it to the author"
    )
    ends_at: datetime | Omitted = Field(
        None, description="ISO 8601 with a time zone, in the future; required to suspend"
    )
    reject_published: bool | Omitted = Field(
        None, description="a ban only: also reject the author's published and held comments"
    )
    reject_reason: RejectReason | Omitted = Field(
        None, description="the reason those comments are rejected with (default abusive)"
    )


class SanctionLift(BaseModel):
    """Lift a sanction, with a reason."""

    reason: str = Field(min_length=1, max_length=1000)


@api_v1.post("/moderation/comments/<public_id>/dismiss-reports")
@moderator_operation(
    "dismissReports",
    Answer(200, ModerationOutcome, "reports closed; the comment is published"),
    body=ReportsDismissal,
    body_required=False,
    errors=(400, 401, 404, 409, 413, 415, 422),
)
def dismiss(public_id: str):
    """Close a comment's open reports; one the reports sent back to held is published again."""
    moderator, scope = authenticated_moderator()
    body = json_object(optional=True)
    session = db_session()
    comment = comment_for_moderator(session, scope, public_id)
    if comment is None:
        raise ApiError(404, "not_found", "no such comment")
    version = body_string(body, "version")
    return answer_action(
        session,
        lambda: dismiss_reports(
            session, comment, moderator, expected_version=version, source="api"
        ),
    )


@api_v1.get("/moderation/authors/<site_name>/<path:author_id>")
@moderator_operation(
    "authorStanding", Answer(200, AuthorStanding, "the author on that site"), errors=(401, 404)
)
def standing(site_name: str, author_id: str):
    """An author's counts per outcome, reports, recent comments and sanctions on a site."""
    _moderator, scope = authenticated_moderator()
    session = db_session()
    site = _site(scope, site_name)
    found = author_standing(session, site, author_id)
    if found is None:
        raise ApiError(404, "not_found", "no such author on this site")
    return {
        "site": site.name,
        "author_id": found.author_id,
        "author_name": found.author_name,
        "counts": found.counts,
        "recent": [
            {
                "id": comment.public_id,
                "article_id": comment.article.external_id,
                "status": comment.status,
                "text": comment.text,
                "created_at": comment.created_at.isoformat(),
            }
            for comment in found.recent
        ],
        "sanctions": [sanction_body(sanction, site) for sanction in found.sanctions],
    }


@api_v1.post("/moderation/authors/<site_name>/<path:author_id>/sanctions")
@moderator_operation(
    "sanctionAuthor",
    Answer(201, SanctionResult, "the sanction is in force"),
    body=SanctionRequest,
    errors=(400, 401, 404, 413, 415, 422),
)
def sanction(site_name: str, author_id: str):
    """Warn, suspend until a time, ban (optionally rejecting their comments) or pre-moderate."""
    moderator, scope = authenticated_moderator()
    body = json_object()
    session = db_session()
    site = _site(scope, site_name)
    kind = body_string(body, "kind") or ""
    reject = body.get("reject_published") or False
    if not isinstance(reject, bool):
        raise ApiError(422, "invalid", "reject_published must be true or false", "reject_published")
    try:
        done = sanction_author(
            session,
            site,
            author_id,
            moderator,
            kind,
            body_string(body, "reason") or "",
            ends_at=_moment(body.get("ends_at")),
            reject_published=reject,
            reject_reason=_reject_reason(body),
            source="api",
        )
    except SanctionRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.field) from None
    except ModerationError as exc:
        raise ApiError(422, exc.code, exc.message, exc.field) from None
    session.commit()
    return {
        "sanction": sanction_body(done.sanction, site),
        "rejected": [bulk_result(o.comment.public_id, o) for o in done.rejected],
    }, 201


@api_v1.post("/moderation/sanctions/<public_id>/lift")
@moderator_operation(
    "liftSanction",
    Answer(200, Sanction, "lifted"),
    body=SanctionLift,
    errors=(400, 401, 404, 409, 413, 415, 422),
)
def lift(public_id: str):
    """Lift a sanction; the row stays in the author's history with who lifted it and why."""
    moderator, scope = authenticated_moderator()
    body = json_object()
    session = db_session()
    found = sanction_for_site_ids(session, scope, public_id)
    if found is None:
        raise ApiError(404, "not_found", "no such sanction")
    try:
        lift_sanction(session, found, moderator, body_string(body, "reason") or "")
    except SanctionRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.field) from None
    session.commit()
    return sanction_body(found, session.get(Site, found.site_id))


def sanction_body(sanction: AuthorSanction, site: Site) -> dict[str, Any]:
    """A sanction as the API shows it."""
    return {
        "id": sanction.public_id,
        "site": site.name,
        "author_id": sanction.author_id,
        "kind": sanction.kind,
        "reason": sanction.reason,
        "ends_at": _iso(sanction.ends_at),
        "created_at": sanction.created_at.isoformat(),
        "created_by": sanction.created_by,
        "acknowledged_at": _iso(sanction.acknowledged_at),
        "lifted_at": _iso(sanction.lifted_at),
        "lifted_by": sanction.lifted_by,
        "lift_reason": sanction.lift_reason,
        "in_force": in_force(sanction),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _site(scope: Scope, name: str) -> Site:
    query = select(Site).where(Site.name == name, in_scope(Site.id, scope))
    site = db_session().scalars(query).one_or_none()
    if site is None:
        raise ApiError(404, "not_found", "no such site", "site")
    return site


def _moment(raw: Any) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ApiError(422, "invalid", "ends_at must be an ISO 8601 time", "ends_at")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, "invalid", "ends_at must be an ISO 8601 time", "ends_at") from None
    if moment.tzinfo is None:
        raise ApiError(422, "invalid", "ends_at needs a time zone (Z or +01:00)", "ends_at")
    return moment


def _reject_reason(body: dict[str, Any]) -> str:
    reason = body_string(body, "reject_reason") or "abusive"
    if reason not in QUICK_REJECT_REASONS:
        choices = ", ".join(QUICK_REJECT_REASONS)
        raise ApiError(422, "invalid", f"reject_reason must be one of: {choices}", "reject_reason")
    return reason
