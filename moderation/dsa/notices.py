"""Notices of illegal content (Art. 16 DSA): filed by anyone, reviewed by a moderator.

A notice names one or more comments of a site, the category (and law, if the reporter knows
it), an explanation, and the reporter's good-faith confirmation; name and email are optional
only where the law allows an anonymous notice (child sexual abuse offences, Art. 16(2)(c)).
The reporter gets a reference at once. A moderator takes it under review and decides:
ILLEGAL rejects the named comments with the legal ground and an explanation (each rejection
gets its statement of reasons, sourced to this notice), LEGAL keeps them with a reason; VOID
closes a notice that cannot be acted on. The reporter is told through the reference's status
and a ``dsa.notice_decided`` webhook event.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from moderation.db import utcnow
from moderation.dsa.categories import CATEGORIES, Category
from moderation.dsa.events import NOTICE_DECIDED, emit_dsa_events
from moderation.models import (
    Comment,
    Moderator,
    Notice,
    NoticeDecision,
    NoticeState,
    Site,
    StatementOfReasons,
    Status,
)
from moderation.services.moderation import ModerationError, Result, Scope, in_scope, moderate

MAX_COMMENTS = 20
MAX_EXPLANATION = 5000
MAX_LAW = 500
MAX_NAME = 200
MAX_NOTE = 2000
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# PostgreSQL cannot store or compare a NUL, and a lone surrogate cannot be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
OPEN_STATES = (NoticeState.AWAITING_REVIEW, NoticeState.UNDER_REVIEW)


REPORTER_REDRESS = (
    "If you disagree with this decision, you may turn to a certified out-of-court dispute "
    "settlement body (Art. 21 DSA), to the Digital Services Coordinator of your Member State, "
    "or to a court."
)


class NoticeRefused(ValueError):
    """The notice (or the action on it) was refused; nothing was written."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


@dataclass(frozen=True)
class NoticeForm:
    """What a reporter sends."""

    category: str | None
    explanation: str | None
    comment_ids: Sequence[str]
    good_faith: bool | None
    law: str | None = None
    reporter_name: str | None = None
    reporter_email: str | None = None


# --- Filing -----------------------------------------------------------------------------------


def file_notice(session: Session, site: Site, form: NoticeForm) -> Notice:
    """Store a notice naming comments of this site; its reference is the reporter's receipt."""
    category = _category(form.category)
    explanation = _text(form.explanation, "explanation", MAX_EXPLANATION, required=True)
    if form.good_faith is not True:
        raise NoticeRefused(
            422,
            "invalid",
            "confirm that the notice is accurate and complete to the best of your knowledge",
            "good_faith",
        )
    law = _text(form.law, "law", MAX_LAW)
    name = _text(form.reporter_name, "reporter_name", MAX_NAME)
    email = _text(form.reporter_email, "reporter_email", 254)
    if email and not _EMAIL.match(email):
        raise NoticeRefused(
            422, "invalid", "reporter_email is not an email address", "reporter_email"
        )
    if not category.anonymous:
        for value, field in ((name, "reporter_name"), (email, "reporter_email")):
            if not value:
                raise NoticeRefused(422, "invalid", f"{field} is required for this category", field)
    comments = _named_comments(session, site, form.comment_ids)
    now = utcnow()
    notice = Notice(
        site_id=site.id,
        category=form.category,
        law=law,
        explanation=explanation,
        reporter_name=name,
        reporter_email=email,
        good_faith=True,
        state=NoticeState.AWAITING_REVIEW,
        history=[_entry(now, None, "received")],
        created_at=now,
    )
    notice.comments = comments
    session.add(notice)
    session.flush()
    return notice


def _category(raw: str | None) -> Category:
    if not raw:
        raise NoticeRefused(422, "invalid", "category is required", "category")
    if raw not in CATEGORIES:
        choices = ", ".join(CATEGORIES)
        raise NoticeRefused(422, "invalid", f"category must be one of: {choices}", "category")
    return CATEGORIES[raw]


def _text(raw: str | None, field: str, limit: int, *, required: bool = False) -> str | None:
    value = (raw or "").strip()
    if not storable(value):
        raise NoticeRefused(
            422, "invalid", f"{field} must not contain NUL or lone surrogates", field
        )
    if required and not value:
        raise NoticeRefused(422, "invalid", f"{field} is required", field)
    if len(value) > limit:
        raise NoticeRefused(422, "invalid", f"{field} is over {limit} characters", field)
    return value or None


