"""The public API the widget calls from readers' browsers, under ``/api/v1/public/<key>``.

It takes the site's publishable key (``mpk_...``), never the secret one, and answers only
pages whose Origin the site allowed: CORS headers name that origin alone, and a write from
any other origin, or with no Origin, is refused. Readers have no account: the widget keeps a
random reader token in the browser, and the author id is a hash of it, so one reader's
comments can be told apart without exposing anyone's identity. Posts are rate-limited per
client IP, per reader and per site; reads per client IP.

The reader token also lets a reader report a comment (once per comment; rate-limited per
reader and per client IP), see their own standing (a moderator's warning to acknowledge, a
suspension, a ban) and the outcome of their own comments with the reason in plain words.
Reads send it in the ``Reader-Token`` header, writes in the body.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any

from flask import Blueprint, Response, g, make_response, request, url_for
from flask_limiter.util import get_remote_address
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from moderation.api.auth import refuse_when_author_over_limit, site_for_key
from moderation.api.errors import ApiError
from moderation.api.openapi import LOCATION, Answer, Header, Tag, documented
from moderation.api.parsing import (
    IDEMPOTENCY_KEY,
    PageQuery,
    cursor,
    encode_cursor,
    idempotency_key,
    json_object,
    page_limit,
    refuse_nul_characters,
    validated,
)
from moderation.api.responses import (
    Acknowledged,
    PublicCommentPage,
    PublicReport,
    ReaderComment,
    ReaderStanding,
)
from moderation.app_state import app_state, db_session
from moderation.bearer import bearer_key
from moderation.limits import limiter
from moderation.models import Article, Comment, Site, Status
from moderation.ops.metrics import comment_received
from moderation.schemas import CommentSubmission, Name, StorableStr
from moderation.services.authors import acknowledge_warnings
from moderation.services.comments import (
    CommentRefused,
    comment_for_site,
    published_comments,
    submit_comment,
)
from moderation.services.integration import origin_allowed, site_for_publishable_key
from moderation.services.readers import reader_outcome, reader_standing
from moderation.services.reports import MAX_REPORT_TEXT, ReportRefused, report_comment
from moderation.services.sites import KEY_PREFIX as SECRET_KEY_PREFIX

public_api = Blueprint("public_api", __name__, url_prefix="/api/v1/public/<key>")

MAX_PAGE = 50
_NO_SITE = object()
READER_HEADER = "Reader-Token"
ALLOWED_HEADERS = f"Content-Type, Idempotency-Key, {READER_HEADER}"
EXPOSED_HEADERS = "Retry-After, Location"


WIDGET = Tag(
    "widget",
    "Readers' browsers, with the site's publishable key in the path (no secret key): CORS for "
    "the site's origins only.",
)


class PublicPageQuery(PageQuery):
    """The widget's paging: smaller pages."""

    limit: int = Field(20, ge=1, le=MAX_PAGE)


def _origin(required: bool) -> Header:
    when = "required" if required else "optional; if sent, it must be"
    return Header("Origin", f"the page's origin: {when} one the site allowed", required=required)


# Random, kept in the reader's browser; the author id is derived from it.
READER_CHARACTERS = r"^[A-Za-z0-9_-]+$"
ReaderToken = Annotated[str, Field(min_length=16, max_length=128, pattern=READER_CHARACTERS)]


def _reader_token_header(required: bool) -> Header:
    when = "required" if required else "optional; with the author's, the answer has `outcome`"
    return Header(
        READER_HEADER,
        f"the widget's reader token ({when})",
        {"type": "string", "minLength": 16, "maxLength": 128, "pattern": READER_CHARACTERS},
        required=required,
    )


class PublicSubmission(BaseModel):
    """A reader's comment as the widget posts it."""

    model_config = ConfigDict(strict=True, extra="ignore")

    author_name: Name
    text: str
    reader_token: ReaderToken
    parent_id: Annotated[StorableStr, Field(max_length=32)] | None = None
    article_title: Annotated[StorableStr, Field(max_length=500)] | None = None
    article_url: Annotated[StorableStr, Field(max_length=2000)] | None = None


class ReportSubmission(BaseModel):
    """A reader's report of a published comment."""

    model_config = ConfigDict(strict=True, extra="ignore")

    reader_token: ReaderToken
    reason: Annotated[
        str,
        Field(
            max_length=32,
            description="offensive, abusive, hate_speech, spam, misinformation, illegal or other",
        ),
    ]
    text: (
        Annotated[
            StorableStr,
            Field(
                description=f"what is wrong: required for `other`; at most {MAX_REPORT_TEXT} "
                "characters"
            ),
        ]
        | None
    ) = None


