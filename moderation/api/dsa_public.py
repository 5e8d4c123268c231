"""The DSA's public API under the widget's publishable key: ``/api/v1/public/<key>/dsa``.

Nested in the widget's blueprint, so the same key, Origin and CORS rules apply. Anyone may
file a notice of illegal content and follow it by its reference; an author (the reader
token, in the ``Reader-Token`` header) reads the statements of reasons of their own
restrictions, each with the signed link to its page, and appeals one, once.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from flask import Blueprint, Response, request, url_for
from pydantic import BaseModel, Field
from sqlalchemy import select

from moderation.api.dsa import DSA
from moderation.api.errors import ApiError
from moderation.api.openapi import Answer, Header, documented
from moderation.api.parsing import json_object
from moderation.api.public import (
    READER_CHARACTERS,
    _origin,
    _setting,
    client_ip,
    public_api,
    public_site,
    reader_author_id,
)
from moderation.api.responses import AuthorAppeal, AuthorStatements, NoticeStatus
from moderation.app_state import db_session
from moderation.dsa.appeals import (
    MAX_TEXT,
    AppealRefused,
    appeal_deadline,
    appeal_of,
    appeal_view,
    file_appeal,
)
from moderation.dsa.notices import (
    CATEGORIES,
    MAX_COMMENTS,
    MAX_EXPLANATION,
    MAX_LAW,
    MAX_NAME,
    NoticeForm,
    NoticeRefused,
    file_notice,
    notice_by_reference,
)
from moderation.dsa.notices import notice_status as notice_view
from moderation.dsa.statements import restriction_words, statements_of_author
from moderation.limits import limiter
from moderation.models import Site, StatementOfReasons
from moderation.web.dsa_pages import statement_url

dsa_public = Blueprint("dsa_public", __name__, url_prefix="/dsa")
READER_TOKEN = "Reader-Token"  # noqa: S105  (a header name, not a secret)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
# PostgreSQL cannot store or compare a NUL, and a lone surrogate cannot be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SLOW = "too many requests in a short time; try again later"
READER_TOKEN_HEADER = Header(
    READER_TOKEN,
    "the widget's reader token: the author's own statements only",
    {"type": "string", "minLength": 16, "maxLength": 128, "pattern": READER_CHARACTERS},
    required=True,
)
NoticeCategory = Literal[tuple(CATEGORIES)]  # type: ignore[valid-type]


# ------------------------------------------------------------------------------ what is read
# The bodies are read field by field below (``post_notice``, ``post_appeal``); these models
# are what the document says of them.


class NoticeSubmission(BaseModel):
    """A notice of illegal content (Art. 16 DSA)."""

    category: NoticeCategory = Field(
        description="the kind of illegal content; child_sexual_abuse may be anonymous"
    )
    explanation: str = Field(
        min_length=1, max_length=MAX_EXPLANATION, description="why the content is illegal"
    )
    comments: (
        Annotated[list[str], Field(min_length=1, max_length=MAX_COMMENTS)]
        | Annotated[str, Field(min_length=1)]
    ) = Field(description="the ids of the comments the notice names (one may be a string)")
    good_faith: Literal[True] = Field(
        description="the reporter confirms the notice is accurate and complete to the best of "
        "their knowledge"
    )
    law: str | None = Field(None, max_length=MAX_LAW, description="the law broken, if known")
    reporter_name: str | None = Field(
        None, max_length=MAX_NAME, description="required unless the category is child_sexual_abuse"
    )
    reporter_email: str | None = Field(
        None,
        max_length=254,
        description="an email address; required unless the category is child_sexual_abuse",
    )


class AppealSubmission(BaseModel):
    """An author's appeal against a decision (Art. 20 DSA)."""

    text: str = Field(min_length=1, max_length=MAX_TEXT, description="why the decision is wrong")


@dsa_public.after_request
def _allow_reader_token(response: Response) -> Response:
    """Browsers may send the Reader-Token header across origins (the widget's preflight)."""
    allowed = response.headers.get("Access-Control-Allow-Headers")
    if request.method == "OPTIONS" and allowed and READER_TOKEN not in allowed:
        response.headers["Access-Control-Allow-Headers"] = f"{allowed}, {READER_TOKEN}"
    return response


def _author(site: Site) -> str:
    token = request.headers.get(READER_TOKEN, "")
    if not _TOKEN.match(token):
        raise ApiError(
            401,
            "unauthorized",
            f"send the reader's token in the {READER_TOKEN} header",
            READER_TOKEN,
        )
    return reader_author_id(site, token)


def _refused(exc: NoticeRefused | AppealRefused) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message, exc.field)


# --- Notices ----------------------------------------------------------------------------------


