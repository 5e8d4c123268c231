"""Site endpoints: post a comment, read it back, list an article's published comments."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import request, url_for
from pydantic import ValidationError

from moderation.api import api_v1
from moderation.api.auth import authenticated_site
from moderation.api.errors import ApiError
from moderation.api.serializers import comment_detail, comment_summary
from moderation.app_state import app_state, db_session
from moderation.schemas import CommentSubmission
from moderation.services.comments import (
    CommentRefused,
    comment_for_site,
    published_comments,
    submit_comment,
)

MAX_PAGE = 100


@api_v1.post("/comments")
def post_comment():
    """Accept a comment: 202 once it is committed as pending; scoring happens in a worker."""
    site = authenticated_site()
    data = _validated(CommentSubmission, _json_object())
    session = db_session()
    try:
        accepted = submit_comment(session, site, data, _idempotency_key())
    except CommentRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.field) from None
    session.commit()
    if accepted.created:
        app_state().tasks.send_for_scoring([accepted.comment.id])
    body = comment_summary(accepted.comment)
    headers = {"Location": url_for("api_v1.get_comment", public_id=body["id"])}
    if not accepted.created:
        headers["Idempotent-Replayed"] = "true"
    return body, 202, headers


@api_v1.get("/comments/<public_id>")
def get_comment(public_id: str):
    """A comment's status, decision, reasons and per-label scores."""
    site = authenticated_site()
    comment = comment_for_site(db_session(), site, public_id)
    if comment is None:
        raise ApiError(404, "not_found", "no such comment")
    return comment_detail(comment)


@api_v1.get("/articles/<path:article_id>/comments")
def list_published(article_id: str):
    """An article's approved comments, newest first, with a cursor to the next page."""
    site = authenticated_site()
    limit = _limit()
    comments = published_comments(
        db_session(), site, article_id, before_id=_cursor(), limit=limit + 1
    )
    page, more = comments[:limit], len(comments) > limit
    return {
        "comments": [comment_summary(comment) for comment in page],
        "next_cursor": _encode_cursor(page[-1].id) if more else None,
    }


def _json_object() -> dict[str, Any]:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "malformed_json", "the body is not valid JSON")
    if not isinstance(body, dict):
        raise ApiError(422, "invalid", "the body must be a JSON object")
    return body


def _validated(model: type[CommentSubmission], body: dict[str, Any]) -> CommentSubmission:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        message = error["msg"].removeprefix("Value error, ")
        code = "missing_field" if error["type"] == "missing" else "invalid"
        raise ApiError(422, code, f"{field}: {message}", field) from None


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise ApiError(
            422, "invalid", "Idempotency-Key must be 1-200 printable characters", "Idempotency-Key"
        )
    return key


def _limit() -> int:
    raw = request.args.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiError(422, "invalid", f"limit must be an integer from 1 to {MAX_PAGE}", "limit")
    return int(raw)


def _cursor() -> int | None:
    raw = request.args.get("cursor")
    if not raw:
        return None
    try:
        return int(base64.urlsafe_b64decode(raw.encode() + b"==").decode().removeprefix("c"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(422, "invalid", "cursor is not one this API gave out", "cursor") from None


def _encode_cursor(comment_id: int) -> str:
    return base64.urlsafe_b64encode(f"c{comment_id}".encode()).decode().rstrip("=")
