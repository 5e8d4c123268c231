"""The moderator actions as JSON, for sites that build their own tools.

``Authorization: Bearer <moderator token>`` (``moderation create-moderator-token``); a token
acts as its moderator, on that moderator's sites only: another site's comment is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal

from flask import request
from pydantic import BaseModel, Field
from sqlalchemy import select

from moderation.api import api_v1
from moderation.api.errors import ApiError
from moderation.api.openapi import Answer, Security, Tag, documented
from moderation.api.parsing import MAX_ROW_ID, json_object, whole_number
from moderation.api.responses import (
    BulkResults,
    ModerationAuditPage,
    ModerationComment,
    ModerationOutcome,
    ModerationQueuePage,
)
from moderation.api.serializers import comment_detail
from moderation.app_state import db_session, live_model_thresholds
from moderation.bearer import bearer_key
from moderation.models import Article, AuditEvent, Moderator, Site, Status
from moderation.schemas import Omitted
from moderation.services.moderation import (
    MAX_BULK,
    REJECT_REASONS,
    UNDETERMINED,
    AuditFilter,
    Card,
    CursorError,
    ModerationError,
    Order,
    Outcome,
    Queue,
    QueueFilter,
    Result,
    Scope,
    audit_page,
    cards_for,
    comment_for_moderator,
    comment_version,
    comments_for_moderator,
    in_scope,
    language_filter,
    moderate,
    moderate_many,
    queue_counts,
    queue_page,
)
from moderation.services.moderators import moderator_for_token, visible_site_ids

MAX_PAGE = 100
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="moderation"'}

MODERATOR_TOKEN = Security(
    "moderatorToken",
    {
        "type": "http",
        "scheme": "bearer",
        "description": "A moderator's token (`moderation create-moderator-token`): it acts "
        "as that moderator, on their sites only.",
    },
)
MODERATION = Tag("moderation", "Moderators' tools, with a moderator token.")
moderator_operation = partial(documented, tag=MODERATION, security=MODERATOR_TOKEN)


# ------------------------------------------------------------------------------ what is read
# The bodies are read field by field below (``body_string``, ``_bulk_targets``); these models
# are what the document says of them.


class QueueQuery(BaseModel):
    """A queue page's filters, order and paging."""

    queue: Queue = Queue.HELD
    site: str | Omitted = Field(None, description="a site's name")
    article: str | Omitted = Field(None, description="the site's article id; needs `site`")
    q: str | Omitted = Field(None, description="words in the text")
    language: str | Omitted = Field(
        None, description=f"a detected language code such as `de`, or `{UNDETERMINED}`"
    )
    order: Order = Order.OLDEST
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    cursor: str | Omitted = Field(None, description="the previous page's `next_cursor`")


class AuditQuery(BaseModel):
    """The audit log's filters and paging."""

    site: str | Omitted = Field(None, description="a site's name")
    actor: str | Omitted = Field(None, description="a moderator's email, or `system`")
    to: Status | Omitted = Field(None, description="the status a comment was moved to")
    reason: str | Omitted = None
    comment: str | Omitted = Field(None, description="a comment's id")
    before: int | Omitted = Field(
        None, ge=0, le=MAX_ROW_ID, description="the previous page's `next_before`"
    )
    limit: int = Field(50, ge=1, le=MAX_PAGE)


RejectReason = Literal[tuple(REJECT_REASONS)]  # type: ignore[valid-type]


class ModerationAction(BaseModel):
    """An approval or rejection; every field is optional but ``reason`` to reject."""

    version: str | Omitted = Field(None, description="from a read; a stale one is a 409")
    reason: RejectReason | Omitted = Field(None, description="required to reject")
    note: str | Omitted = Field(
        None, max_length=1000, description="required with `illegal_content`: the explanation"
    )
    legal_ground: str | Omitted = Field(
        None,
        max_length=500,
        description="required with `illegal_content`: the law the comment breaks",
    )