def _named_comments(session: Session, site: Site, public_ids: Sequence[str]) -> list[Comment]:
    ids = sorted({str(i).strip() for i in public_ids if str(i).strip()})
    if not all(storable(i) for i in ids):
        raise NoticeRefused(422, "invalid", "comments must be a list of comment ids", "comments")
    if not ids:
        raise NoticeRefused(422, "invalid", "name at least one comment", "comments")
    if len(ids) > MAX_COMMENTS:
        raise NoticeRefused(422, "invalid", f"at most {MAX_COMMENTS} comments", "comments")
    query = select(Comment).where(Comment.site_id == site.id, Comment.public_id.in_(ids))
    found = list(session.scalars(query))
    if len(found) != len(ids):
        missing = sorted(set(ids) - {c.public_id for c in found})
        raise NoticeRefused(404, "not_found", f"no such comment: {missing[0]}", "comments")
    return found


def _entry(now: Any, who: str | None, action: str, note: str | None = None) -> dict[str, Any]:
    return {"at": now.isoformat(), "by": who, "action": action, "note": note}


def _log(notice: Notice, who: str, action: str, note: str | None = None) -> None:
    # A new list, so SQLAlchemy sees the JSON column change.
    notice.history = [*notice.history, _entry(utcnow(), who, action, note)]


# --- Review -----------------------------------------------------------------------------------


def notice_for_moderator(session: Session, scope: Scope, reference: str) -> Notice | None:
    """A notice of one of the moderator's sites, or None."""
    query = select(Notice).where(Notice.reference == reference, in_scope(Notice.site_id, scope))
    return session.scalars(query.options(selectinload(Notice.comments))).one_or_none()


def notices_page(
    session: Session, scope: Scope, states: Sequence[str], limit: int = 100
) -> list[Notice]:
    """Notices in these states on the moderator's sites, oldest first (first come, first
    reviewed)."""
    query = (
        select(Notice)
        .where(in_scope(Notice.site_id, scope), Notice.state.in_(list(states)))
        .order_by(Notice.id)
        .limit(limit)
        .options(selectinload(Notice.comments))
    )
    return list(session.scalars(query))


def notice_counts(session: Session, scope: Scope) -> dict[str, int]:
    """How many notices each state holds on the moderator's sites."""
    query = (
        select(Notice.state, func.count())
        .where(in_scope(Notice.site_id, scope))
        .group_by(Notice.state)
    )
    counts = dict(session.execute(query).all())
    return {state.value: counts.get(state.value, 0) for state in NoticeState}


def storable(value: str) -> bool:
    """A string the database can store and compare (no NUL, no lone surrogate)."""
    return not _UNSTORABLE.search(value)


