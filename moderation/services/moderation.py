"""Moderator use cases: the queues, the cards, the audit log, and the one way to decide a comment.

Every status change a moderator makes goes through :func:`moderate`, in the caller's
transaction: a compare-and-set UPDATE plus an audit row, so two moderators acting on one
comment at once give one winner, a told loser, and both attempts in the audit trail.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, select, true, tuple_, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from moderation.db import utcnow
from moderation.dsa.statements import record_moderation
from moderation.models import (
    Actor,
    Article,
    AuditEvent,
    Comment,
    CommentScore,
    Moderator,
    Report,
    ReportResolution,
    Site,
    Status,
)
from moderation.policy import LABELS, SitePolicy
from moderation.services.explanation import Segment, segments
from moderation.services.reports import close_reports, has_open_reports, open_reports, summary
from moderation.services.webhooks import COMMENT_MODERATED, emit_event

# The sites a moderator may see; None means all of them (an admin).
Scope = frozenset[int] | None

REJECT_REASONS = {
    "offensive": "Offensive",
    "abusive": "Abusive",
    "spam": "Spam",
    "off_topic": "Off-topic",
    "other": "Other",
    # DSA: the rejection's statement of reasons names the legal ground and explains it.
    "illegal_content": "Illegal content",
}
ILLEGAL_CONTENT = "illegal_content"
# The reasons a rejection needs nothing more for: the card's keys and a ban's rejections.
# Illegal content also needs the legal ground and an explanation (the Notices queue and
# the moderation API ask for them).
QUICK_REJECT_REASONS = {
    code: label for code, label in REJECT_REASONS.items() if code != ILLEGAL_CONTENT
}
MAX_LEGAL_GROUND = 500
MAX_NOTE_LENGTH = 1000
# The language filter's value for comments whose language could not be told (BCP 47's "und").
UNDETERMINED = "und"
MAX_BULK = 100
CONFLICT = "conflict"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Unscored comments (scoring failed, or still pending) sort below every scored one.
_UNSCORED = -1.0


class Queue(enum.StrEnum):
    """The moderator's queues; held is where the work is."""

    HELD = "held"
    REPORTED = "reported"
    APPROVED = "approved"
    REJECTED = "rejected"
    ALL = "all"

    @property
    def status(self) -> Status | None:
        """The status this queue shows, or None for several (all; reported: any with open
        reports)."""
        return None if self in (Queue.ALL, Queue.REPORTED) else Status(self.value)


class Order(enum.StrEnum):
    """How a queue is sorted."""

    OLDEST = "oldest"
    NEWEST = "newest"
    SCORE = "score"


class ModerationError(ValueError):
    """An action was asked with bad input; nothing was changed."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


class Result(enum.StrEnum):
    """What became of a moderator's action."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Outcome:
    """One action's result and a sentence for the moderator."""

    comment: Comment
    result: Result
    message: str
    from_status: str

    @property
    def changed(self) -> bool:
        """True when the comment's status was changed by this action."""
        return self.result is Result.APPLIED


@dataclass(frozen=True)
class QueueFilter:
    """What a queue page shows."""

    queue: Queue = Queue.HELD
    site_id: int | None = None
    article_id: int | None = None
    search: str | None = None
    # A detected language's code, or UNDETERMINED for comments too short or unsure to tell.
    language: str | None = None
    order: Order = Order.OLDEST


@dataclass(frozen=True)
class Page:
    """One page of a queue and the cursor of the next, if any."""

    comments: list[Comment]
    next_cursor: str | None


@dataclass(frozen=True)
class ScoreBar:
    """One label's score with the site's thresholds for it."""

    label: str
    score: float
    hold_at: float | None
    reject_at: float | None

    @property
    def crossed(self) -> str | None:
        """'reject' or 'hold' when the score reaches that threshold."""
        if self.reject_at is not None and self.score >= self.reject_at:
            return "reject"
        if self.hold_at is not None and self.score >= self.hold_at:
            return "hold"
        return None