class BulkTarget(BaseModel):
    """A comment of a bulk action, with the version the moderator saw."""

    id: str
    version: str | Omitted = None


class ModerationBulk(ModerationAction):
    """The same action on many comments."""

    action: Literal["approve", "reject"]
    comments: list[str | BulkTarget] = Field(min_length=1, max_length=MAX_BULK)


def authenticated_moderator() -> tuple[Moderator, Scope]:
    """The moderator whose token the request carries, and the sites they see; or a 401."""
    token = bearer_key()
    moderator = moderator_for_token(db_session(), token) if token else None
    if moderator is None:
        message = "send a moderator token as 'Authorization: Bearer <token>'"
        raise ApiError(401, "unauthorized", message, headers=_CHALLENGE)
    return moderator, visible_site_ids(db_session(), moderator)


# ------------------------------------------------------------------------------ reading


@api_v1.get("/moderation/queue")
@moderator_operation(
    "moderationQueue",
    Answer(200, ModerationQueuePage, "a page"),
    query=QueueQuery,
    errors=(401, 404, 422),
)
def moderation_queue():
    """A queue page with the counts of every queue; keyset-paginated with ``cursor``."""
    _moderator, scope = authenticated_moderator()
    session = db_session()
    filters = _queue_filter(scope)
    try:
        page = queue_page(session, scope, filters, request.args.get("cursor"), _limit(50))
    except CursorError as exc:
        raise ApiError(422, "invalid", str(exc), "cursor") from None
    return {
        "queue": filters.queue.value,
        "counts": queue_counts(session, scope, filters),
        "comments": [
            moderation_comment(card)
            for card in cards_for(session, page.comments, live_model_thresholds())
        ],
        "next_cursor": page.next_cursor,
    }


@api_v1.get("/moderation/comments/<public_id>")
@moderator_operation(
    "moderationComment", Answer(200, ModerationComment, "the comment"), errors=(401, 404)
)
def moderation_comment_detail(public_id: str):
    """One comment as a moderator sees it, with its whole history."""
    _moderator, scope = authenticated_moderator()
    session = db_session()
    comment = comment_for_moderator(session, scope, public_id)
    if comment is None:
        raise ApiError(404, "not_found", "no such comment")
    return moderation_comment(cards_for(session, [comment], live_model_thresholds())[0])


@api_v1.get("/moderation/audit")
@moderator_operation(
    "moderationAudit",
    Answer(200, ModerationAuditPage, "events"),
    query=AuditQuery,
    errors=(401, 404, 422),
)
def moderation_audit():
    """Audit events on the moderator's sites, newest first; ``before`` pages back."""
    _moderator, scope = authenticated_moderator()
    session = db_session()
    args = request.args
    to_status = args.get("to")
    if to_status is not None and to_status not in set(Status):
        raise ApiError(422, "invalid", "to must be a comment status", "to")
    filters = AuditFilter(
        site_id=_site_id(scope, args.get("site")),
        actor=args.get("actor") or None,
        to_status=to_status,
        reason=args.get("reason") or None,
        comment_public_id=args.get("comment") or None,
    )
    before = _int_arg("before")
    rows, next_before = audit_page(session, scope, filters, before, _limit(50))
    return {
        "events": [
            audit_event(row.event) | {"comment_id": row.comment_public_id, "site": row.site_name}
            for row in rows
        ],
        "next_before": next_before,
    }


# ------------------------------------------------------------------------------ actions


