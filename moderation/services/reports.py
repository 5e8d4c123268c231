"""Reader reports: one per reader per published comment; enough of them send it back to held.

A comment's open reports count towards the site's threshold (``report_threshold``, 3, or
``illegal_report_threshold``, 1, for reports of illegal content). At the threshold a
published comment goes back to ``held`` with the reason ``reported`` (an audit row and a
``comment.reported`` webhook event). A moderator's decision closes the open reports
(approving dismisses them, rejecting upholds them), so later reports start a new count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from moderation.db import utcnow
from moderation.dsa.statements import record_report_hold
from moderation.models import (
    Actor,
    AuditEvent,
    Comment,
    Report,
    ReportReason,
    ReportResolution,
    Site,
    Status,
)
from moderation.rules import stored_rules
from moderation.services.webhooks import COMMENT_REPORTED, emit_event

REPORTED = "reported"
MAX_REPORT_TEXT = 500
REASON_LABELS = {
    ReportReason.OFFENSIVE: "offensive",
    ReportReason.ABUSIVE: "abusive or harassment",
    ReportReason.HATE_SPEECH: "hate speech",
    ReportReason.SPAM: "spam",
    ReportReason.MISINFORMATION: "misinformation",
    ReportReason.ILLEGAL: "illegal content",
    ReportReason.OTHER: "other",
}


class ReportRefused(Exception):
    """The report is not stored; carries the HTTP status, an error code and the field."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.extra = extra or {}


@dataclass(frozen=True)
class Reported:
    """A stored report and whether it sent the comment back to the held queue."""

    report: Report
    comment: Comment
    held: bool


def report_comment(
    session: Session,
    site: Site,
    comment_public_id: str,
    reporter_id: str,
    reason: str,
    text: str | None = None,
) -> Reported:
    """Store a reader's report of a published comment; hold the comment at the threshold."""
    reason, text = _valid_reason(reason, text)
    # Locked until commit (PostgreSQL; SQLite's writers take turns anyway): concurrent
    # reports of one comment are counted one after another, so none misses the threshold.
    comment = session.scalars(
        select(Comment)
        .where(
            Comment.public_id == comment_public_id,
            Comment.site_id == site.id,
            Comment.status == Status.APPROVED,
        )
        .with_for_update(of=Comment)
    ).one_or_none()
    if comment is None:
        raise ReportRefused(404, "not_found", "no such published comment")
    earlier = _report_of(session, comment, reporter_id)
    if earlier is not None:
        raise _duplicate(earlier)
    report = Report(
        site_id=site.id, comment_id=comment.id, reporter_id=reporter_id, reason=reason, text=text
    )
    try:
        with session.begin_nested():
            session.add(report)
    except IntegrityError:
        # The same reader's other request got there first.
        earlier = _report_of(session, comment, reporter_id)
        if earlier is None:
            raise
        raise _duplicate(earlier) from None
    held = _hold_when_due(session, site, comment)
    return Reported(report, comment, held)


def _valid_reason(reason: str, text: str | None) -> tuple[str, str | None]:
    if reason not in set(ReportReason):
        choices = ", ".join(ReportReason)
        raise ReportRefused(422, "invalid", f"reason must be one of: {choices}", "reason")
    text = (text or "").strip() or None
    if text is not None and len(text) > MAX_REPORT_TEXT:
        raise ReportRefused(
            422, "text_too_long", f"text must be at most {MAX_REPORT_TEXT} characters", "text"
        )
    if reason == ReportReason.OTHER and text is None:
        raise ReportRefused(422, "invalid", "say what is wrong when the reason is other", "text")
    return reason, text


def _report_of(session: Session, comment: Comment, reporter_id: str) -> Report | None:
    query = select(Report).where(Report.comment_id == comment.id, Report.reporter_id == reporter_id)
    return session.scalars(query).one_or_none()


def _duplicate(earlier: Report) -> ReportRefused:
    return ReportRefused(
        409,
        "already_reported",
        "you already reported this comment",
        extra={"reported_at": earlier.created_at.isoformat()},
    )


