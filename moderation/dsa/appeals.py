"""Appeals (Art. 20 DSA): an author contests a decision once, within six months.

A moderator other than the one who decided reviews it (where the site has more than one).
Reversing restores the comment (through the moderator's one way to decide, so it is audited
and announced) or lifts the sanction; either way the statement is marked reversed and the
author is told the outcome and its reasons (``dsa.appeal_decided``).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from moderation.db import utcnow
from moderation.dsa.events import APPEAL_DECIDED, emit_dsa_events
from moderation.dsa.notices import storable
from moderation.models import (
    Appeal,
    AppealOutcome,
    AppealState,
    AuthorSanction,
    Moderator,
    ModeratorSite,
    StatementOfReasons,
    Status,
)
from moderation.services.authors import SanctionRefused, lift_sanction
from moderation.services.moderation import Result, Scope, in_scope, moderate

APPEAL_MONTHS = 6
MAX_TEXT = 5000
MAX_REASONS = 2000


class AppealRefused(ValueError):
    """The appeal (or its decision) was refused; nothing was written."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def appeal_deadline(statement: StatementOfReasons) -> datetime:
    """Six calendar months after the decision (the last day of a shorter month if needed)."""
    start = statement.application_date
    month = start.month - 1 + APPEAL_MONTHS
    year, month = start.year + month // 12, month % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def appeal_of(session: Session, statement: StatementOfReasons) -> Appeal | None:
    """The statement's appeal, if the author filed one."""
    query = select(Appeal).where(Appeal.statement_id == statement.id)
    return session.scalars(query).one_or_none()


def file_appeal(
    session: Session, statement: StatementOfReasons, text: str | None, now: datetime | None = None
) -> Appeal:
    """The author's appeal against this statement's decision: once, within six months."""
    body = (text or "").strip()
    if not body:
        raise AppealRefused(422, "invalid", "say why the decision is wrong", "text")
    if not storable(body):
        raise AppealRefused(422, "invalid", "text must not contain NUL or lone surrogates", "text")
    if len(body) > MAX_TEXT:
        raise AppealRefused(422, "invalid", f"text is over {MAX_TEXT} characters", "text")
    earlier = appeal_of(session, statement)
    if earlier is not None:
        raise _already_appealed(earlier)
    now = now or utcnow()
    if now > appeal_deadline(statement):
        raise AppealRefused(
            409,
            "appeal_window_closed",
            f"decisions can be appealed for six months; this one until "
            f"{appeal_deadline(statement):%Y-%m-%d}",
        )
    appeal = Appeal(site_id=statement.site_id, statement_id=statement.id, text=body, created_at=now)
    try:
        # Two appeals at once both find none above; the unique statement_id lets one in. The
        # savepoint keeps the caller's transaction usable for the answer.
        with session.begin_nested():
            session.add(appeal)
    except IntegrityError:
        raise _already_appealed(appeal_of(session, statement)) from None
    return appeal


def _already_appealed(earlier: Appeal | None) -> AppealRefused:
    when = f" on {earlier.created_at:%Y-%m-%d}" if earlier is not None else ""
    return AppealRefused(409, "already_appealed", f"this decision was already appealed{when}")


# --- The Appeals queue ------------------------------------------------------------------------