def _claim(session: Session, notice: Notice, states: Sequence[str]) -> None:
    """Lock the notice's row while it is in one of these states, and read it afresh; a 409
    when another moderator moved it on since it was read.

    The UPDATE changes nothing but takes the row lock, and matches only while the state
    still allows the action: of two moderators acting at once, the second waits for the
    first to commit and then finds the new state (the check is the database's, not this
    process's copy of the row). Reading afresh keeps the other's history entries."""
    matched = session.execute(
        update(Notice)
        .where(Notice.id == notice.id, Notice.state.in_(list(states)))
        .values(state=Notice.state)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(notice)
    if not matched:
        raise NoticeRefused(409, "conflict", f"the notice is already {notice.state}")


def start_review(session: Session, notice: Notice, moderator: Moderator) -> Notice:
    """AWAITING_REVIEW -> UNDER_REVIEW, with the moderator's name in the history."""
    _claim(session, notice, [NoticeState.AWAITING_REVIEW])
    notice.state = NoticeState.UNDER_REVIEW
    _log(notice, moderator.email, "review started")
    session.flush()
    return notice


def add_note(session: Session, notice: Notice, moderator: Moderator, note: str | None) -> Notice:
    """A moderator's note in the notice's history."""
    text = _text(note, "note", MAX_NOTE, required=True)
    _claim(session, notice, list(NoticeState))
    _log(notice, moderator.email, "note", text)
    session.flush()
    return notice


def decide_notice(
    session: Session,
    notice: Notice,
    moderator: Moderator,
    decision: str,
    ground: str | None,
    explanation: str | None,
) -> Notice:
    """ILLEGAL: reject the named comments with this legal ground; LEGAL: keep them, saying why."""
    if decision not in set(NoticeDecision):
        raise NoticeRefused(422, "invalid", "decision must be ILLEGAL or LEGAL", "decision")
    explanation = _text(explanation, "explanation", 2000, required=True)
    required = decision == NoticeDecision.ILLEGAL
    ground = _text(ground, "legal_ground", 500, required=required)
    _claim(session, notice, OPEN_STATES)
    if decision == NoticeDecision.ILLEGAL:
        _remove(session, notice, moderator, ground or "", explanation or "")
    return _close(session, notice, moderator, NoticeState.COMPLETED, decision, ground, explanation)


def _remove(
    session: Session, notice: Notice, moderator: Moderator, ground: str, explanation: str
) -> None:
    for comment in notice.comments:
        if comment.status == Status.REJECTED:
            continue
        try:
            done = moderate(
                session,
                comment,
                moderator,
                Status.REJECTED,
                "illegal_content",
                explanation[:1000],
                legal_ground=ground,
                source="notice",
            )
        except ModerationError as exc:
            raise NoticeRefused(422, exc.code, exc.message, exc.field) from None
        if done.result == Result.CONFLICT:
            # Someone else changed the comment since it was read: nothing is decided.
            raise NoticeRefused(409, "conflict", f"{comment.public_id}: {done.message}")


def void_notice(
    session: Session, notice: Notice, moderator: Moderator, reason: str | None
) -> Notice:
    """Close a notice that cannot be acted on (duplicate, no content named, unintelligible)."""
    reason = _text(reason, "explanation", 2000, required=True)
    _claim(session, notice, OPEN_STATES)
    return _close(session, notice, moderator, NoticeState.VOID, None, None, reason)


def _close(
    session: Session,
    notice: Notice,
    moderator: Moderator,
    state: NoticeState,
    decision: str | None,
    ground: str | None,
    explanation: str | None,
) -> Notice:
    notice.state = state
    notice.decision = decision
    notice.decision_ground = ground
    notice.decision_explanation = explanation
    notice.decided_by = moderator.email
    notice.decided_at = utcnow()
    _log(notice, moderator.email, (decision or "void").lower(), explanation)
    session.flush()
    emit_dsa_events(
        session, NOTICE_DECIDED, [(notice.site_id, None, notice_status(session, notice))]
    )
    return notice


# --- What the reporter sees -----------------------------------------------------------------


def notice_by_reference(session: Session, site: Site | None, reference: str) -> Notice | None:
    """A notice by its reference (of this site, when given)."""
    query = select(Notice).where(Notice.reference == reference.strip().upper())
    if site is not None:
        query = query.where(Notice.site_id == site.id)
    return session.scalars(query.options(selectinload(Notice.comments))).one_or_none()


def notice_status(session: Session, notice: Notice) -> dict[str, Any]:
    """The reporter's view: the state, the decision and its reasons, each comment's outcome."""
    return {
        "reference": notice.reference,
        "state": notice.state,
        "category": notice.category,
        "received_at": notice.created_at.isoformat(),
        "decision": notice.decision,
        "legal_ground": notice.decision_ground,
        "explanation": notice.decision_explanation,
        "decided_at": notice.decided_at.isoformat() if notice.decided_at else None,
        "automated_decision": False if notice.decided_at else None,
        "comments": [
            {"id": c.public_id, "outcome": _outcome(session, notice, c)} for c in notice.comments
        ],
        "redress": REPORTER_REDRESS if notice.decided_at else None,
    }


def _outcome(session: Session, notice: Notice, comment: Comment) -> str:
    """removed, kept, restored on appeal, or pending."""
    if notice.state in (NoticeState.AWAITING_REVIEW, NoticeState.UNDER_REVIEW):
        return "pending"
    if notice.decision != NoticeDecision.ILLEGAL:
        return "kept"
    reversed_ = session.scalar(
        select(func.count(StatementOfReasons.id)).where(
            StatementOfReasons.notice_id == notice.id,
            StatementOfReasons.comment_id == comment.id,
            StatementOfReasons.reversed_at.is_not(None),
        )
    )
    return "restored on appeal" if reversed_ else "removed"