@api_v1.post("/moderation/comments/<public_id>/<any(approve, reject):action>")
@moderator_operation(
    "{action}Comment",
    Answer(200, ModerationOutcome, "applied, or unchanged as it already was"),
    body=ModerationAction,
    body_required=False,
    errors=(400, 401, 404, 409, 413, 415, 422),
)
def moderation_act(public_id: str, action: str):
    """Approve or reject a comment; ``version`` (from a read) makes a stale action a 409."""
    moderator, scope = authenticated_moderator()
    body = json_object(optional=True)
    session = db_session()
    comment = comment_for_moderator(session, scope, public_id)
    if comment is None:
        raise ApiError(404, "not_found", "no such comment")
    target = Status.APPROVED if action == "approve" else Status.REJECTED
    return answer_action(
        session,
        lambda: moderate(
            session,
            comment,
            moderator,
            target,
            body_string(body, "reason"),
            body_string(body, "note"),
            expected_version=body_string(body, "version"),
            source="api",
            legal_ground=body_string(body, "legal_ground"),
        ),
    )


@api_v1.post("/moderation/bulk")
@moderator_operation(
    "moderateBulk",
    Answer(200, BulkResults, "a result per comment"),
    body=ModerationBulk,
    errors=(400, 401, 413, 415, 422),
)
def moderation_bulk():
    """The same action on up to 100 comments: ``{"action", "comments": [{"id", "version"}]}``."""
    moderator, scope = authenticated_moderator()
    body = json_object(optional=True)
    action = body.get("action")
    if action not in ("approve", "reject"):
        raise ApiError(422, "invalid", "action must be 'approve' or 'reject'", "action")
    wanted = _bulk_targets(body.get("comments"))
    session = db_session()
    found = comments_for_moderator(session, scope, [public_id for public_id, _ in wanted])
    targets = [(found[public_id], version) for public_id, version in wanted if public_id in found]
    target = Status.APPROVED if action == "approve" else Status.REJECTED
    try:
        outcomes = moderate_many(
            session,
            moderator,
            targets,
            target,
            body_string(body, "reason"),
            body_string(body, "note"),
            source="api-bulk",
            legal_ground=body_string(body, "legal_ground"),
        )
    except ModerationError as exc:
        raise ApiError(422, exc.code, exc.message, exc.field) from None
    session.commit()
    by_id = {outcome.comment.public_id: outcome for outcome in outcomes}
    return {"results": [bulk_result(public_id, by_id.get(public_id)) for public_id, _ in wanted]}


def _bulk_targets(items: Any) -> list[tuple[str, str | None]]:
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BULK:
        message = f"comments must be a list of 1 to {MAX_BULK} comments"
        raise ApiError(422, "invalid", message, "comments")
    targets = []
    for item in items:
        if isinstance(item, str):
            targets.append((item, None))
        elif isinstance(item, dict) and isinstance(item.get("id"), str):
            targets.append((item["id"], body_string(item, "version", "comments.version")))
        else:
            message = "each comment is an id or an object {id, version}"
            raise ApiError(422, "invalid", message, "comments")
        # PostgreSQL can neither store nor compare a NUL.
        if "\x00" in targets[-1][0]:
            raise ApiError(422, "invalid", "a comment id must not contain NUL", "comments")
    return list(dict.fromkeys(targets))


def answer_action(session: Any, act: Callable[[], Outcome]) -> dict[str, Any]:
    """Run one moderator action and answer it: bad input is a 422 (nothing changed), a lost
    race a 409 (its audit row committed), else the outcome with the comment as it now is."""
    try:
        outcome = act()
    except ModerationError as exc:
        raise ApiError(422, exc.code, exc.message, exc.field) from None
    session.commit()
    if outcome.result is Result.CONFLICT:
        raise ApiError(409, "conflict", outcome.message, "version")
    return outcome_body(outcome)


def bulk_result(public_id: str, outcome: Outcome | None) -> dict[str, Any]:
    if outcome is None:
        return {"id": public_id, "result": "not_found", "message": "no such comment"}
    return {
        "id": public_id,
        "result": outcome.result.value,
        "message": outcome.message,
        "status": outcome.comment.status,
        "version": comment_version(outcome.comment),
    }