@dsa_public.post("/notices")
@documented(
    "dsaFileNotice",
    Answer(
        201,
        NoticeStatus,
        "received; the reference follows it",
        headers={"Location": "where the notice's status can be read"},
    ),
    tag=DSA,
    security=None,
    body=NoticeSubmission,
    headers=[_origin(required=True)],
    errors=(400, 401, 403, 404, 413, 415, 422),
)
@limiter.limit(_setting("ratelimit_public_ip"), key_func=client_ip, error_message=_SLOW)
def post_notice():
    """File a notice of illegal content naming one or more comments: 201 with its reference.

    A comment that is not the site's is a 404 naming `comments`; a missing or invalid field
    a 422 naming it."""
    site = public_site()
    body = json_object()
    comments = body.get("comments", [])
    if isinstance(comments, str):
        comments = [comments]
    if not isinstance(comments, list) or not all(_storable(c) for c in comments):
        raise ApiError(422, "invalid", "comments must be a list of comment ids", "comments")
    form = NoticeForm(
        category=_optional_str(body, "category"),
        explanation=_optional_str(body, "explanation"),
        comment_ids=comments,
        good_faith=body.get("good_faith") if isinstance(body.get("good_faith"), bool) else None,
        law=_optional_str(body, "law"),
        reporter_name=_optional_str(body, "reporter_name"),
        reporter_email=_optional_str(body, "reporter_email"),
    )
    session = db_session()
    try:
        notice = file_notice(session, site, form)
    except NoticeRefused as exc:
        raise _refused(exc) from None
    answer = notice_view(session, notice)
    session.commit()
    location = url_for("public_api.dsa_public.get_notice", reference=notice.reference)
    return answer, 201, {"Location": location}


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or _storable(value):
        return value
    if isinstance(value, str):
        raise ApiError(422, "invalid", f"{name} must not contain NUL or lone surrogates", name)
    raise ApiError(422, "invalid", f"{name} must be a string", name)


def _storable(value: Any) -> bool:
    """A string the database can store and compare."""
    return isinstance(value, str) and not _UNSTORABLE.search(value)


@dsa_public.get("/notices/<reference>")
@documented(
    "dsaNoticeStatus",
    Answer(200, NoticeStatus, "the notice"),
    tag=DSA,
    security=None,
    headers=[_origin(required=False)],
    errors=(400, 401, 403, 404),
)
@limiter.limit(_setting("ratelimit_public_read"), key_func=client_ip)
def get_notice(reference: str):
    """A notice's state and outcome, by the reference its reporter got."""
    notice = notice_by_reference(db_session(), public_site(), reference[:40])
    if notice is None:
        raise ApiError(404, "not_found", "no notice with this reference")
    return notice_view(db_session(), notice)


# --- Statements of reasons and appeals ----------------------------------------------------


@dsa_public.get("/statements")
@documented(
    "dsaAuthorStatements",
    Answer(200, AuthorStatements, "the reader's statements"),
    tag=DSA,
    security=None,
    headers=[_origin(required=False), READER_TOKEN_HEADER],
    errors=(400, 401, 403),
)
@limiter.limit(_setting("ratelimit_public_read"), key_func=client_ip)
def list_statements():
    """The reader's own statements of reasons, newest first (the latest 50).

    Without a well-formed `Reader-Token`, a 401."""
    site = public_site()
    session = db_session()
    statements = statements_of_author(session, site.id, _author(site))
    return {"statements": [author_view(session, statement) for statement in statements]}


@dsa_public.post("/statements/<public_id>/appeal")
@documented(
    "dsaAppealStatement",
    Answer(201, AuthorAppeal, "received; a moderator will decide it"),
    tag=DSA,
    security=None,
    body=AppealSubmission,
    headers=[_origin(required=True), READER_TOKEN_HEADER],
    errors=(400, 401, 403, 404, 409, 413, 415, 422),
)
@limiter.limit(_setting("ratelimit_public_author"), key_func=client_ip, error_message=_SLOW)
def post_appeal(public_id: str):
    """Contest one of the reader's own decisions, once, within six months.

    Another reader's statement is a 404; a second appeal a 409 `already_appealed`, one after
    six months a 409 `appeal_window_closed`."""
    site = public_site()
    author = _author(site)
    body = json_object()
    session = db_session()
    statement = _own_statement(site, author, public_id)
    text = body.get("text")
    if isinstance(text, str) and not _storable(text):
        raise ApiError(422, "invalid", "text must not contain NUL or lone surrogates", "text")
    try:
        appeal = file_appeal(session, statement, text if isinstance(text, str) else None)
    except AppealRefused as exc:
        raise _refused(exc) from None
    answer = appeal_view(appeal)
    session.commit()
    return answer, 201


def _own_statement(site: Site, author: str, public_id: str) -> StatementOfReasons:
    query = select(StatementOfReasons).where(
        StatementOfReasons.public_id == public_id[:60],
        StatementOfReasons.site_id == site.id,
        StatementOfReasons.author_id == author,
    )
    statement = db_session().scalars(query).one_or_none()
    if statement is None:
        raise ApiError(404, "not_found", "no such statement of yours")
    return statement


def author_view(session: Any, statement: StatementOfReasons) -> dict[str, Any]:
    """A statement as its author reads it, with its page, its appeal and the deadline."""
    appeal = appeal_of(session, statement)
    return {
        "id": statement.public_id,
        "url": statement_url(statement.public_id),
        "summary": restriction_words(statement),
        "comment_id": statement.comment.public_id if statement.comment else None,
        "decision_visibility": statement.decision_visibility,
        "decision_account": statement.decision_account,
        "decision_ground": statement.decision_ground,
        "illegal_content_legal_ground": statement.illegal_content_legal_ground,
        "illegal_content_explanation": statement.illegal_content_explanation,
        "incompatible_content_ground": statement.incompatible_content_ground,
        "incompatible_content_explanation": statement.incompatible_content_explanation,
        "decision_facts": statement.decision_facts,
        "automated_detection": statement.automated_detection,
        "automated_decision": statement.automated_decision,
        "source_type": statement.source_type,
        "application_date": statement.application_date.isoformat(),
        "end_date": statement.end_date.isoformat() if statement.end_date else None,
        "redress": statement.redress,
        "appeal_until": appeal_deadline(statement).isoformat(),
        "appeal": appeal_view(appeal) if appeal else None,
        "reversed_at": statement.reversed_at.isoformat() if statement.reversed_at else None,
    }


public_api.register_blueprint(dsa_public)
