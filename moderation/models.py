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
    false,
    func,
    literal_column,
    true,
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
    # Site integration: the widget's public key (not a secret), the page origins allowed to
    # use it, pre-model rules (moderation.rules.SiteRules) and the signed webhook.
    publishable_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret: Mapped[str | None] = mapped_column(String(200))
    # Coral's signing secret for our external moderation phase (Coral issues it).
    coral_signing_secret: Mapped[str | None] = mapped_column(String(200))
    # Whether comments Coral sends are also kept in our queue for our moderators.
    coral_store_comments: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


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
    hold_links: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

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
        # The repeat-post rule reads an author's recent comments.
        Index("ix_comments_site_author_created", "site_id", "author_id", "created_at"),
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
    # [{begin, end, scores}] per sentence, kept only for comments the model held, so the
    # moderator sees which sentences drove the hold; None (SQL NULL) for every other comment.
    sentence_scores: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    # ISO 639-1 code the workers detected before scoring; None until scored or when unsure.
    language: Mapped[str | None] = mapped_column(String(16))
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


# The moderation queues page through one status (of one site, or of all) in arrival order
# (id) or highest score first; the score key is moderation.services.moderation.score_key.
_QUEUE_SCORE = func.coalesce(Comment.top_score, literal_column("-1.0"))
Index("ix_comments_status_id", Comment.status, Comment.id)
Index("ix_comments_site_status_id", Comment.site_id, Comment.status, Comment.id)
Index("ix_comments_status_score", Comment.status, _QUEUE_SCORE, Comment.id)
Index("ix_comments_site_status_score", Comment.site_id, Comment.status, _QUEUE_SCORE, Comment.id)
# Each card shows its author's record: counted from this index alone.
Index("ix_comments_site_author_status", Comment.site_id, Comment.author_id, Comment.status)


class Moderator(Base):
    """A person who works the queues of the sites assigned to them (an admin sees all)."""

    __tablename__ = "moderators"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    sites: Mapped[list[Site]] = relationship(secondary="moderator_sites", order_by="Site.name")


class ModeratorSite(Base):
    """A site a moderator may see and act on."""

    __tablename__ = "moderator_sites"

    moderator_id: Mapped[int] = mapped_column(
        ForeignKey("moderators.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ModeratorToken(Base):
    """A moderator's API token, stored only as a hash; shown once when issued."""

    __tablename__ = "moderator_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    moderator_id: Mapped[int] = mapped_column(
        ForeignKey("moderators.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    moderator: Mapped[Moderator] = relationship()


class DeliveryStatus(enum.StrEnum):
    """Where a webhook delivery is: waiting for (another) attempt, done, or given up."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


def new_delivery_id() -> str:
    """An opaque webhook delivery id."""
    return "dlv_" + secrets.token_urlsafe(12)


def new_event_id() -> str:
    """An opaque event id; receivers deduplicate on it."""
    return "evt_" + secrets.token_urlsafe(12)


class WebhookDelivery(Base):
    """One event for one site's webhook: the outbox row and its delivery state."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name="delivery_status_known"
        ),
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_site_id_id", "site_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_delivery_id)
    event_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_event_id)
    event_type: Mapped[str] = mapped_column(String(40))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="SET NULL"), index=True
    )
    audit_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("audit_events.id", ondelete="SET NULL")
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    attempt_log: Mapped[list[WebhookAttempt]] = relationship(
        back_populates="delivery", order_by="WebhookAttempt.id"
    )


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: the delivery log a site reads."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    delivery: Mapped[WebhookDelivery] = relationship(back_populates="attempt_log")


# --- Community: reader reports and author standing -------------------------------------------


class ReportReason(enum.StrEnum):
    """Why a reader reports a comment (the widget's choices)."""

    OFFENSIVE = "offensive"
    ABUSIVE = "abusive"
    HATE_SPEECH = "hate_speech"
    SPAM = "spam"
    MISINFORMATION = "misinformation"
    ILLEGAL = "illegal"
    OTHER = "other"


class ReportResolution(enum.StrEnum):
    """How a moderator closed a comment's open reports."""

    DISMISSED = "dismissed"
    REJECTED = "rejected"


def new_report_id() -> str:
    """An opaque report id."""
    return "rpt_" + secrets.token_urlsafe(12)