@dataclass
class Card:
    """Everything the moderator's card shows about one comment."""

    comment: Comment
    site_name: str
    scores: list[ScoreBar] = field(default_factory=list)
    model: str | None = None
    approved_by_author: int = 0
    rejected_by_author: int = 0
    history: list[AuditEvent] = field(default_factory=list)
    # The text in runs, the sentences that drove a hold marked (the whole text when none).
    segments: list[Segment] = field(default_factory=list)
    # Readers' reports not yet closed by a moderator, oldest first.
    reports: list[Report] = field(default_factory=list)

    @property
    def reports_summary(self) -> str | None:
        """``3 reader reports: offensive 2, spam 1``, or None without open reports."""
        return summary([report.reason for report in self.reports]) if self.reports else None

    @property
    def version(self) -> str:
        """The version the moderator saw, sent back with an action."""
        return comment_version(self.comment)

    @property
    def reasons(self) -> list[str]:
        """Why the comment got its automatic decision, in plain words."""
        return [reason_message(reason) for reason in self.comment.reasons or []]


def language_filter(raw: str | None) -> str | None:
    """A language filter from a query string: a code such as ``de``, or ``und``; else None."""
    code = (raw or "").strip().lower()
    return code if re.fullmatch("[a-z]{2,3}", code) else None


# ---------------------------------------------------------------------------------- scope


def in_scope(column: Any, scope: Scope) -> ColumnElement[bool]:
    """A condition limiting a site_id column to the moderator's sites."""
    return true() if scope is None else column.in_(sorted(scope))


def comment_for_moderator(session: Session, scope: Scope, public_id: str) -> Comment | None:
    """A comment on one of the moderator's sites, or None (also for other sites' ids)."""
    return comments_for_moderator(session, scope, [public_id]).get(public_id)


def comments_for_moderator(
    session: Session, scope: Scope, public_ids: Iterable[str]
) -> dict[str, Comment]:
    """The comments among these ids on the moderator's sites, by public id."""
    ids = sorted(set(public_ids))
    if not ids:
        return {}
    query = (
        select(Comment)
        .where(Comment.public_id.in_(ids), in_scope(Comment.site_id, scope))
        .options(selectinload(Comment.scores))
    )
    return {comment.public_id: comment for comment in session.scalars(query)}


def article_in_scope(session: Session, scope: Scope, article_id: int) -> Article | None:
    """An article of one of the moderator's sites, or None."""
    query = select(Article).where(Article.id == article_id, in_scope(Article.site_id, scope))
    return session.scalars(query).one_or_none()


# --------------------------------------------------------------------------------- queues


def filtered(
    session: Session, query: Select[Any], scope: Scope, filters: QueueFilter
) -> Select[Any]:
    """A query on comments limited to the moderator's sites and the queue's filters."""
    query = query.where(in_scope(Comment.site_id, scope))
    if filters.site_id is not None:
        query = query.where(Comment.site_id == filters.site_id)
    if filters.article_id is not None:
        query = query.where(Comment.article_id == filters.article_id)
    if filters.search:
        query = query.where(_text_contains(session, filters.search))
    if filters.language == UNDETERMINED:
        query = query.where(Comment.language.is_(None))
    elif filters.language:
        query = query.where(Comment.language == filters.language)
    return query


def _text_contains(session: Session, words: str) -> ColumnElement[bool]:
    # SQLite's LIKE ignores ASCII case already; lower() on every row would double the scan.
    if session.get_bind().dialect.name == "sqlite":
        return Comment.text.contains(words, autoescape=True)
    return Comment.text.icontains(words, autoescape=True)


