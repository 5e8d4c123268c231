"""The JSON bodies the API answers with, as pydantic models.

The serializers build plain dicts; these models describe them. The OpenAPI document's
response schemas are generated from them, and the tests check real answers against those
schemas. A body this API builds allows no other field; stored JSON that grew over time
(reasons, sentence scores, webhook events) may carry more.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from moderation.models import (
    Actor,
    AppealOutcome,
    AppealState,
    DeliveryStatus,
    NoticeDecision,
    NoticeState,
    Status,
)
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


# --- EU Digital Services Act -----------------------------------------------------------------


class TransparencyStatement(Stored):
    """A statement of reasons as the DSA Transparency Database's API takes it: its field
    names and enumerations, no personal data; a field that does not apply is left out."""

    decision_ground: str = Field(
        description="DECISION_GROUND_ILLEGAL_CONTENT or DECISION_GROUND_INCOMPATIBLE_CONTENT"
    )
    category: str = Field(description="the database's STATEMENT_CATEGORY_...")
    content_type: list[str] = Field(description="always `[CONTENT_TYPE_TEXT]`: a comment")
    content_date: date = Field(description="the day the comment was posted")
    application_date: date = Field(description="the day the restriction was applied")
    decision_facts: str = Field(description="the facts and circumstances relied on")
    source_type: str = Field(
        description="what started it: SOURCE_ARTICLE_16 (a notice), "
        "SOURCE_TYPE_OTHER_NOTIFICATION (readers' reports) or SOURCE_VOLUNTARY"
    )
    automated_detection: Literal["Yes", "No"] = Field(
        description="whether automated means detected the comment"
    )
    automated_decision: str = Field(
        description="AUTOMATED_DECISION_FULLY, AUTOMATED_DECISION_PARTIALLY or "
        "AUTOMATED_DECISION_NOT_AUTOMATED"
    )
    puid: str = Field(description="the platform's unique id of the statement")
    decision_visibility: list[str] | Omitted = Field(
        None,
        description="a restriction of the comment: `[DECISION_VISIBILITY_CONTENT_REMOVED]` or "
        "`[DECISION_VISIBILITY_CONTENT_DISABLED]`",
    )
    end_date_visibility_restriction: date | Omitted = Field(
        None, description="when the comment's restriction ended, if it did"
    )
    decision_account: str | Omitted = Field(
        None,
        description="a restriction of the author: DECISION_ACCOUNT_SUSPENDED or "
        "DECISION_ACCOUNT_TERMINATED",
    )
    account_type: str | Omitted = Field(
        None, description="with decision_account: ACCOUNT_TYPE_PRIVATE"
    )
    end_date_account_restriction: date | Omitted = Field(None, description="when a suspension ends")
    illegal_content_legal_ground: str | Omitted = Field(
        None, description="illegal content: the law relied on"
    )
    illegal_content_explanation: str | Omitted | None = Field(
        None, description="illegal content: why the comment is illegal under that law"
    )
    incompatible_content_ground: str | Omitted = Field(
        None, description="content against the site's terms: the rule relied on"
    )
    incompatible_content_explanation: str | Omitted | None = Field(
        None, description="content against the site's terms: why it breaks that rule"
    )
    incompatible_content_illegal: Literal["No"] | Omitted = Field(
        None, description="with incompatible_content_ground: the content is not judged illegal"
    )
    content_language: str | Omitted = Field(
        None, description="the comment's language, upper case, when it is an official EU one"
    )


class TransparencyPeriod(Body):
    """The statements of reasons the site issued in a period."""

    since: datetime = Field(description="the period's start, included")
    until: datetime = Field(description="the period's end, excluded")
    statements: list[TransparencyStatement] = Field(description="oldest first")


class TransparencyReportRow(Body):
    """One figure of the transparency report."""

    section: str = Field(
        description="period, notices, notices by category, notices by outcome, restrictions "
        "by ground/automation/type/source, appeals or sanctions"
    )
    item: str = Field(description="what is counted, e.g. `received` or a category")
    value: str = Field(
        description="a count; hours to decision with one decimal, empty when nothing was "
        "decided; a time for the period's rows"
    )


class TransparencyReport(Body):
    """The transparency report's figures for a period (Art. 15 and 24 DSA)."""

    rows: list[TransparencyReportRow] = Field(description="in the report's order")


