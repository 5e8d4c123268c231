"""The JSON bodies the API answers with, as pydantic models.

The serializers build plain dicts; these models describe them. The OpenAPI document's
response schemas are generated from them, and the tests check real answers against those
schemas. A body this API builds allows no other field; stored JSON that grew over time
(reasons, sentence scores, webhook events) may carry more.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from moderation.models import Actor, DeliveryStatus, Status
from moderation.schemas import MAX_TEXT_LENGTH, Omitted
from moderation.services.moderation import Queue
from moderation.services.webhooks import EVENT_TYPES

Cursor = Annotated[str | None, Field(description="the next page's cursor; null on the last page")]
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
Scores = dict[str, float]


class Body(BaseModel):
    """A body this API builds: exactly these fields."""

    model_config = ConfigDict(extra="forbid")


class Stored(BaseModel):
    """JSON kept with a row as it was written: newer rows may carry more fields."""

    model_config = ConfigDict(extra="allow")


# --- Errors ----------------------------------------------------------------------------------


class ErrorDetail(Body):
    """What went wrong."""

    code: str = Field(description="for programs: `invalid`, `missing_field`, `not_found`...")
    message: str = Field(description="for people")
    field: str | Omitted = Field(None, description="the body field or parameter at fault")
    until: datetime | Omitted | None = Field(
        None, description="403 author_suspended/author_banned: when posting opens again"
    )
    warning: str | Omitted = Field(
        None, description="403 warning_unacknowledged: the moderator's message"
    )
    reported_at: datetime | Omitted = Field(
        None, description="409 already_reported: when this reader reported the comment"
    )


class Error(Body):
    """Every error of this API has this shape."""

    error: ErrorDetail


# --- Comments --------------------------------------------------------------------------------


class Comment(Body):
    """A comment as the site may show it: no scores, no reasons."""

    id: str
    status: Status
    article_id: str
    parent_id: str | None
    author_id: str
    author_name: str
    text: Annotated[str, Field(max_length=MAX_TEXT_LENGTH)]
    created_at: datetime


class Reason(Stored):
    """Why a comment got its decision, shaped alike for rules and the model."""

    code: str = Field(description="e.g. `hold_threshold`, `banned_word`, `premoderation`")
    label: str | None = None
    score: float | None = None
    threshold: float | None = None
    message: str = Field(description="in plain words, e.g. `insult 0.83 >= hold at 0.60`")


class Decision(Body):
    """The outcome and every reason behind it."""

    outcome: Literal["approved", "held", "rejected"]
    reasons: list[Reason]


class ScoringModel(Body):
    """The model that scored the comment."""

    name: str
    version: str


class CommentDetail(Comment):
    """Everything a site may know about its own comment, including why it was decided."""

    decided_at: datetime | None
    decision: Decision | None = Field(description="null until decided")
    scores: Scores = Field(description="per label, 0 to 1; empty until scored")
    model: ScoringModel | None


class CommentPage(Body):
    """An article's approved comments, newest first."""

    comments: list[Comment]
    next_cursor: Cursor


# --- The widget's public API -----------------------------------------------------------------


class PublicComment(Body):
    """What a browser may see: no author id, no scores, no reasons."""

    id: str
    status: Status
    parent_id: str | None
    author_name: str
    text: str
    created_at: datetime


class PublicArticle(Body):
    """The article a page of comments belongs to."""

    id: str
    closed: bool = Field(description="true: new comments are refused (409)")


class PublicCommentPage(Body):
    """An article's published comments for the widget, newest first."""

    article: PublicArticle
    comments: list[PublicComment]
    next_cursor: Cursor


# --- Articles --------------------------------------------------------------------------------


class ArticleSettings(Body):
    """An article's settings."""

    article_id: str
    title: str | None
    url: str | None
    closed: bool = Field(description="new comments are refused (409 article_closed)")
    premoderate: bool = Field(description="every comment the model would publish is held")
    hold_links: bool = Field(description="comments with links or domain names are held")


