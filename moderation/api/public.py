"""The public API the widget calls from readers' browsers, under ``/api/v1/public/<key>``.

It takes the site's publishable key (``mpk_...``), never the secret one, and answers only
pages whose Origin the site allowed: CORS headers name that origin alone, and a write from
any other origin, or with no Origin, is refused. Readers have no account: the widget keeps a
random reader token in the browser, and the author id is a hash of it, so one reader's
comments can be told apart without exposing anyone's identity. Posts are rate-limited per
client IP, per reader and per site; reads per client IP.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from flask import Blueprint, Response, g, make_response, request, url_for
from flask_limiter.util import get_remote_address
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from moderation.api.auth import site_for_key
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
from moderation.api.responses import PublicComment, PublicCommentPage
from moderation.app_state import app_state, db_session
from moderation.bearer import bearer_key
from moderation.limits import limiter
from moderation.models import Article, Comment, Site, Status
from moderation.ops.metrics import comment_received
from moderation.schemas import CommentSubmission, Name, StorableStr
from moderation.services.comments import (
    CommentRefused,
    comment_for_site,
    published_comments,
    submit_comment,
)
from moderation.services.integration import origin_allowed, site_for_publishable_key
from moderation.services.sites import KEY_PREFIX as SECRET_KEY_PREFIX

public_api = Blueprint("public_api", __name__, url_prefix="/api/v1/public/<key>")

MAX_PAGE = 50
_NO_SITE = object()
ALLOWED_HEADERS = "Content-Type, Idempotency-Key"
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


class PublicSubmission(BaseModel):
    """A reader's comment as the widget posts it."""

    model_config = ConfigDict(strict=True, extra="ignore")

    author_name: Name
    text: str
    # Random, kept in the reader's browser; the author id is derived from it.
    reader_token: Annotated[str, Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
    parent_id: Annotated[StorableStr, Field(max_length=32)] | None = None
    article_title: Annotated[StorableStr, Field(max_length=500)] | None = None
    article_url: Annotated[StorableStr, Field(max_length=2000)] | None = None


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
    Answer(202, PublicComment, "stored; rules may already have decided it", headers=LOCATION),
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
    """A reader's comment: 202 once stored; rules may already have decided it."""
    site = public_site()
    data = _submission(site, article_id, validated(PublicSubmission, json_object()))
    session = db_session()
    try:
        accepted = submit_comment(session, site, data, idempotency_key())
    except CommentRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.field) from None
    session.commit()
    comment = accepted.comment
    if accepted.created:
        comment_received(site.name, comment.public_id)
    if accepted.created and comment.status == Status.PENDING:
        app_state().tasks.send_for_scoring([comment.id])
    location = url_for("public_api.get_comment", public_id=comment.public_id)
    return public_comment(comment), 202, {"Location": location}


@public_api.get("/comments/<public_id>")
@documented(
    "widgetGetComment",
    Answer(200, PublicComment, "the comment"),
    tag=WIDGET,
    security=None,
    headers=[_origin(required=False)],
    errors=(400, 401, 403, 404),
)
@limiter.limit(_setting("ratelimit_public_read"), key_func=client_ip)
def get_comment(public_id: str):
    """One comment by its id, so a reader's widget can follow their own: status and text."""
    comment = comment_for_site(db_session(), public_site(), public_id)
    if comment is None:
        raise ApiError(404, "not_found", "no such comment")
    return public_comment(comment)


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