def queue_counts(session: Session, scope: Scope, filters: QueueFilter) -> dict[str, int]:
    """How many comments each queue holds under the same site, article and search filters."""
    query = filtered(session, select(Comment.status, func.count()), scope, filters)
    by_status = dict(session.execute(query.group_by(Comment.status)).all())
    counts = {queue.value: by_status.get(queue.value, 0) for queue in Queue if queue.status}
    counts[Queue.ALL.value] = sum(by_status.values())
    reported = filtered(session, select(func.count()).select_from(Comment), scope, filters)
    counts[Queue.REPORTED.value] = session.scalar(reported.where(has_open_reports(Comment.id))) or 0
    return counts


def score_key() -> ColumnElement[float]:
    """The highest-score-first sort key; the same expression as in the score indexes."""
    # A literal, not a bound parameter: an index on an expression is used only for a query
    # with the very same expression.
    return func.coalesce(Comment.top_score, literal_column(repr(_UNSCORED)))


def queue_page(
    session: Session,
    scope: Scope,
    filters: QueueFilter,
    cursor: str | None = None,
    limit: int = 20,
) -> Page:
    """One page of a queue in the chosen order, after the cursor.

    Keyset pagination on indexed keys, so page 500 costs what page 1 does: arrival order
    is id order (ids increase as comments arrive), score order is (score, id).
    """
    query = filtered(session, select(Comment), scope, filters)
    if filters.queue.status is not None:
        query = query.where(Comment.status == filters.queue.status)
    if filters.queue is Queue.REPORTED:
        query = query.where(has_open_reports(Comment.id))
    if cursor:
        query = query.where(_after(filters.order, decode_cursor(cursor, filters.order)))
    query = query.order_by(*_ordering(filters.order)).limit(limit + 1)
    comments = list(session.scalars(query.options(selectinload(Comment.scores))))
    page, more = comments[:limit], len(comments) > limit
    return Page(page, encode_cursor(page[-1], filters.order) if more else None)


def _ordering(order: Order) -> tuple[ColumnElement[Any], ...]:
    if order is Order.SCORE:
        return (score_key().desc(), Comment.id.desc())
    return (Comment.id.asc(),) if order is Order.OLDEST else (Comment.id.desc(),)


def _after(order: Order, position: tuple[float, int]) -> ColumnElement[bool]:
    score, comment_id = position
    if order is Order.SCORE:
        return tuple_(score_key(), Comment.id) < tuple_(score, comment_id)
    return Comment.id > comment_id if order is Order.OLDEST else Comment.id < comment_id


class CursorError(ValueError):
    """A cursor this service did not give out, or one for another order."""