class ReaderOnly(BaseModel):
    """A write that needs only the reader token."""

    model_config = ConfigDict(strict=True, extra="ignore")

    reader_token: ReaderToken


# --- Site, origin and CORS -------------------------------------------------------------------


@public_api.url_value_preprocessor
def _take_key(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.publishable_key = (values or {}).pop("key", "")


@public_api.url_defaults
def _add_key(_endpoint: str, values: dict[str, Any]) -> None:
    values.setdefault("key", g.get("publishable_key", ""))


def public_site() -> Site:
    """The site of the request's publishable key, or a 401 (400 for a secret key)."""
    site = _site_or_none()
    if site is not None:
        return site
    if g.publishable_key.startswith(SECRET_KEY_PREFIX):
        raise ApiError(
            400,
            "secret_key_exposed",
            "this is a secret site key: never put it in a web page; rotate it, and give the "
            "widget the site's publishable key (mpk_...)",
        )
    raise ApiError(401, "unauthorized", "the publishable key is not valid")


def _site_or_none() -> Site | None:
    cached = g.get("public_site", _NO_SITE)
    if cached is _NO_SITE:
        key = g.get("publishable_key", "")
        cached = site_for_key(lambda: site_for_publishable_key(db_session(), key))
        g.public_site = cached
    return cached  # type: ignore[return-value]


@public_api.before_request
def _check_origin() -> Response | None:
    """Preflights answered here; writes need an allowed Origin, reads one if they send it."""
    site = public_site()
    origin = request.headers.get("Origin")
    allowed = origin_allowed(site, origin)
    if request.method == "OPTIONS":
        if not allowed:
            raise ApiError(403, "origin_not_allowed", f"{origin} may not use this key")
        return _preflight()
    if origin is not None and not allowed:
        raise ApiError(403, "origin_not_allowed", f"{origin} may not use this key")
    if origin is None and request.method != "GET":
        raise ApiError(403, "origin_not_allowed", "a browser Origin header is required")
    return None


def _preflight() -> Response:
    response = make_response("", 204)
    response.headers["Access-Control-Allow-Methods"] = "GET, POST"
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = "600"
    return response


public_api.before_request(refuse_nul_characters)


@public_api.after_request
def _cors_headers(response: Response) -> Response:
    """Name the caller's origin, and only when the site allowed it (also on errors)."""
    origin = request.headers.get("Origin")
    try:
        site = _site_or_none()
    except ApiError:
        # This client sent too many invalid keys: no lookup, not even for the headers.
        site = None
    if origin and site is not None and origin_allowed(site, origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    response.vary.add("Origin")
    return response


# --- Rate limits -----------------------------------------------------------------------------


def client_ip() -> str:
    """The client's address; behind MODERATION_TRUSTED_PROXIES it comes from X-Forwarded-For."""
    return get_remote_address() or "unknown"


def _publishable_key() -> str:
    return "site:" + g.get("publishable_key", "")


def _reader_key() -> str:
    body = request.get_json(silent=True)
    token = body.get("reader_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        return "ip:" + client_ip()
    return "reader:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def _secret_key_or_ip() -> str:
    # Perspective's clients send the key as a query parameter.
    key = bearer_key() or request.args.get("key", "")
    if not key.strip():
        return "ip:" + client_ip()
    return "key:" + hashlib.sha256(key.strip().encode()).hexdigest()[:32]


def _setting(name: str) -> Any:
    return lambda: getattr(app_state().settings, name)


SLOW = "too many comments in a short time; try again later"
REPORTS_SLOW = "too many reports in a short time; try again later"


def limit_per_site_key(blueprint: Blueprint) -> None:
    """Rate-limit every route of a blueprint per API key (MODERATION_RATELIMIT_SITE_KEY)."""
    limiter.limit(_setting("ratelimit_site_key"), key_func=_secret_key_or_ip)(blueprint)


def limit_sync_per_site_key(blueprint: Blueprint) -> None:
    """Rate-limit a compatible API per site (MODERATION_RATELIMIT_SYNC)."""
    limiter.limit(_setting("ratelimit_sync"), key_func=_site_in_path_or_key)(blueprint)


def _site_in_path_or_key() -> str:
    # Coral signs its requests instead of sending a key; its URL names the site.
    site_name = (request.view_args or {}).get("site_name")
    if site_name:
        return "site:" + hashlib.sha256(site_name.encode()).hexdigest()[:32]
    return _secret_key_or_ip()


# --- Endpoints -------------------------------------------------------------------------------


@public_api.get("/articles/<path:article_id>/comments")
@documented(
    "widgetListComments",
    Answer(200, PublicCommentPage, "a page of comments"),
    tag=WIDGET,
    security=None,
    query=PublicPageQuery,
    headers=[_origin(required=False)],
    errors=(400, 401, 403, 422),
)
@limiter.limit(_setting("ratelimit_public_read"), key_func=client_ip)
def list_comments(article_id: str):
    """An article's published comments, newest first, and whether it takes new ones."""
    site = public_site()
    session = db_session()
    limit = page_limit(maximum=MAX_PAGE)
    comments = published_comments(session, site, article_id, before_id=cursor(), limit=limit + 1)
    page, more = comments[:limit], len(comments) > limit
    article = _article(site, article_id)
    return {
        "article": {"id": article_id, "closed": bool(article and article.closed)},
        "comments": [public_comment(comment) for comment in page],
        "next_cursor": encode_cursor(page[-1].id) if more else None,
    }


@public_api.post("/articles/<path:article_id>/comments")
@documented(
    "widgetPostComment",
    Answer(202, ReaderComment, "stored; rules may already have decided it", headers=LOCATION),
    tag=WIDGET,
    security=None,
    body=PublicSubmission,
    headers=[_origin(required=True), IDEMPOTENCY_KEY],
    errors=(400, 401, 403, 409, 413, 415, 422, 503),
)
@limiter.limit(_setting("ratelimit_public_ip"), key_func=client_ip, error_message=SLOW)
@limiter.limit(_setting("ratelimit_public_author"), key_func=_reader_key, error_message=SLOW)
@limiter.limit(_setting("ratelimit_public_site"), key_func=_publishable_key, error_message=SLOW)
def post_comment(article_id: str):
    """A reader's comment: 202 once stored; rules may already have decided it.

    A banned or suspended reader, or one with a warning not yet acknowledged, gets 403
    (`author_banned`, `author_suspended` with `until`, `warning_unacknowledged` with
    `warning`)."""
    site = public_site()
    data = _submission(site, article_id, validated(PublicSubmission, json_object()))
    key = idempotency_key()
    session = db_session()
    try:
        accepted = submit_comment(
            session,
            site,
            data,
            key,
            warnings_block=True,
            admit=lambda: refuse_when_author_over_limit(site, data.author_id),
        )
    except CommentRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.field, extra=exc.extra) from None
    session.commit()
    comment = accepted.comment
    if accepted.created:
        comment_received(site.name, comment.public_id)
    if accepted.created and comment.status == Status.PENDING:
        app_state().tasks.send_for_scoring([comment.id])
    location = url_for("public_api.get_comment", public_id=comment.public_id)
    answer = public_comment(comment) | {"outcome": reader_outcome(session, comment).as_dict()}
    return answer, 202, {"Location": location}


@public_api.get("/comments/<public_id>")
@documented(
    "widgetGetComment",
    Answer(200, ReaderComment, "the comment"),
    tag=WIDGET,
    security=None,
    headers=[_origin(required=False), _reader_token_header(required=False)],
    errors=(400, 401, 403, 404, 422),
)
@limiter.limit(_setting("ratelimit_public_read"), key_func=client_ip)
def get_comment(public_id: str):
    """One comment by its id, so a reader's widget can follow their own: status and text.

    With its author's `Reader-Token`, also `outcome`: awaiting moderation, or why it was not
    published, in plain words. Anyone else gets no reasons."""
    site = public_site()
    token = _header_token(required=False)
    session = db_session()
    comment = comment_for_site(session, site, public_id)
    if comment is None:
        raise ApiError(404, "not_found", "no such comment")
    answer = public_comment(comment)
    if token is not None and reader_author_id(site, token) == comment.author_id:
        answer["outcome"] = reader_outcome(session, comment).as_dict()
    return answer


@public_api.post("/comments/<public_id>/reports")
@documented(
    "widgetReportComment",
    Answer(201, PublicReport, "received"),
    tag=WIDGET,
    security=None,
    body=ReportSubmission,
    headers=[_origin(required=True)],
    errors=(400, 401, 403, 404, 409, 413, 415, 422),
)
@limiter.limit(_setting("ratelimit_report_ip"), key_func=client_ip, error_message=REPORTS_SLOW)
@limiter.limit(
    _setting("ratelimit_report_reader"), key_func=_reader_key, error_message=REPORTS_SLOW
)
def report(public_id: str):
    """A reader reports a published comment: once per reader (409 `already_reported` with
    `reported_at`); enough reports send it back to the moderators."""
    site = public_site()
    data = validated(ReportSubmission, json_object())
    session = db_session()
    reporter = reader_author_id(site, data.reader_token)
    try:
        reported = report_comment(session, site, public_id, reporter, data.reason, data.text)
    except ReportRefused as exc:
        session.rollback()
        raise ApiError(exc.status, exc.code, exc.message, exc.field, extra=exc.extra) from None
    session.commit()
    stored = reported.report
    return {
        "id": stored.public_id,
        "comment_id": reported.comment.public_id,
        "reason": stored.reason,
        "created_at": stored.created_at.isoformat(),
    }, 201


@public_api.get("/me")
@documented(
    "widgetReaderStanding",
    Answer(200, ReaderStanding, "the reader's standing on this site"),
    tag=WIDGET,
    security=None,
    headers=[_origin(required=False), _reader_token_header(required=True)],
    errors=(400, 401, 403, 422),
)
@limiter.limit(_setting("ratelimit_public_read"), key_func=client_ip)
def standing():
    """Whether the reader may comment: a moderator's warning to acknowledge first, a
    suspension until a time, or a ban."""
    site = public_site()
    token = _header_token(required=True)
    found = reader_standing(db_session(), site, reader_author_id(site, token))
    warning = found.warning
    return {
        "warning": None
        if warning is None
        else {
            "id": warning.public_id,
            "message": warning.reason,
            "created_at": warning.created_at.isoformat(),
        },
        "suspended_until": found.suspended_until.isoformat() if found.suspended_until else None,
        "banned": found.banned,
    }


@public_api.post("/me/acknowledge")
@documented(
    "widgetAcknowledgeWarnings",
    Answer(200, Acknowledged, "the warnings are read; posting is open again"),
    tag=WIDGET,
    security=None,
    body=ReaderOnly,
    headers=[_origin(required=True)],
    errors=(400, 401, 403, 413, 415, 422),
)
@limiter.limit(_setting("ratelimit_public_ip"), key_func=client_ip, error_message=SLOW)
@limiter.limit(_setting("ratelimit_public_author"), key_func=_reader_key, error_message=SLOW)
def acknowledge():
    """The reader read the moderator's warnings: the widget lets them post again."""
    site = public_site()
    data = validated(ReaderOnly, json_object())
    session = db_session()
    count = acknowledge_warnings(session, site, reader_author_id(site, data.reader_token))
    session.commit()
    return {"acknowledged": count}


def public_comment(comment: Comment) -> dict[str, Any]:
    """What a browser may see: no author id, no scores, no reasons."""
    return {
        "id": comment.public_id,
        "status": comment.status,
        "parent_id": comment.parent.public_id if comment.parent else None,
        "author_name": comment.author_name,
        "text": comment.text,
        "created_at": comment.created_at.isoformat(),
    }


def reader_author_id(site: Site, reader_token: str) -> str:
    """The author id of a widget reader: stable per browser and site, and not reversible."""
    digest = hashlib.sha256(f"{site.id}:{reader_token}".encode()).hexdigest()
    return "reader_" + digest[:24]


# --- Request parsing -------------------------------------------------------------------------


def _header_token(*, required: bool) -> str | None:
    """The ``Reader-Token`` header, well formed; None when absent and not required."""
    token = request.headers.get(READER_HEADER)
    if token is None:
        if required:
            message = f"send the reader token in the {READER_HEADER} header"
            raise ApiError(422, "missing_field", message, READER_HEADER)
        return None
    if not 16 <= len(token) <= 128 or not re.fullmatch(READER_CHARACTERS, token):
        message = f"{READER_HEADER} must be 16-128 letters, digits, '-' or '_'"
        raise ApiError(422, "invalid", message, READER_HEADER)
    return token


def _submission(site: Site, article_id: str, data: PublicSubmission) -> CommentSubmission:
    """The site API's submission; page title and URL only name an article the first time."""
    is_new = _article(site, article_id) is None
    return validated(
        CommentSubmission,
        {
            "article_id": article_id,
            "author_id": reader_author_id(site, data.reader_token),
            "author_name": data.author_name,
            "text": data.text,
            "parent_id": data.parent_id,
            "article_title": data.article_title if is_new else None,
            "article_url": data.article_url if is_new else None,
        },
    )


def _article(site: Site, article_id: str) -> Article | None:
    query = select(Article).where(Article.site_id == site.id, Article.external_id == article_id)
    return db_session().scalars(query).one_or_none()
