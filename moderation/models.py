"""The stored things: sites, articles, comments, their scores and their audit trail."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from moderation.db import Base, UTCDateTime, utcnow


class Status(enum.StrEnum):
    """Where a comment is in its life."""

    PENDING = "pending"
    APPROVED = "approved"
    HELD = "held"
    REJECTED = "rejected"


class Actor(enum.StrEnum):
    """Who made a transition."""

    SYSTEM = "system"
    MODERATOR = "moderator"


def new_public_id() -> str:
    """An opaque, unguessable comment id for sites."""
    return "cmt_" + secrets.token_urlsafe(12)


class Site(Base):
    """A publisher that posts comments with its own API key and policy."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_prefix: Mapped[str] = mapped_column(String(16))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Article(Base):
    """A page on a site under which readers comment."""

    __tablename__ = "articles"
    __table_args__ = (UniqueConstraint("site_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(2000))
    title: Mapped[str | None] = mapped_column(String(500))
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    premoderate: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    site: Mapped[Site] = relationship()


class Comment(Base):
    """One reader comment and the decision taken on it."""

    __tablename__ = "comments"
    __table_args__ = (
        UniqueConstraint("site_id", "idempotency_key"),
        CheckConstraint(
            "status IN ('pending', 'approved', 'held', 'rejected')", name="status_known"
        ),
        Index("ix_comments_status_created", "status", "created_at"),
        Index("ix_comments_article_status_id", "article_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="SET NULL"))
    author_id: Mapped[str] = mapped_column(String(200))
    author_name: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=Status.PENDING)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    top_score: Mapped[float | None] = mapped_column(Float)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Last time the sweeper re-sent this comment to the workers.
    resent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    article: Mapped[Article] = relationship(lazy="joined")
    parent: Mapped[Comment | None] = relationship(remote_side=[id])
    scores: Mapped[list[CommentScore]] = relationship(
        back_populates="comment", order_by="CommentScore.label"
    )


class CommentScore(Base):
    """One label's score for a comment from one model version."""

    __tablename__ = "comment_scores"
    __table_args__ = (UniqueConstraint("comment_id", "label", "model_name", "model_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(40))
    score: Mapped[float] = mapped_column(Float)
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    comment: Mapped[Comment] = relationship(back_populates="scores")


class AuditEvent(Base):
    """A status transition of a comment: who, from, to, why, when."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_comment_created", "comment_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(200))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