class Report(Base):
    """One reader's report of one published comment; open until a moderator closes it."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("comment_id", "reporter_id"),
        Index("ix_reports_site_open", "site_id", "closed_at"),
        Index("ix_reports_comment_closed", "comment_id", "closed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_report_id)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    # The reporting reader's author id (a hash of the widget's reader token).
    reporter_id: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str | None] = mapped_column(String(16))
    closed_by: Mapped[str | None] = mapped_column(String(254))


class SanctionKind(enum.StrEnum):
    """What a moderator can do about an author, on one site."""

    WARN = "warn"
    SUSPEND = "suspend"
    BAN = "ban"
    PREMODERATE = "premoderate"


def new_sanction_id() -> str:
    """An opaque sanction id."""
    return "snc_" + secrets.token_urlsafe(12)


class AuthorSanction(Base):
    """A moderator's measure against an author on a site: who, why, until when, lifted by whom.

    Rows are never deleted: a lift is written on the row, so the table is the sanctions'
    audit trail.
    """

    __tablename__ = "author_sanctions"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('warn', 'suspend', 'ban', 'premoderate')", name="sanction_kind_known"
        ),
        Index("ix_author_sanctions_site_author", "site_id", "author_id", "lifted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_sanction_id)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    author_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    # Why, for the record (and, for a warning, the message the author is shown).
    reason: Mapped[str] = mapped_column(String(1000))
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(254))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(254))
    lift_reason: Mapped[str | None] = mapped_column(String(1000))


# --- EU Digital Services Act: notices, statements of reasons, appeals -----------------------


class NoticeState(enum.StrEnum):
    """Where an Art. 16 notice is in its review."""

    AWAITING_REVIEW = "AWAITING_REVIEW"
    UNDER_REVIEW = "UNDER_REVIEW"
    COMPLETED = "COMPLETED"
    VOID = "VOID"


class NoticeDecision(enum.StrEnum):
    """What the moderator found: the content is illegal (removed) or legal (kept)."""

    ILLEGAL = "ILLEGAL"
    LEGAL = "LEGAL"


def new_notice_reference() -> str:
    """The reference a reporter gets at once: unguessable, so it is also their receipt."""
    return "DSA-" + secrets.token_hex(8).upper()


class Notice(Base):
    """A notice of illegal content (Art. 16 DSA) naming one or more comments of a site."""

    __tablename__ = "dsa_notices"
    __table_args__ = (
        CheckConstraint(
            "state IN ('AWAITING_REVIEW', 'UNDER_REVIEW', 'COMPLETED', 'VOID')",
            name="notice_state_known",
        ),
        Index("ix_dsa_notices_site_state", "site_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True, default=new_notice_reference)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    # One of moderation.dsa.notices.CATEGORIES; the law the reporter names, if any.
    category: Mapped[str] = mapped_column(String(64))
    law: Mapped[str | None] = mapped_column(String(500))
    explanation: Mapped[str] = mapped_column(Text)
    reporter_name: Mapped[str | None] = mapped_column(String(200))
    reporter_email: Mapped[str | None] = mapped_column(String(254))
    good_faith: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16), default=NoticeState.AWAITING_REVIEW)
    decision: Mapped[str | None] = mapped_column(String(16))
    # Why: the legal ground relied on (ILLEGAL) or why the content stays (LEGAL, VOID).
    decision_ground: Mapped[str | None] = mapped_column(String(500))
    decision_explanation: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(254))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # [{at, by, action, note}], oldest first: state changes and moderators' notes.
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    comments: Mapped[list[Comment]] = relationship(
        secondary="dsa_notice_comments", order_by="Comment.id"
    )


class NoticeComment(Base):
    """A comment a notice names."""

    __tablename__ = "dsa_notice_comments"

    notice_id: Mapped[int] = mapped_column(
        ForeignKey("dsa_notices.id", ondelete="CASCADE"), primary_key=True
    )
    comment_id: Mapped[int] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True, index=True
    )


def new_statement_id() -> str:
    """An opaque statement id: the statement's page is at it, behind a signed link."""
    return "sor_" + secrets.token_urlsafe(16)


def new_statement_puid() -> str:
    """The statement's platform unique identifier for the Transparency Database: random, and
    unrelated to the statement's id, so the published PUID opens no page."""
    return secrets.token_hex(16)


