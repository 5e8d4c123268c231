"""Site endpoints: post a comment, read it back, list an article's published comments."""

from __future__ import annotations

from flask import url_for

from moderation.api import api_v1
from moderation.api.auth import authenticated_site, refuse_when_author_over_limit
from moderation.api.errors import ApiError
from moderation.api.openapi import LOCATION, Answer, documented
from moderation.api.parsing import (
    IDEMPOTENCY_KEY,
    PageQuery,
    cursor,
    encode_cursor,
    idempotency_key,
    json_object,
    page_limit,
    validated,
)
from moderation.api.responses import Comment, CommentDetail, CommentPage
from moderation.api.serializers import comment_detail, comment_summary
from moderation.app_state import app_state, db_session
from moderation.models import Status
from moderation.ops.metrics import comment_received
from moderation.schemas import CommentSubmission
from moderation.services.comments import (
    CommentRefused,
    comment_for_site,
    published_comments,
    submit_comment,
)


@api_v1.post("/comments")
@documented(
    "submitComment",
    Answer(
        202,
        Comment,
        "stored as pending, or the first comment of a repeated Idempotency-Key",
        headers=LOCATION | {"Idempotent-Replayed": "`true` when the comment was stored before"},
    ),
    body=CommentSubmission,
    headers=[IDEMPOTENCY_KEY],
    errors=(400, 401, 403, 409, 413, 415, 422, 429, 503),
)
def post_comment():
    """Accept a comment: 202 once it is committed as pending; scoring happens in a worker."""
    site = authenticated_site()
    data = validated(CommentSubmission, json_object())
    session = db_session()
    try:
        accepted = submit_comment(
            session,
            site,
            data,
            idempotency_key(),
            admit=lambda: refuse_when_author_over_limit(site, data.author_id),
        )
    except CommentRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.field, extra=exc.extra) from None
    session.commit()
    if accepted.created:
        comment_received(site.name, accepted.comment.public_id)
    # A comment a pre-model rule already decided needs no scoring.
    if accepted.created and accepted.comment.status == Status.PENDING:
        app_state().tasks.enqueue_for_scoring([accepted.comment.id])
    body = comment_summary(accepted.comment)
    headers = {"Location": url_for("api_v1.get_comment", public_id=body["id"])}
    if not accepted.created:
        headers["Idempotent-Replayed"] = "true"
    return body, 202, headers


@api_v1.get("/comments/<public_id>")
@documented("getComment", Answer(200, CommentDetail, "the comment"), errors=(401, 404))
def get_comment(public_id: str):
    """A comment's status, decision, reasons and per-label scores."""
    site = authenticated_site()
    comment = comment_for_site(db_session(), site, public_id)
    if comment is None:
        raise ApiError(404, "not_found", "no such comment")
    return comment_detail(comment)


@api_v1.get("/articles/<path:article_id>/comments")
@documented(
    "listPublishedComments",
    Answer(200, CommentPage, "a page of comments"),
    query=PageQuery,
    errors=(401, 422),
)
def list_published(article_id: str):
    """An article's approved comments, newest first, with a cursor to the next page."""
    site = authenticated_site()
    limit = page_limit()
    comments = published_comments(
        db_session(), site, article_id, before_id=cursor(), limit=limit + 1
    )
    page, more = comments[:limit], len(comments) > limit
    return {
        "comments": [comment_summary(comment) for comment in page],
        "next_cursor": encode_cursor(page[-1].id) if more else None,
    }
