"""What changed in a queue since an open workspace last looked: the live queue's poll.

A page keeps a watermark: how far it has read the audit events and the reports. A comment
that moved since (any audit event: scored, held, decided, reports dismissed) or was reported
since is a candidate; the page adds those now in its queue and marks those that left it.
Comment ids are no watermark: a comment held again by reader reports keeps its old id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from moderation.db import utcnow
from moderation.models import Actor, AuditEvent, Comment, Report
from moderation.services.moderation import Queue, QueueFilter, Scope, filtered
from moderation.services.reports import has_open_reports

# Rows younger than this are read again at the next poll: an id is taken at insert and
# becomes visible at commit, so a later id can show up first.
GRACE = timedelta(seconds=10)
MAX_ROWS = 500
MAX_COMMENTS = 50


@dataclass(frozen=True)
class Mark:
    """How far a page has read one table: every id up to ``settled``, and ``between`` rows
    in (settled, high] that were visible then (a later commit may still fill a gap there)."""

    settled: int = 0
    high: int = 0
    between: int = 0

    def encode(self) -> str:
        """The opaque form a page sends back."""
        return f"{self.settled}-{self.high}-{self.between}"

    @classmethod
    def decode(cls, raw: str) -> Mark | None:
        """A mark this service gave out, or None."""
        parts = raw.split("-")
        valid = all(p.isascii() and p.isdecimal() and len(p) < 19 for p in parts)
        if len(parts) != 3 or not valid:
            return None
        settled, high, between = (int(part) for part in parts)
        return cls(settled, high, between) if settled <= high else None


@dataclass(frozen=True)
class Watermark:
    """How far a page has read the audit events and the reports."""

    audit: Mark = Mark()
    reports: Mark = Mark()

    def encode(self) -> str:
        """The opaque form a page sends back."""
        return f"{self.audit.encode()}.{self.reports.encode()}"

    @classmethod
    def decode(cls, raw: str | None) -> Watermark | None:
        """A watermark this service gave out, or None."""
        audit, _, reports = (raw or "").partition(".")
        first, second = Mark.decode(audit), Mark.decode(reports)
        return None if first is None or second is None else cls(first, second)


@dataclass(frozen=True)
class Changes:
    """Comments under the page's filters that changed since its watermark."""

    comments: list[Comment]
    in_queue: frozenset[int]  # the ids of those that belong in the page's queue now
    watermark: Watermark
    # More changed than one poll carries (a burst, a ban that rejected many): the page
    # reloads rather than show cards that look current and are not.
    overflow: bool = False


def watermark_now(session: Session) -> Watermark:
    """The watermark of a page rendered now."""
    audit = session.scalar(select(func.max(AuditEvent.id))) or 0
    report = session.scalar(select(func.max(Report.id))) or 0
    return Watermark(Mark(audit, audit), Mark(report, report))


def changes_since(session: Session, scope: Scope, filters: QueueFilter, mark: Watermark) -> Changes:
    """The comments moved or reported since ``mark``, and the watermark to poll from next."""
    now = utcnow()
    events, audit = _read(session, AuditEvent, mark.audit, now)
    reports, report = _read(session, Report, mark.reports, now)
    watermark = Watermark(audit, report)
    if len(events) >= MAX_ROWS or len(reports) >= MAX_ROWS:
        return Changes([], frozenset(), watermark, overflow=True)
    ids = {row.comment_id for row in [*events, *reports]}
    left = {row.comment_id for row in events if _leaves(row, filters)}
    if not ids:
        return Changes([], frozenset(), watermark)
    reported = has_open_reports(Comment.id).label("reported")
    query = (
        filtered(session, select(Comment, reported), scope, filters)
        .where(Comment.id.in_(sorted(ids)))
        .order_by(Comment.id.desc())
        .limit(MAX_COMMENTS + 1)
        .options(selectinload(Comment.scores))
    )
    rows = session.execute(query).all()
    if len(rows) > MAX_COMMENTS:
        return Changes([], frozenset(), watermark, overflow=True)
    in_queue = frozenset(
        comment.id for comment, is_reported in rows if _belongs(comment, is_reported, filters)
    )
    # Of the others, only those that were in the queue can be on the page: to be marked.
    shown = [comment for comment, _ in rows if comment.id in in_queue or comment.id in left]
    return Changes(shown, in_queue, watermark)


def _read(session: Session, model: Any, mark: Mark, now: datetime) -> tuple[list[Any], Mark]:
    """The rows the page has not had yet, and its next mark for this table.

    Rows after ``settled`` are read again until they are older than the grace period; those
    up to ``high`` were delivered already, unless their number grew (a late commit filled a
    gap), in which case all of them come again.
    """
    columns = [model.id, model.comment_id, model.created_at]
    if model is AuditEvent:
        columns += [AuditEvent.from_status, AuditEvent.actor_type]
    query = select(*columns).where(model.id > mark.settled).order_by(model.id).limit(MAX_ROWS)
    rows = list(session.execute(query).all())
    between = [row for row in rows if row.id <= mark.high]
    fresh = rows if len(between) != mark.between else rows[len(between) :]
    high = max(mark.high, rows[-1].id if rows else 0)
    settled = _settled(rows, mark.settled, now)
    count = sum(1 for row in rows if settled < row.id <= high)
    return fresh, Mark(settled, high, count)


def _settled(rows: Sequence[Any], after: int, now: datetime) -> int:
    """Every id up to the first row still within the grace period (all, after a burst)."""
    if len(rows) == MAX_ROWS:
        return int(rows[-1].id)  # a burst: move on rather than read the same rows again
    for row in rows:
        if row.created_at > now - GRACE:
            return max(after, int(row.id) - 1)
    return int(rows[-1].id) if rows else after


def _leaves(event: Any, filters: QueueFilter) -> bool:
    """Whether this audit event may have taken its comment out of the page's queue."""
    if filters.queue is Queue.REPORTED:
        return event.actor_type == Actor.MODERATOR  # a decision or dismissal closes reports
    return filters.queue.status is not None and event.from_status == filters.queue.status


def _belongs(comment: Comment, reported: bool, filters: QueueFilter) -> bool:
    if filters.queue is Queue.REPORTED:
        return bool(reported)
    return filters.queue.status is None or comment.status == filters.queue.status