# --- Webhooks --------------------------------------------------------------------------------


class WebhookActor(Stored):
    """Who made the transition."""

    type: Actor
    id: str | None = Field(description="the moderator's email; null for the system")


class WebhookTransition(Stored):
    """The transition the event reports, as the audit trail keeps it."""

    from_: str = Field(alias="from")
    to: str
    actor: WebhookActor
    reason: str
    reasons: list[Reason]
    note: str | None = None
    at: datetime


class WebhookEventData(Stored):
    """The comment as it was after the transition, and the transition."""

    comment: Comment
    transition: WebhookTransition


class WebhookEvent(Stored):
    """The body of a webhook request, signed in its ``Moderation-Signature`` header."""

    id: str = Field(description="the event's id: deduplicate on this")
    type: EventType
    created_at: datetime
    data: WebhookEventData


class WebhookDelivery(Body):
    """A delivery as the log lists it."""

    id: str
    event_id: str
    event_type: EventType
    comment_id: str | None
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="set while the delivery is pending")
    delivered_at: datetime | None


class WebhookAttempt(Body):
    """One attempt to deliver an event."""

    at: datetime
    url: str
    status_code: int | None = Field(description="the receiver's answer; null when none came")
    error: str | None
    duration_ms: float


class WebhookDeliveryDetail(WebhookDelivery):
    """A delivery with the event it carries and every attempt."""

    event: WebhookEvent
    attempt_log: list[WebhookAttempt]


class WebhookDeliveryPage(Body):
    """The delivery log, newest first."""

    deliveries: list[WebhookDelivery]
    next_cursor: Cursor


# --- Moderation ------------------------------------------------------------------------------


class Audit(Body):
    """One audit event: who, from, to, why, when."""

    at: datetime
    actor_type: Actor
    actor_id: str | None
    from_status: Status
    to_status: Status
    reason: str
    note: str | None
    attempted: Status | None = Field(description="the status a moderator's no-op asked for")


class AuditEntry(Audit):
    """An audit event with the comment and site it belongs to."""

    comment_id: str
    site: str


class AuthorRecord(Body):
    """The author's decided comments on that site."""

    approved: int
    rejected: int


class SentenceScore(Stored):
    """The scores of one sentence."""

    begin: Annotated[int, Field(ge=0, description="offset into text, in code points")]
    end: Annotated[int, Field(ge=0, description="offset into text, in code points, exclusive")]
    scores: Scores


class OpenReport(Body):
    """A reader's report not yet closed by a moderator."""

    id: str
    reason: str = Field(
        description="offensive, abusive, hate_speech, spam, misinformation, illegal or other"
    )
    text: str | None
    created_at: datetime


class ModerationComment(CommentDetail):
    """A comment as its moderators see it: detail, version, author record, history."""

    site: str
    version: str = Field(description="send it back with an action; a stale one is a 409")
    author_record: AuthorRecord
    reports: list[OpenReport] = Field(description="open reports, oldest first")
    history: list[Audit]
    sentence_scores: list[SentenceScore] | None = Field(
        description="per sentence of a comment the model held; null for other comments "
        "and those of one sentence"
    )
    language: str | None = Field(
        description="detected language (ISO 639-1); null until scored or when too short "
        "or unsure to tell"
    )


class ModerationQueuePage(Body):
    """A queue page with the counts of every queue under the same filters."""

    queue: Queue
    counts: dict[str, int] = Field(description="comments per queue: held, approved, ...")
    comments: list[ModerationComment]
    next_cursor: Cursor


class ModerationAuditPage(Body):
    """Audit events, newest first."""

    events: list[AuditEntry]
    next_before: int | None = Field(description="pass as `before` for the next page")


class ModerationOutcome(Body):
    """What a moderator's action did."""

    result: Literal["applied", "unchanged"]
    message: str
    comment: ModerationComment


class BulkResult(Body):
    """What became of one comment of a bulk action."""

    id: str
    result: Literal["applied", "unchanged", "conflict", "not_found"]
    message: str
    status: Status | Omitted = None
    version: str | Omitted = None


