"""Use cases of the site API: accept a comment, read one back, list the published ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from moderation.models import Article, Comment, Site, Status
from moderation.rules import Verdict
from moderation.schemas import CommentSubmission
from moderation.services.authors import posting_refusal, sanctions_in_force
from moderation.services.decisions import transition
from moderation.services.integration import author_history, rules_verdict, site_rules
from moderation.services.row_cache import RowCache

# An article is read by each of its comments: its row is kept for a few seconds. A change in
# this process (settings, title) clears the copies; other processes see it within this time.
ARTICLE_CACHE_SECONDS = 5.0
_articles: RowCache[Article] = RowCache(Article, ttl=ARTICLE_CACHE_SECONDS)


class CommentRefused(Exception):
    """The comment cannot be accepted; carries an error code and the offending field."""

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        status: int = 422,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.code, self.message, self.field, self.status = code, message, field, status
        self.extra = extra or {}


@dataclass(frozen=True)
class Accepted:
    """The stored comment, and whether this request created it (False for a replay)."""

    comment: Comment
    created: bool


def submit_comment(
    session: Session,
    site: Site,
    data: CommentSubmission,
    idempotency_key: str | None = None,
    *,
    warnings_block: bool = False,
    admit: Callable[[], None] | None = None,
) -> Accepted:
    """Store a new pending comment; a repeated idempotency key returns the first one.

    ``admit`` runs just before a new comment is stored (the per-author rate limit), and
    may raise to refuse it. A banned or suspended author is refused (403); so is one with an
    unread warning when ``warnings_block`` (the widget, where the author can read it).
    """
    if idempotency_key is not None:
        earlier = _by_idempotency_key(session, site, idempotency_key)
        if earlier is not None:
            return Accepted(_same_request_or_refuse(earlier, data), created=False)
    rules = site_rules(site)
    history = author_history(session, site, data.author_id, rules.repeat_window_seconds)
    sanctions = sanctions_in_force(session, site.id, data.author_id) if history.sanctioned else []
    refusal = posting_refusal(sanctions, warnings_block=warnings_block)
    if refusal is not None:
        extra: dict[str, Any] = {"until": refusal.until.isoformat() if refusal.until else None}
        if refusal.code == "warning_unacknowledged" and refusal.sanction is not None:
            extra["warning"] = refusal.sanction.reason
        raise CommentRefused(refusal.code, refusal.message, status=403, extra=extra)
    article = article_for(session, site, data)
    # Length, closed article, words, repeat post, links, the author rules: before the model,
    # first decision wins.
    verdict = rules_verdict(
        session, site, rules, article, data.text, data.author_id, history, sanctions
    )
    if verdict.refusal is not None:
        refusal = verdict.refusal
        raise CommentRefused(refusal.code, refusal.message, refusal.field, status=refusal.status)
    if admit is not None:
        # Counted only for a comment about to be stored: not for a replay or a refusal.
        admit()
    comment = Comment(
        site_id=site.id,
        article=article,
        parent_id=_parent_id(session, article, data.parent_id),
        author_id=data.author_id,
        author_name=data.author_name,
        text=data.text,
        status=Status.PENDING,
        idempotency_key=idempotency_key,
    )
    if idempotency_key is None:
        session.add(comment)
        session.flush()
        return _created(session, comment, verdict)
    try:
        with session.begin_nested():
            session.add(comment)
    except IntegrityError:
        # A concurrent request with the same idempotency key won the race.
        earlier = _by_idempotency_key(session, site, idempotency_key)
        if earlier is None:
            raise
        return Accepted(_same_request_or_refuse(earlier, data), created=False)
    return _created(session, comment, verdict)


def _created(session: Session, comment: Comment, verdict: Verdict) -> Accepted:
    """A new comment, decided at once (with an audit row and event) when a rule decided it."""
    if verdict.decision is not None:
        transition(session, comment, verdict.decision, reason="rules")
    return Accepted(comment, created=True)


def _by_idempotency_key(session: Session, site: Site, key: str) -> Comment | None:
    query = select(Comment).where(Comment.site_id == site.id, Comment.idempotency_key == key)
    return session.scalars(query).one_or_none()


def _same_request_or_refuse(earlier: Comment, data: CommentSubmission) -> Comment:
    same = (earlier.article.external_id, earlier.author_id, earlier.text) == (
        data.article_id,
        data.author_id,
        data.text,
    )
    if not same:
        raise CommentRefused(
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different comment",
            status=409,
        )
    return earlier


def article_for(session: Session, site: Site, data: CommentSubmission) -> Article:
    """The site's article, created on its first comment; title and URL kept up to date."""
    article = _articles.get(session, _article_key(site, data.article_id))
    if article is None:
        article = _stored_article(session, site, data.article_id)
    if article is None:
        article = Article(site_id=site.id, external_id=data.article_id)
        try:
            with session.begin_nested():
                session.add(article)
        except IntegrityError:
            # Another request created the same article first.
            article = _stored_article(session, site, data.article_id)
            if article is None:
                raise
    # Only a real change writes (and clears the copies of articles).
    if data.article_url is not None and article.url != data.article_url:
        article.url = data.article_url
    if data.article_title is not None and article.title != data.article_title:
        article.title = data.article_title
    return article


def _stored_article(session: Session, site: Site, external_id: str) -> Article | None:
    query = select(Article).where(Article.site_id == site.id, Article.external_id == external_id)
    article = session.scalars(query).one_or_none()
    if article is not None:
        _articles.put(_article_key(site, external_id), article)
    return article


def _article_key(site: Site, external_id: str) -> tuple[object, ...]:
    # The site's creation time tells a site from a later one that reuses its id.
    return (site.id, site.created_at, external_id)


def _parent_id(session: Session, article: Article, parent_public_id: str | None) -> int | None:
    if parent_public_id is None:
        return None
    query = select(Comment.id).where(
        Comment.public_id == parent_public_id, Comment.article_id == article.id
    )
    parent = session.scalars(query).one_or_none()
    if parent is None:
        raise CommentRefused(
            "unknown_parent", "no comment with this id on this article", field="parent_id"
        )
    return parent


def comment_for_site(session: Session, site: Site, public_id: str) -> Comment | None:
    """One of the site's comments with its scores, or None (also for other sites' ids)."""
    query = (
        select(Comment)
        .where(Comment.public_id == public_id, Comment.site_id == site.id)
        .options(selectinload(Comment.scores), selectinload(Comment.parent))
    )
    return session.scalars(query).one_or_none()


def published_comments(
    session: Session, site: Site, article_external_id: str, *, before_id: int | None, limit: int
) -> list[Comment]:
    """Approved comments of an article, newest first, starting below ``before_id``."""
    query = (
        select(Comment)
        .join(Article, Comment.article_id == Article.id)
        .where(
            Article.site_id == site.id,
            Article.external_id == article_external_id,
            Comment.status == Status.APPROVED,
        )
        .options(selectinload(Comment.parent))
        .order_by(Comment.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(Comment.id < before_id)
    return list(session.scalars(query))
