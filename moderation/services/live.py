"""What changed in a queue since an open workspace last looked: the live queue's poll.

A page keeps a watermark: the newest audit event and report it has seen. A comment that moved
since (any audit event: scored, held, decided, reports dismissed) or was reported since is a
candidate; the page adds those now in its queue and marks those that left it. Comment ids are
no watermark: a comment held again by reader reports keeps its old id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from moderation.db import utcnow
from moderation.models import AuditEvent, Comment, Report
from moderation.services.moderation import Queue, QueueFilter, Scope, _filtered
from moderation.services.reports import has_open_reports

# Rows younger than this are read again at the next poll: an id is taken at insert and
# becomes visible at commit, so a later id can show up first.
GRACE = timedelta(seconds=10)
MAX_ROWS = 500
MAX_COMMENTS = 50


@dataclass(frozen=True)
class Watermark:
    """The newest audit event id and report id a page has seen."""

    audit_id: int = 0
    report_id: int = 0

    def encode(self) -> str:
        """The opaque form a page sends back."""
        return f"{self.audit_id}.{self.report_id}"

    @classmethod
    def decode(cls, raw: str | None) -> Watermark | None:
        """A watermark this service gave out, or None."""
        audit, _, report = (raw or "").partition(".")
        if not (audit.isdigit() and report.isdigit() and len(audit) < 19 and len(report) < 19):
            return None
        return cls(int(audit), int(report))


@dataclass(frozen=True)
class Changes:
    """Comments under the page's filters that changed since its watermark."""

    comments: list[Comment]
    in_queue: frozenset[int]  # the ids of those that belong in the page's queue now
    watermark: Watermark


def watermark_now(session: Session) -> Watermark:
    """The watermark of a page rendered now."""
    audit = session.scalar(select(func.max(AuditEvent.id)))
    report = session.scalar(select(func.max(Report.id)))
    return Watermark(audit or 0, report or 0)


def changes_since(session: Session, scope: Scope, filters: QueueFilter, mark: Watermark) -> Changes:
    """The comments moved or reported since ``mark``, and the watermark to poll from next."""
    now = utcnow()
    events = _rows_after(session, AuditEvent, mark.audit_id)
    reports = _rows_after(session, Report, mark.report_id)
    watermark = Watermark(
        _settled(events, mark.audit_id, now), _settled(reports, mark.report_id, now)
    )
    ids = {row.comment_id for row in [*events, *reports]}
    if not ids:
        return Changes([], frozenset(), watermark)
    reported = has_open_reports(Comment.id).label("reported")
    query = (
        _filtered(session, select(Comment, reported), scope, filters)
        .where(Comment.id.in_(sorted(ids)))
        .order_by(Comment.id.desc())
        .limit(MAX_COMMENTS)
        .options(selectinload(Comment.scores))
    )
    rows = session.execute(query).all()
    in_queue = frozenset(
        comment.id for comment, is_reported in rows if _belongs(comment, is_reported, filters)
    )
    return Changes([comment for comment, _ in rows], in_queue, watermark)


def _rows_after(session: Session, model: Any, after: int) -> Sequence[Any]:
    query = (
        select(model.id, model.comment_id, model.created_at)
        .where(model.id > after)
        .order_by(model.id)
        .limit(MAX_ROWS)
    )
    return session.execute(query).all()


def _settled(rows: Sequence[Any], after: int, now: datetime) -> int:
    """The id to poll after next: just before the first row still within the grace period."""
    if len(rows) == MAX_ROWS:
        return int(rows[-1].id)  # a burst: move on rather than read the same rows again
    for row in rows:
        if row.created_at > now - GRACE:
            return max(after, int(row.id) - 1)
    return int(rows[-1].id) if rows else after


def _belongs(comment: Comment, reported: bool, filters: QueueFilter) -> bool:
    if filters.queue is Queue.REPORTED:
        return bool(reported)
    return filters.queue.status is None or comment.status == filters.queue.status