class BulkResults(Body):
    """A result per comment, in the order asked."""

    results: list[BulkResult]


# --- Authors ---------------------------------------------------------------------------------


class Sanction(Body):
    """A moderator's measure against an author on a site; lifted, never deleted."""

    id: str
    site: str
    author_id: str
    kind: Literal["warn", "suspend", "ban", "premoderate"]
    reason: str = Field(description="why (for a warning, the message the author is shown)")
    ends_at: datetime | None
    created_at: datetime
    created_by: str
    acknowledged_at: datetime | None = Field(description="when the author read a warning")
    lifted_at: datetime | None
    lifted_by: str | None
    lift_reason: str | None
    in_force: bool


class SanctionResult(Body):
    """A new sanction, and what became of the comments a ban rejected with it."""

    sanction: Sanction
    rejected: list[BulkResult]


class AuthorComment(Body):
    """One of an author's recent comments and its outcome."""

    id: str
    article_id: str
    status: Status
    text: str
    created_at: datetime


class AuthorStanding(Body):
    """An author's record on a site: counts, recent comments, sanctions."""

    site: str
    author_id: str
    author_name: str
    counts: dict[str, int] = Field(description="published, held, rejected, pending, reported")
    recent: list[AuthorComment]
    sanctions: list[Sanction] = Field(description="newest first, lifted ones included")


# --- What if ---------------------------------------------------------------------------------


class WhatIfPeriod(Body):
    """The period whose moderator decisions were replayed (``until`` excluded)."""

    since: datetime
    until: datetime


class WhatIfTally(Body):
    """What one set of thresholds would have done with the moderators' decisions."""

    approved_held: int = Field(description="moderator approvals these thresholds would have held")
    rejected_published: int = Field(
        description="moderator rejections these thresholds would have published"
    )


class WhatIfSiteTally(WhatIfTally):
    """A site's tally and the thresholds it used."""

    thresholds: Scores


class WhatIfCounts(Body):
    """The decided comments counted."""

    approved: int
    rejected: int
    decided: int
    unscored: int = Field(description="decided comments without scores, left out of the counts")


class WhatIfSite(WhatIfCounts):
    """One site's replay at its current and the proposed thresholds."""

    site: str
    current: WhatIfSiteTally
    proposed: WhatIfSiteTally


class WhatIf(WhatIfCounts):
    """The replay over the sites: totals, then each site."""

    period: WhatIfPeriod
    asked: Scores = Field(description="the proposed thresholds as asked")
    current: WhatIfTally
    proposed: WhatIfTally
    sites: list[WhatIfSite]


# --- The widget: reports and the reader's standing -------------------------------------------


class ReaderOutcome(Body):
    """What the author is told about their own comment."""

    status: Status
    reason_code: str | None = Field(
        description="why it was not published: a moderator's reject reason (offensive, "
        "abusive, spam, off_topic, other) or a rule's or the model's code; null otherwise"
    )
    reason: str | None = Field(
        description="in plain words: 'awaiting moderation', or why it was not published"
    )


class ReaderComment(PublicComment):
    """A comment; with ``outcome`` when the Reader-Token is its author's."""

    outcome: ReaderOutcome | Omitted = None


class PublicReport(Body):
    """A reader's report, as received."""

    id: str
    comment_id: str
    reason: str = Field(
        description="offensive, abusive, hate_speech, spam, misinformation, illegal or other"
    )
    created_at: datetime


class ReaderWarning(Body):
    """A moderator's warning the reader has not acknowledged yet."""

    id: str
    message: str
    created_at: datetime


class ReaderStanding(Body):
    """Whether the reader may comment: a warning to acknowledge, a suspension, a ban."""

    warning: ReaderWarning | None
    suspended_until: datetime | None
    banned: bool


class Acknowledged(Body):
    """The reader's warnings were acknowledged."""

    acknowledged: int = Field(description="how many warnings this acknowledged")