def appeals_page(
    session: Session, scope: Scope, state: str = AppealState.OPEN, limit: int = 100
) -> list[Appeal]:
    """Appeals in this state on the moderator's sites, oldest first."""
    query = (
        select(Appeal)
        .where(in_scope(Appeal.site_id, scope), Appeal.state == state)
        .order_by(Appeal.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def appeal_for_moderator(session: Session, scope: Scope, public_id: str) -> Appeal | None:
    """An appeal on one of the moderator's sites, or None."""
    query = select(Appeal).where(Appeal.public_id == public_id, in_scope(Appeal.site_id, scope))
    return session.scalars(query).one_or_none()


def moderators_of_site(session: Session, site_id: int) -> int:
    """Active moderators who can act on the site: those assigned to it, and admins."""
    assigned = select(ModeratorSite.moderator_id).where(ModeratorSite.site_id == site_id)
    query = select(func.count(Moderator.id)).where(
        Moderator.active.is_(True),
        or_(Moderator.is_admin.is_(True), Moderator.id.in_(assigned)),
    )
    return int(session.scalar(query) or 0)


def decide_appeal(
    session: Session, appeal: Appeal, moderator: Moderator, outcome: str, reasons: str | None
) -> Appeal:
    """Uphold or reverse the decision, with reasons the author reads."""
    if outcome not in set(AppealOutcome):
        raise AppealRefused(422, "invalid", "outcome must be UPHELD or REVERSED", "outcome")
    text = (reasons or "").strip()
    if not text or len(text) > MAX_REASONS:
        raise AppealRefused(
            422, "invalid", f"give the reasons (at most {MAX_REASONS} characters)", "reasons"
        )
    statement = appeal.statement
    same = statement.decided_by is not None and statement.decided_by == moderator.email
    if same and moderators_of_site(session, appeal.site_id) > 1:
        raise AppealRefused(
            403,
            "same_moderator",
            "another moderator must decide the appeal against your own decision",
        )
    # Claim the appeal in the database: of two moderators deciding at once, the second waits
    # for the first to commit and then matches nothing.
    claimed = session.execute(
        update(Appeal)
        .where(Appeal.id == appeal.id, Appeal.state == AppealState.OPEN)
        .values(state=AppealState.DECIDED)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        raise AppealRefused(409, "conflict", "this appeal was already decided")
    now = utcnow()
    if outcome == AppealOutcome.REVERSED:
        _reverse(session, statement, moderator, appeal, text)
        statement.reversed_at = now
    appeal.state, appeal.outcome, appeal.outcome_reasons = AppealState.DECIDED, outcome, text
    appeal.decided_by, appeal.decided_at = moderator.email, now
    session.flush()
    emit_dsa_events(
        session, APPEAL_DECIDED, [(appeal.site_id, statement.comment_id, appeal_view(appeal))]
    )
    return appeal


def _reverse(
    session: Session,
    statement: StatementOfReasons,
    moderator: Moderator,
    appeal: Appeal,
    reasons: str,
) -> None:
    note = f"appeal {appeal.public_id} reversed the decision: {reasons}"[:1000]
    if statement.comment is not None and statement.comment.status != Status.APPROVED:
        done = moderate(
            session, statement.comment, moderator, Status.APPROVED, None, note, source="appeal"
        )
        if done.result == Result.CONFLICT:
            # Someone else changed the comment since it was read: the appeal stays open.
            raise AppealRefused(409, "conflict", done.message)
    if statement.sanction_id is not None:
        sanction = session.get(AuthorSanction, statement.sanction_id)
        if sanction is not None and sanction.lifted_at is None:
            try:
                lift_sanction(session, sanction, moderator, note)
            except SanctionRefused as exc:
                raise AppealRefused(exc.status, exc.code, exc.message) from None


def appeal_view(appeal: Appeal) -> dict[str, object]:
    """What the author is told about their appeal."""
    return {
        "id": appeal.public_id,
        "statement_id": appeal.statement.public_id,
        "state": appeal.state,
        "received_at": appeal.created_at.isoformat(),
        "outcome": appeal.outcome,
        "reasons": appeal.outcome_reasons,
        "decided_at": appeal.decided_at.isoformat() if appeal.decided_at else None,
    }


def open_appeal_counts(session: Session, scope: Scope) -> int:
    """Open appeals on the moderator's sites."""
    query = select(func.count(Appeal.id)).where(
        in_scope(Appeal.site_id, scope), Appeal.state == AppealState.OPEN
    )
    return int(session.scalar(query) or 0)


def appeals_of_statements(session: Session, statement_ids: Sequence[int]) -> dict[int, Appeal]:
    """The appeals of these statements, by statement id."""
    if not statement_ids:
        return {}
    query = select(Appeal).where(Appeal.statement_id.in_(list(statement_ids)))
    return {appeal.statement_id: appeal for appeal in session.scalars(query)}