def encode_cursor(comment: Comment, order: Order) -> str:
    """An opaque cursor positioned just after this comment."""
    score = comment.top_score if comment.top_score is not None else _UNSCORED
    key = score if order is Order.SCORE else 0
    raw = json.dumps([order.value, key, comment.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, order: Order) -> tuple[float, int]:
    """The (score, id) a cursor stands for (the score is 0 outside score order)."""
    try:
        kind, key, comment_id = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=="))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise CursorError("the cursor is not one this service gave out") from None
    valid = isinstance(comment_id, int) and isinstance(key, int | float)
    if kind != order.value or not valid:
        raise CursorError("the cursor belongs to another order or is damaged")
    return float(key), comment_id


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


# ---------------------------------------------------------------------------------- cards


def cards_for(
    session: Session,
    comments: Sequence[Comment],
    model_hold_at: Mapping[str, float] | None = None,
) -> list[Card]:
    """The cards of these comments: scores against thresholds, author record, history.

    ``model_hold_at`` is the workers' model's recorded thresholds, which a site's own
    bands override.
    """
    if not comments:
        return []
    sites = _sites(session, {comment.site_id for comment in comments})
    records = author_records(session, comments)
    history = comment_history(session, [comment.id for comment in comments])
    reports = open_reports(session, [comment.id for comment in comments])
    cards = []
    for comment in comments:
        site = sites[comment.site_id]
        approved, rejected = records.get((comment.site_id, comment.author_id), (0, 0))
        policy = SitePolicy.from_stored(site.policy).in_force(model_hold_at)
        bars, model = score_bars(comment, policy)
        events = history.get(comment.id, [])
        runs = segments(comment.text, comment.sentence_scores, policy)
        cards.append(
            Card(
                comment,
                site.name,
                bars,
                model,
                approved,
                rejected,
                events,
                runs,
                reports.get(comment.id, []),
            )
        )
    return cards


def _sites(session: Session, site_ids: set[int]) -> dict[int, Site]:
    return {site.id: site for site in session.scalars(select(Site).where(Site.id.in_(site_ids)))}


def score_bars(comment: Comment, policy: SitePolicy) -> tuple[list[ScoreBar], str | None]:
    """The latest model's score per label, in the policy's label order, and that model."""
    if not comment.scores:
        return [], None
    latest = max(comment.scores, key=lambda score: (score.created_at, score.id))
    current = [
        s
        for s in comment.scores
        if (s.model_name, s.model_version) == (latest.model_name, latest.model_version)
    ]
    rank = {label: index for index, label in enumerate(LABELS)}
    current.sort(key=lambda s: (rank.get(s.label, len(rank)), s.label))
    return [_bar(score, policy) for score in current], f"{latest.model_name} {latest.model_version}"


def _bar(score: CommentScore, policy: SitePolicy) -> ScoreBar:
    bands = policy.labels.get(score.label)
    hold_at, reject_at = (bands.hold_at, bands.reject_at) if bands else (None, None)
    return ScoreBar(score.label, score.score, hold_at, reject_at)


def author_records(
    session: Session, comments: Sequence[Comment]
) -> dict[tuple[int, str], tuple[int, int]]:
    """Approved and rejected counts of each comment's author on that comment's site."""
    query = (
        select(Comment.site_id, Comment.author_id, Comment.status, func.count())
        .where(
            Comment.site_id.in_({c.site_id for c in comments}),
            Comment.author_id.in_({c.author_id for c in comments}),
            Comment.status.in_([Status.APPROVED, Status.REJECTED]),
        )
        .group_by(Comment.site_id, Comment.author_id, Comment.status)
    )
    counts: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for site_id, author_id, status, count in session.execute(query):
        counts[(site_id, author_id)][status] = count
    return {
        key: (value.get(Status.APPROVED, 0), value.get(Status.REJECTED, 0))
        for key, value in counts.items()
    }


def comment_history(session: Session, comment_ids: Sequence[int]) -> dict[int, list[AuditEvent]]:
    """Each comment's audit events, oldest first."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.comment_id.in_(comment_ids))
        .order_by(AuditEvent.created_at, AuditEvent.id)
    )
    history: dict[int, list[AuditEvent]] = defaultdict(list)
    for event in session.scalars(query):
        history[event.comment_id].append(event)
    return history


def reason_message(reason: dict[str, Any]) -> str:
    """A stored reason in plain words."""
    return str(reason.get("message") or str(reason.get("code", "")).replace("_", " "))


def comment_version(comment: Comment) -> str:
    """An opaque version that changes whenever the comment's status is written."""
    return str(_micros(comment.updated_at))


# -------------------------------------------------------------------------------- actions


def moderate(
    session: Session,
    comment: Comment,
    moderator: Moderator,
    to_status: str,
    reason_code: str | None = None,
    note: str | None = None,
    *,
    expected_version: str | None = None,
    source: str = "web",
    legal_ground: str | None = None,
) -> Outcome:
    """Approve or reject a comment as a moderator: the one place such transitions happen.

    In the caller's transaction: the status changes only if the comment is still as the
    moderator saw it (``expected_version``, when given, and a compare-and-set UPDATE);
    an applied change and a lost race both write an audit row; asking for the status the
    comment already has changes nothing and says so.
    """
    target = _target_status(to_status)
    reason_code = _reason_code(target, reason_code)
    note = _note(note)
    legal_ground = _legal_ground(reason_code, legal_ground, note)
    stale = expected_version is not None and expected_version != comment_version(comment)
    if stale and not _own_repeat(session, comment, moderator, target):
        return _conflict(session, comment, moderator, target, reason_code, note, source)
    if comment.status == target:
        return Outcome(comment, Result.UNCHANGED, f"already {target}; nothing changed", target)
    return _apply(
        session, comment, moderator, target, reason_code, note, source, legal_ground=legal_ground
    )


def _legal_ground(
    reason_code: str | None, legal_ground: str | None, note: str | None
) -> str | None:
    """Illegal content is rejected only with the legal ground and an explanation (the note)."""
    if reason_code != ILLEGAL_CONTENT:
        return None
    ground = (legal_ground or "").strip()
    if not ground or len(ground) > MAX_LEGAL_GROUND:
        message = f"illegal content needs the legal ground (at most {MAX_LEGAL_GROUND} characters)"
        raise ModerationError("invalid", message, "legal_ground")
    if not note:
        raise ModerationError("invalid", "illegal content needs an explanation (note)", "note")
    return ground


REPORTS_DISMISSED = "reports_dismissed"


def dismiss_reports(
    session: Session,
    comment: Comment,
    moderator: Moderator,
    *,
    expected_version: str | None = None,
    source: str = "web",
) -> Outcome:
    """Dismiss a comment's open reports: it stays (or is again) published, the reports close.

    A comment the reports sent back to held is approved through :func:`moderate`; one still
    published gets an audit row that records the dismissal.
    """
    stale = expected_version is not None and expected_version != comment_version(comment)
    if comment.status != Status.APPROVED:
        if comment.status != Status.HELD:
            if stale:  # decided since the moderator looked: say so, as for any action
                return _conflict(session, comment, moderator, Status.APPROVED, None, None, source)
            raise ModerationError(
                "invalid", f"a {comment.status} comment has no reports to dismiss", "action"
            )
        return moderate(
            session,
            comment,
            moderator,
            Status.APPROVED,
            expected_version=expected_version,
            source=source,
        )
    if stale:
        return _conflict(session, comment, moderator, Status.APPROVED, None, None, source)
    if not open_reports(session, [comment.id]):
        return Outcome(
            comment, Result.UNCHANGED, "no open reports; nothing changed", comment.status
        )
    # Compare-and-set, as for any decision: reports that held the comment meanwhile, or
    # another moderator's action, make this a conflict instead of a silent dismissal.
    now = utcnow()
    matched = session.execute(
        update(Comment)
        .where(
            Comment.id == comment.id,
            Comment.status == Status.APPROVED,
            Comment.updated_at == comment.updated_at,
        )
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not matched:
        session.refresh(comment)
        return _conflict(session, comment, moderator, Status.APPROVED, None, None, source)
    set_committed_value(comment, "updated_at", now)
    closed = close_reports(session, comment, ReportResolution.DISMISSED, moderator.email)
    detail = _detail(moderator, source, None, None) | {"reports_closed": closed}
    _audit(session, comment, moderator, comment.status, comment.status, REPORTS_DISMISSED, detail)
    return Outcome(comment, Result.APPLIED, f"{closed} report(s) dismissed", comment.status)


def _own_repeat(session: Session, comment: Comment, moderator: Moderator, target: Status) -> bool:
    """True for a moderator's own repeated action (a double click): no conflict to report."""
    if comment.status != target:
        return False
    last = _last_change(session, comment)
    return (
        last is not None and last.actor_type == Actor.MODERATOR and last.actor_id == moderator.email
    )


def moderate_many(
    session: Session,
    moderator: Moderator,
    targets: Sequence[tuple[Comment, str | None]],
    to_status: str,
    reason_code: str | None = None,
    note: str | None = None,
    *,
    source: str = "web",
    legal_ground: str | None = None,
) -> list[Outcome]:
    """The same action on several comments (each with the version the moderator saw)."""
    if len(targets) > MAX_BULK:
        raise ModerationError("too_many", f"at most {MAX_BULK} comments at once", "ids")
    return [
        moderate(
            session,
            comment,
            moderator,
            to_status,
            reason_code,
            note,
            expected_version=version,
            source=source,
            legal_ground=legal_ground,
        )
        for comment, version in targets
    ]


def _target_status(to_status: str) -> Status:
    if to_status not in (Status.APPROVED, Status.REJECTED):
        raise ModerationError("invalid", "a moderator can only approve or reject", "action")
    return Status(to_status)


def _reason_code(target: Status, reason_code: str | None) -> str | None:
    if target is Status.APPROVED:
        return None
    if reason_code not in REJECT_REASONS:
        choices = ", ".join(REJECT_REASONS)
        raise ModerationError("invalid", f"reason must be one of: {choices}", "reason")
    return reason_code


def _note(note: str | None) -> str | None:
    note = (note or "").strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise ModerationError("invalid", f"note is over {MAX_NOTE_LENGTH} characters", "note")
    return note or None


def _apply(
    session: Session,
    comment: Comment,
    moderator: Moderator,
    target: Status,
    reason_code: str | None,
    note: str | None,
    source: str,
    *,
    legal_ground: str | None = None,
) -> Outcome:
    from_status, now = comment.status, utcnow()
    matched = session.execute(
        update(Comment)
        .where(
            Comment.id == comment.id,
            Comment.status == from_status,
            Comment.updated_at == comment.updated_at,
        )
        .values(status=target, decided_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not matched:
        # Another moderator (or the worker) wrote the row since it was read.
        session.refresh(comment)
        return _conflict(session, comment, moderator, target, reason_code, note, source)
    for key, value in {"status": target, "decided_at": now, "updated_at": now}.items():
        set_committed_value(comment, key, value)
    detail = _detail(moderator, source, reason_code, note)
    detail["reversal"] = from_status in (Status.APPROVED, Status.REJECTED)
    if legal_ground:
        detail["legal_ground"] = legal_ground
    # A decision closes the comment's open reports: approving dismisses them, rejecting
    # upholds them; later reports start a new count.
    resolution = (
        ReportResolution.DISMISSED if target is Status.APPROVED else ReportResolution.REJECTED
    )
    closed = close_reports(session, comment, resolution, moderator.email)
    if closed:
        detail["reports_closed"] = closed
    _audit(session, comment, moderator, from_status, target, reason_code or "approved", detail)
    # DSA Art. 17: a rejection's statement of reasons, in the same transaction.
    record_moderation(session, comment, moderator.email, from_status, target, detail)
    # The webhook event joins this transaction; its delivery task is sent after commit.
    emit_event(session, comment, COMMENT_MODERATED)
    verb = "approved" if target is Status.APPROVED else f"rejected ({REJECT_REASONS[reason_code]})"
    return Outcome(comment, Result.APPLIED, verb, from_status)


def _conflict(
    session: Session,
    comment: Comment,
    moderator: Moderator,
    target: Status,
    reason_code: str | None,
    note: str | None,
    source: str,
) -> Outcome:
    winner = _last_change(session, comment)
    detail = _detail(moderator, source, reason_code, note) | {"attempted": target}
    # from == to: the row records an attempt that changed nothing.
    _audit(session, comment, moderator, comment.status, comment.status, CONFLICT, detail)
    who = describe_actor(winner) if winner else "someone else"
    message = f"{who} changed this comment to {comment.status} first; your action was not applied"
    return Outcome(comment, Result.CONFLICT, message, comment.status)


def _last_change(session: Session, comment: Comment) -> AuditEvent | None:
    query = (
        select(AuditEvent)
        .where(AuditEvent.comment_id == comment.id, AuditEvent.reason != CONFLICT)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def _detail(
    moderator: Moderator, source: str, reason_code: str | None, note: str | None
) -> dict[str, Any]:
    return {
        "moderator_id": moderator.id,
        "source": source,
        "reason_code": reason_code,
        "note": note,
    }


def _audit(
    session: Session,
    comment: Comment,
    moderator: Moderator,
    from_status: str,
    to_status: str,
    reason: str,
    detail: dict[str, Any],
) -> None:
    session.add(
        AuditEvent(
            site_id=comment.site_id,
            comment_id=comment.id,
            actor_type=Actor.MODERATOR,
            actor_id=moderator.email,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            detail=detail,
        )
    )
    session.flush()


def describe_actor(event: AuditEvent) -> str:
    """Who made an audit event, for people."""
    if event.actor_type == Actor.MODERATOR:
        return event.actor_id or "a moderator"
    return "the automatic check"


def describe_event(event: AuditEvent) -> str:
    """What an audit event did, in plain words."""
    detail = event.detail or {}
    if event.reason == CONFLICT:
        return f"tried to {_verb(detail.get('attempted'))}; not applied (already {event.to_status})"
    if event.reason == REPORTS_DISMISSED:
        return f"dismissed the reports ({detail.get('reports_closed', 0)}); still {event.to_status}"
    if event.actor_type == Actor.MODERATOR:
        words = _verb(event.to_status) + ("" if not detail.get("reversal") else " (reversal)")
        if detail.get("reason_code"):
            words += f": {REJECT_REASONS.get(detail['reason_code'], detail['reason_code'])}"
        return words + (f" — “{detail['note']}”" if detail.get("note") else "")
    reasons = "; ".join(reason_message(r) for r in detail.get("reasons", []))
    return f"{event.reason.replace('_', ' ')}: {event.to_status}" + (
        f" ({reasons})" if reasons else ""
    )


def _verb(status: str | None) -> str:
    return {"approved": "approve", "rejected": "reject"}.get(status or "", status or "change")


# ---------------------------------------------------------------------------------- audit


@dataclass(frozen=True)
class AuditFilter:
    """What the audit log page shows."""

    site_id: int | None = None
    actor: str | None = None  # "system", or a moderator's email
    to_status: str | None = None
    reason: str | None = None
    comment_public_id: str | None = None


@dataclass(frozen=True)
class AuditRow:
    """One audit event with the comment and site it belongs to."""

    event: AuditEvent
    comment_public_id: str
    site_name: str


def audit_page(
    session: Session,
    scope: Scope,
    filters: AuditFilter,
    before_id: int | None = None,
    limit: int = 50,
) -> tuple[list[AuditRow], int | None]:
    """Audit events on the moderator's sites, newest first; returns the next before_id."""
    query = (
        select(AuditEvent, Comment.public_id, Site.name)
        .join(Comment, AuditEvent.comment_id == Comment.id)
        .join(Site, AuditEvent.site_id == Site.id)
        .where(in_scope(AuditEvent.site_id, scope))
        .order_by(AuditEvent.id.desc())
        .limit(limit + 1)
    )
    query = _audit_filtered(query, filters)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    rows = [AuditRow(*row) for row in session.execute(query)]
    page, more = rows[:limit], len(rows) > limit
    return page, (page[-1].event.id if more else None)


def _audit_filtered(query: Select[Any], filters: AuditFilter) -> Select[Any]:
    if filters.site_id is not None:
        query = query.where(AuditEvent.site_id == filters.site_id)
    if filters.actor == Actor.SYSTEM:
        query = query.where(AuditEvent.actor_type == Actor.SYSTEM)
    elif filters.actor:
        query = query.where(AuditEvent.actor_id == filters.actor.strip().lower())
    if filters.to_status:
        query = query.where(AuditEvent.to_status == filters.to_status)
    if filters.reason:
        query = query.where(AuditEvent.reason == filters.reason)
    if filters.comment_public_id:
        query = query.where(Comment.public_id == filters.comment_public_id)
    return query