def open_reports(session: Session, comment_ids: Sequence[int]) -> dict[int, list[Report]]:
    """The open reports of these comments, oldest first."""
    if not comment_ids:
        return {}
    query = (
        select(Report)
        .where(Report.comment_id.in_(comment_ids), Report.closed_at.is_(None))
        .order_by(Report.id)
    )
    found: dict[int, list[Report]] = {}
    for report in session.scalars(query):
        found.setdefault(report.comment_id, []).append(report)
    return found


def threshold_reached(reasons: Sequence[str], threshold: int, illegal_threshold: int) -> bool:
    """Whether these open reports send a published comment back to the held queue."""
    illegal = sum(1 for reason in reasons if reason == ReportReason.ILLEGAL)
    return len(reasons) >= threshold or illegal >= illegal_threshold


def summary(reasons: Sequence[str]) -> str:
    """``3 reader reports: offensive 2, spam 1``."""
    counts = Counter(reasons)
    parts = ", ".join(f"{REASON_LABELS.get(r, r)} {n}" for r, n in counts.most_common())
    noun = "reader report" if len(reasons) == 1 else "reader reports"
    return f"{len(reasons)} {noun}: {parts}"


def _hold_when_due(session: Session, site: Site, comment: Comment) -> bool:
    rules = stored_rules(site.rules)
    reasons = [report.reason for report in open_reports(session, [comment.id]).get(comment.id, [])]
    if not threshold_reached(reasons, rules.report_threshold, rules.illegal_report_threshold):
        return False
    illegal = ReportReason.ILLEGAL in reasons
    threshold = rules.illegal_report_threshold if illegal else rules.report_threshold
    reason = {
        "code": REPORTED,
        "label": "reports",
        "score": float(len(reasons)),
        "threshold": float(threshold),
        "message": f"{summary(reasons)} -> hold",
    }
    now = utcnow()
    kept = [old for old in comment.reasons or [] if old.get("code") != REPORTED]
    matched = session.execute(
        update(Comment)
        .where(Comment.id == comment.id, Comment.status == Status.APPROVED)
        .values(status=Status.HELD, reasons=[reason, *kept], updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not matched:
        return False
    detail = {"reasons": [reason], "reports": dict(Counter(reasons))}
    session.execute(
        insert(AuditEvent),
        [
            {
                "site_id": comment.site_id,
                "comment_id": comment.id,
                "actor_type": Actor.SYSTEM,
                "actor_id": None,
                "from_status": Status.APPROVED,
                "to_status": Status.HELD,
                "reason": REPORTED,
                "detail": detail,
                "created_at": now,
            }
        ],
    )
    for key, value in {
        "status": Status.HELD,
        "reasons": [reason, *kept],
        "updated_at": now,
    }.items():
        set_committed_value(comment, key, value)
    emit_event(session, comment, COMMENT_REPORTED)
    record_report_hold(session, comment, reasons)
    return True


def close_reports(
    session: Session, comment: Comment, resolution: ReportResolution, closed_by: str
) -> int:
    """Close a comment's open reports as the moderator decided; returns how many."""
    return session.execute(
        update(Report)
        .where(Report.comment_id == comment.id, Report.closed_at.is_(None))
        .values(closed_at=utcnow(), resolution=resolution, closed_by=closed_by)
        .execution_options(synchronize_session=False)
    ).rowcount


def has_open_reports(comment_id_column: Any) -> Any:
    """A condition on a comment id column: the comment has open reports."""
    return exists().where(Report.comment_id == comment_id_column, Report.closed_at.is_(None))


def report_counts(session: Session, site: Site, author_id: str) -> int:
    """Reports (open or closed) against this author's comments on the site."""
    query = (
        select(func.count(Report.id))
        .join(Comment, Comment.id == Report.comment_id)
        .where(Comment.site_id == site.id, Comment.author_id == author_id)
    )
    return int(session.scalar(query) or 0)