def outcome_body(outcome: Outcome) -> dict[str, Any]:
    card = cards_for(db_session(), [outcome.comment], live_model_thresholds())[0]
    return {
        "result": outcome.result.value,
        "message": outcome.message,
        "comment": moderation_comment(card),
    }


# ------------------------------------------------------------------------------ shapes


def moderation_comment(card: Card) -> dict[str, Any]:
    """A comment as its moderators see it: detail, version, author record, history.

    ``sentence_scores`` says which sentences of a comment the model held scored what
    (code point offsets into ``text``); null for other comments and those of one sentence.
    ``language`` is the one the workers detected; null until scored or when undetermined.
    """
    return {
        **comment_detail(card.comment),
        "site": card.site_name,
        "version": card.version,
        "author_record": {
            "approved": card.approved_by_author,
            "rejected": card.rejected_by_author,
        },
        "reports": [
            {
                "id": report.public_id,
                "reason": report.reason,
                "text": report.text,
                "created_at": report.created_at.isoformat(),
            }
            for report in card.reports
        ],
        "history": [audit_event(event) for event in card.history],
        "sentence_scores": card.comment.sentence_scores,
        "language": card.comment.language,
    }


def audit_event(event: AuditEvent) -> dict[str, Any]:
    """One audit event: who, from, to, why, when."""
    detail = event.detail or {}
    return {
        "at": event.created_at.isoformat(),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "reason": event.reason,
        "note": detail.get("note"),
        "attempted": detail.get("attempted"),
    }


# ------------------------------------------------------------------------------ input


def _queue_filter(scope: Scope) -> QueueFilter:
    args = request.args
    site_id = _site_id(scope, args.get("site"))
    article_id = None
    if args.get("article"):
        if site_id is None:
            raise ApiError(422, "invalid", "filtering by article needs site as well", "site")
        article_id = _article_id(site_id, args["article"])
    return QueueFilter(
        queue=_enum_arg(Queue, "queue", Queue.HELD),
        site_id=site_id,
        article_id=article_id,
        search=(args.get("q") or "").strip()[:200] or None,
        language=_language_arg(),
        order=_enum_arg(Order, "order", Order.OLDEST),
    )


def _language_arg() -> str | None:
    raw = request.args.get("language")
    if not raw:
        return None
    language = language_filter(raw)
    if language is None:
        message = f"language must be a language code such as 'de', or '{UNDETERMINED}'"
        raise ApiError(422, "invalid", message, "language")
    return language


def _site_id(scope: Scope, name: str | None) -> int | None:
    if not name:
        return None
    query = select(Site.id).where(Site.name == name, in_scope(Site.id, scope))
    site_id = db_session().scalars(query).one_or_none()
    if site_id is None:
        raise ApiError(404, "not_found", "no such site", "site")
    return site_id


def _article_id(site_id: int, external_id: str) -> int:
    query = select(Article.id).where(Article.site_id == site_id, Article.external_id == external_id)
    # An unknown article filters everything out, as it has no comments.
    return db_session().scalars(query).one_or_none() or 0


def _enum_arg(enum_type: Any, name: str, default: Any) -> Any:
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        return enum_type(raw)
    except ValueError:
        choices = ", ".join(item.value for item in enum_type)
        raise ApiError(422, "invalid", f"{name} must be one of: {choices}", name) from None


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    value = whole_number(raw)
    if value is None:
        raise ApiError(422, "invalid", f"{name} must be a positive integer", name)
    return value


def _limit(default: int) -> int:
    value = _int_arg("limit")
    if value is None:
        return default
    if not 1 <= value <= MAX_PAGE:
        raise ApiError(422, "invalid", f"limit must be an integer from 1 to {MAX_PAGE}", "limit")
    return value


def body_string(body: dict[str, Any], key: str, field: str | None = None) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and key == "version":
        return str(value)
    raise ApiError(422, "invalid", f"{key} must be a string", field or key)