class NoticedComment(Body):
    """A comment a notice names, and what became of it."""

    id: str = Field(description="the comment's id")
    outcome: Literal["pending", "kept", "removed", "restored on appeal"] = Field(
        description="pending until the notice is decided"
    )


class NoticeStatus(Body):
    """A notice of illegal content as its reporter follows it."""

    reference: str = Field(description="the reporter's receipt, `DSA-...`")
    state: NoticeState = Field(description="where the notice is in its review")
    category: str = Field(description="the kind of illegal content the reporter named")
    received_at: datetime = Field(description="when the notice was filed")
    decision: NoticeDecision | None = Field(
        description="ILLEGAL (removed) or LEGAL (kept); null until decided and for a void notice"
    )
    legal_ground: str | None = Field(
        description="the law relied on (ILLEGAL), or why the content stays"
    )
    explanation: str | None = Field(description="the decision's reasons; null until decided")
    decided_at: datetime | None = Field(description="null until decided")
    automated_decision: bool | None = Field(
        description="false once decided (a person decides notices); null until then"
    )
    comments: list[NoticedComment] = Field(description="the comments the notice names")
    redress: str | None = Field(
        description="where the reporter may turn if they disagree; null until decided"
    )


class AuthorAppeal(Body):
    """An author's appeal against a decision, and its outcome."""

    id: str = Field(description="the appeal's id")
    statement_id: str = Field(description="the statement of reasons appealed")
    state: AppealState = Field(description="OPEN until a moderator decides it")
    received_at: datetime = Field(description="when the author filed it")
    outcome: AppealOutcome | None = Field(
        description="UPHELD (the decision stands) or REVERSED; null while open"
    )
    reasons: str | None = Field(description="the moderator's reasons; null while open")
    decided_at: datetime | None = Field(description="null while open")


class AuthorStatement(Body):
    """A statement of reasons (Art. 17 DSA) as the restricted author reads it."""

    id: str = Field(description="the statement's id, `sor_...`")
    url: str = Field(description="the statement's page, for the author to open")
    summary: str = Field(description="what was restricted, in plain words")
    comment_id: str | None = Field(description="the restricted comment; null for a sanction")
    decision_visibility: str | None = Field(
        description="DECISION_VISIBILITY_CONTENT_REMOVED or _DISABLED; null for a sanction"
    )
    decision_account: str | None = Field(
        description="DECISION_ACCOUNT_SUSPENDED or _TERMINATED; null for a comment's restriction"
    )
    decision_ground: str = Field(
        description="DECISION_GROUND_ILLEGAL_CONTENT or DECISION_GROUND_INCOMPATIBLE_CONTENT"
    )
    illegal_content_legal_ground: str | None = Field(description="illegal content: the law")
    illegal_content_explanation: str | None = Field(
        description="illegal content: why it is illegal under that law"
    )
    incompatible_content_ground: str | None = Field(
        description="against the site's terms: the rule"
    )
    incompatible_content_explanation: str | None = Field(
        description="against the site's terms: why it breaks that rule"
    )
    decision_facts: str = Field(description="the facts and circumstances relied on")
    automated_detection: bool = Field(description="whether automated means detected it")
    automated_decision: str = Field(
        description="AUTOMATED_DECISION_FULLY, _PARTIALLY or _NOT_AUTOMATED"
    )
    source_type: str = Field(
        description="SOURCE_ARTICLE_16 (a notice), SOURCE_TYPE_OTHER_NOTIFICATION (readers' "
        "reports) or SOURCE_VOLUNTARY"
    )
    application_date: datetime = Field(description="when the restriction was applied")
    end_date: datetime | None = Field(
        description="when it ended or ends (a suspension's end, a held comment published)"
    )
    redress: str = Field(description="the author's ways to contest the decision")
    appeal_until: datetime = Field(description="the last moment to appeal (six months)")
    appeal: AuthorAppeal | None = Field(description="the author's appeal; null if none")
    reversed_at: datetime | None = Field(description="when an appeal reversed the decision")


class AuthorStatements(Body):
    """The reader's own statements of reasons."""

    statements: list[AuthorStatement] = Field(description="newest first")