class StatementOfReasons(Base):
    """The statement of reasons (Art. 17 DSA) of one restriction, in the Transparency
    Database's terms (moderation.dsa.transparency exports it field for field)."""

    __tablename__ = "dsa_statements"
    __table_args__ = (
        Index("ix_dsa_statements_site_created", "site_id", "created_at"),
        Index("ix_dsa_statements_site_author", "site_id", "author_id"),
        Index("ix_dsa_statements_comment", "comment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=new_statement_id)
    # The platform unique identifier sent to the Transparency Database: its own random
    # value, never the public_id (no personal data, and no way to the statement's page).
    puid: Mapped[str] = mapped_column(String(100), unique=True, default=new_statement_puid)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    author_id: Mapped[str] = mapped_column(String(200))
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    sanction_id: Mapped[int | None] = mapped_column(
        ForeignKey("author_sanctions.id", ondelete="CASCADE")
    )
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("dsa_notices.id", ondelete="SET NULL"))
    decision_visibility: Mapped[str | None] = mapped_column(String(64))
    decision_account: Mapped[str | None] = mapped_column(String(64))
    decision_ground: Mapped[str] = mapped_column(String(64))
    illegal_content_legal_ground: Mapped[str | None] = mapped_column(String(500))
    illegal_content_explanation: Mapped[str | None] = mapped_column(String(2000))
    incompatible_content_ground: Mapped[str | None] = mapped_column(String(500))
    incompatible_content_explanation: Mapped[str | None] = mapped_column(String(2000))
    category: Mapped[str] = mapped_column(String(100))
    decision_facts: Mapped[str] = mapped_column(String(5000))
    automated_detection: Mapped[bool] = mapped_column(Boolean)
    automated_decision: Mapped[str] = mapped_column(String(40))
    source_type: Mapped[str] = mapped_column(String(40))
    content_language: Mapped[str | None] = mapped_column(String(8))
    content_date: Mapped[datetime] = mapped_column(UTCDateTime)
    application_date: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the restriction ends: a suspension's end, or when a held comment was published.
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redress: Mapped[str] = mapped_column(String(1000))
    decided_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The Transparency Database's uuid for the statement, once it accepted it.
    transparency_id: Mapped[str | None] = mapped_column(String(64))

    comment: Mapped[Comment | None] = relationship()
    notice: Mapped[Notice | None] = relationship()


class AppealState(enum.StrEnum):
    """An appeal waits for a moderator, or is decided."""

    OPEN = "OPEN"
    DECIDED = "DECIDED"


class AppealOutcome(enum.StrEnum):
    """The decision stands (upheld) or is undone (reversed)."""

    UPHELD = "UPHELD"
    REVERSED = "REVERSED"


def new_appeal_id() -> str:
    """An opaque appeal id."""
    return "apl_" + secrets.token_urlsafe(12)


class Appeal(Base):
    """An author's complaint against one decision (Art. 20 DSA): one per statement."""

    __tablename__ = "dsa_appeals"
    __table_args__ = (
        CheckConstraint("state IN ('OPEN', 'DECIDED')", name="appeal_state_known"),
        Index("ix_dsa_appeals_site_state", "site_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_appeal_id)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    statement_id: Mapped[int] = mapped_column(
        ForeignKey("dsa_statements.id", ondelete="CASCADE"), unique=True
    )
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=AppealState.OPEN)
    outcome: Mapped[str | None] = mapped_column(String(16))
    outcome_reasons: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(254))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    statement: Mapped[StatementOfReasons] = relationship()


# Drop-in compatibility


class CoralSigningSecret(Base):
    """A Coral signing secret that a site rotated away from, honoured until it expires.

    The current secret is ``Site.coral_signing_secret``; Coral signs with every secret it
    still holds, so a request is genuine when one of its signatures matches any of them.
    """

    __tablename__ = "coral_signing_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    secret: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LabelledExample(Base):
    """A text a site's client labelled (Perspective's SuggestCommentScore), for tuning."""

    __tablename__ = "labelled_examples"
    __table_args__ = (Index("ix_labelled_examples_site_created", "site_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    # Model label -> the suggested score (0 to 1), e.g. {"toxicity": 1.0}.
    labels: Mapped[dict[str, float]] = mapped_column(JSON)
    language: Mapped[str | None] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(40))
    client_token: Mapped[str | None] = mapped_column(String(200))
    community_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
