"""Statements of reasons (Art. 17 DSA): one stored for every restriction, automated or human.

A restriction is a rejection, a hold (an automatic one, or a published comment sent back to
review by readers' reports), a suspension or a ban. Each statement is written in the same
transaction as the restriction, in the Transparency Database's own terms (the enumerations
below are its API's), and announced with a ``dsa.statement_issued`` webhook event.

Holds that decide nothing about the content (pre-moderation of an article or an author,
scoring that failed, a language no model covers, a new commenter's first comments) restrict
no content for a reason of its own: they wait for a person, whose decision gets the
statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from moderation.db import utcnow
from moderation.dsa.categories import CIVIC, SCOPE, SEXUAL, SPEECH, VIOLENCE, notice_category
from moderation.dsa.events import STATEMENT_ISSUED, emit_dsa_events
from moderation.models import (
    AuthorSanction,
    Comment,
    Notice,
    NoticeComment,
    NoticeState,
    SanctionKind,
    StatementOfReasons,
    Status,
    new_statement_id,
    new_statement_puid,
)

# --- The Transparency Database's enumerations (see tdb_statement.schema.json) ----------------

VISIBILITY_REMOVED = "DECISION_VISIBILITY_CONTENT_REMOVED"
VISIBILITY_DISABLED = "DECISION_VISIBILITY_CONTENT_DISABLED"
ACCOUNT_SUSPENDED = "DECISION_ACCOUNT_SUSPENDED"
ACCOUNT_TERMINATED = "DECISION_ACCOUNT_TERMINATED"
GROUND_ILLEGAL = "DECISION_GROUND_ILLEGAL_CONTENT"
GROUND_INCOMPATIBLE = "DECISION_GROUND_INCOMPATIBLE_CONTENT"
AUTOMATED_FULLY = "AUTOMATED_DECISION_FULLY"
AUTOMATED_PARTIALLY = "AUTOMATED_DECISION_PARTIALLY"
NOT_AUTOMATED = "AUTOMATED_DECISION_NOT_AUTOMATED"
SOURCE_ARTICLE_16 = "SOURCE_ARTICLE_16"
SOURCE_OTHER_NOTIFICATION = "SOURCE_TYPE_OTHER_NOTIFICATION"
SOURCE_VOLUNTARY = "SOURCE_VOLUNTARY"

REDRESS = (
    "You can contest this decision once, within six months, with the site's internal "
    "complaint handling (the appeal form on this statement's page); a moderator other than "
    "the one who decided will review it. You may also turn to a certified out-of-court "
    "dispute settlement body (Art. 21 DSA) or to a court."
)
FACTS_LIMIT = 5000
GROUND_LIMIT = 500
EXPLANATION_LIMIT = 2000

# Reason codes that hold a comment without judging its content.
PROCEDURAL = frozenset(
    {
        "premoderation",
        "scoring_failed",
        "scoring_failed_fail_open",
        "language_not_supported",
        "author_premoderated",
        "new_commenter",
        "recent_history",
    }
)
# The category a restriction falls under, by the model label, rule or reason that drove it.
RESTRICTION_CATEGORIES = {
    "threat": VIOLENCE,
    "sexual_explicit": SEXUAL,
    "obscene": SPEECH,
    "repeat_post": SCOPE,
    "links": SCOPE,
    "link": SCOPE,
    "coordinated_text": SCOPE,
    "spam": SCOPE,
    "off_topic": SCOPE,
    "other": SCOPE,
    "misinformation": CIVIC,
}
REJECT_WORDS = {
    "offensive": "offensive content",
    "abusive": "abusive content or harassment",
    "spam": "spam",
    "off_topic": "off-topic content",
    "other": "content against the comment rules",
    "illegal_content": "illegal content",
}


class Decided(Protocol):
    """What the policy decided about a comment (moderation.policy.Decision)."""

    outcome: str
    reasons: Sequence[Any]


# --- Automated decisions ------------------------------------------------------------------


def record_automated(session: Session, decided: Iterable[tuple[Comment, Decided]]) -> int:
    """Statements for the automatic holds and rejections that judged the content."""
    now = utcnow()
    rows = [
        _automated_row(comment, decision, now)
        for comment, decision in decided
        if decision.outcome in (Status.HELD, Status.REJECTED) and _content_reasons(decision.reasons)
    ]
    return _insert(session, rows)


def _content_reasons(reasons: Sequence[Any]) -> list[dict[str, Any]]:
    as_dicts = [r.as_dict() if hasattr(r, "as_dict") else dict(r) for r in reasons]
    return [r for r in as_dicts if r.get("code") not in PROCEDURAL]


def _automated_row(comment: Comment, decision: Decided, now: datetime) -> dict[str, Any]:
    reasons = _content_reasons(decision.reasons)
    rejected = decision.outcome == Status.REJECTED
    rules = ", ".join(sorted({str(r.get("label") or r.get("code")) for r in reasons}))
    action = "rejected" if rejected else "held for review by a moderator"
    facts = (
        f"The comment was {action} by the automatic check before publication: "
        + "; ".join(_reason_words(r) for r in reasons)
        + "."
    )
    return _row(
        comment,
        now,
        visibility=VISIBILITY_REMOVED if rejected else VISIBILITY_DISABLED,
        ground=GROUND_INCOMPATIBLE,
        incompatible=(f"The site's comment rules ({rules})", _explanation(reasons, rejected)),
        category=_category([str(r.get("label") or r.get("code")) for r in reasons]),
        facts=facts,
        detection=True,
        automated=AUTOMATED_FULLY,
        source=SOURCE_VOLUNTARY,
    )


def _reason_words(reason: Mapping[str, Any]) -> str:
    return str(reason.get("message") or str(reason.get("code", "")).replace("_", " "))


def _explanation(reasons: Sequence[Mapping[str, Any]], rejected: bool) -> str:
    what = "is removed" if rejected else "is not shown until a moderator has reviewed it"
    found = "; ".join(_reason_words(r) for r in reasons)
    return f"The automatic check found {found}; under the site's rules the comment {what}."


def _category(labels: Iterable[str]) -> str:
    for label in labels:
        if label in RESTRICTION_CATEGORIES:
            return RESTRICTION_CATEGORIES[label]
    return SPEECH


# --- Readers' reports -----------------------------------------------------------------------


def record_report_hold(session: Session, comment: Comment, report_reasons: Sequence[str]) -> int:
    """The statement of a published comment that readers' reports sent back to review."""
    notice = _open_notice(session, comment)
    counts = ", ".join(f"{r.replace('_', ' ')}" for r in sorted(set(report_reasons)))
    facts = (
        f"{len(report_reasons)} reader report(s) ({counts}) reached the site's threshold, so the "
        "published comment was hidden until a moderator reviews it."
    )
    row = _row(
        comment,
        utcnow(),
        visibility=VISIBILITY_DISABLED,
        ground=GROUND_INCOMPATIBLE,
        incompatible=(
            "The site's comment rules (reader reports)",
            "Readers reported this comment as " + counts + "; it is hidden while a moderator "
            "checks it against the site's rules.",
        ),
        category=_category(report_reasons),
        facts=facts,
        detection=False,
        automated=AUTOMATED_FULLY,
        source=SOURCE_ARTICLE_16 if notice else SOURCE_OTHER_NOTIFICATION,
        notice=notice,
    )
    return _insert(session, [row])


# --- Moderators' decisions ------------------------------------------------------------------


def record_moderation(
    session: Session,
    comment: Comment,
    moderator_email: str,
    from_status: str,
    to_status: str,
    detail: Mapping[str, Any],
) -> int:
    """A moderator's rejection gets its statement; an approval ends the comment's open ones."""
    now = utcnow()
    if to_status == Status.APPROVED:
        _end_restrictions(session, comment, now)
        return 0
    if to_status != Status.REJECTED:
        return 0
    return _insert(session, [_moderation_row(session, comment, moderator_email, detail, now)])


def _moderation_row(
    session: Session,
    comment: Comment,
    moderator_email: str,
    detail: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    code = str(detail.get("reason_code") or "other")
    note = detail.get("note")
    notice = _open_notice(session, comment)
    flagged = _content_reasons(comment.reasons or [])
    detection = bool(flagged) and notice is None
    facts = "A moderator reviewed the comment and removed it as " + REJECT_WORDS.get(code, code)
    if notice is not None:
        # Not the notice's reference: it is the reporter's receipt, and these facts are
        # published in the Transparency Database.
        facts += ", after a notice under Art. 16 DSA"
    elif flagged:
        facts += ", after the automatic check held it (" + _reason_words(flagged[0]) + ")"
    facts += "." + (f" {note}" if note else "")
    base = {
        "visibility": VISIBILITY_REMOVED,
        "facts": facts,
        "detection": detection,
        "automated": AUTOMATED_PARTIALLY if detection else NOT_AUTOMATED,
        "source": _source(comment, notice),
        "notice": notice,
        "decided_by": moderator_email,
    }
    if code == "illegal_content":
        category = notice_category(notice.category) if notice else SPEECH
        legal = (str(detail.get("legal_ground") or ""), str(note or ""))
        return _row(comment, now, ground=GROUND_ILLEGAL, illegal=legal, category=category, **base)
    words = REJECT_WORDS.get(code, code)
    explanation = note or f"A moderator found {words}, which the site's comment rules forbid."
    incompatible = (f"The site's comment rules: {words}", str(explanation))
    return _row(
        comment,
        now,
        ground=GROUND_INCOMPATIBLE,
        incompatible=incompatible,
        category=_category([code]),
        **base,
    )


def _source(comment: Comment, notice: Notice | None) -> str:
    if notice is not None:
        return SOURCE_ARTICLE_16
    reported = any(r.get("code") == "reported" for r in comment.reasons or [])
    return SOURCE_OTHER_NOTIFICATION if reported else SOURCE_VOLUNTARY


def _open_notice(session: Session, comment: Comment) -> Notice | None:
    """The oldest notice still under review that names this comment, if any."""
    query = (
        select(Notice)
        .join(NoticeComment, NoticeComment.notice_id == Notice.id)
        .where(
            NoticeComment.comment_id == comment.id,
            Notice.state.in_([NoticeState.AWAITING_REVIEW, NoticeState.UNDER_REVIEW]),
        )
        .order_by(Notice.id)
        .limit(1)
    )
    return session.scalars(query).first()


def _end_restrictions(session: Session, comment: Comment, now: datetime) -> None:
    """A published comment's visibility restrictions end now (a moderator approved it)."""
    session.execute(
        update(StatementOfReasons)
        .where(
            StatementOfReasons.comment_id == comment.id,
            StatementOfReasons.end_date.is_(None),
        )
        .values(end_date=now)
        .execution_options(synchronize_session=False)
    )


# --- Sanctions ------------------------------------------------------------------------------


def record_sanction(session: Session, sanction: AuthorSanction) -> int:
    """A suspension or a ban gets its statement (warnings and pre-moderation restrict nothing
    yet: the comments they hold get their own when a moderator decides them)."""
    if sanction.kind not in (SanctionKind.SUSPEND, SanctionKind.BAN):
        return 0
    suspended = sanction.kind == SanctionKind.SUSPEND
    until = sanction.ends_at.strftime("%Y-%m-%d %H:%M UTC") if sanction.ends_at else None
    what = f"suspended until {until}" if suspended else "banned from commenting on the site"
    row = {
        "public_id": new_statement_id(),
        "puid": new_statement_puid(),
        "site_id": sanction.site_id,
        "author_id": sanction.author_id,
        "comment_id": None,
        "sanction_id": sanction.id,
        "decision_visibility": None,
        "decision_account": ACCOUNT_SUSPENDED if suspended else ACCOUNT_TERMINATED,
        "decision_ground": GROUND_INCOMPATIBLE,
        "incompatible_content_ground": "The site's comment rules",
        "incompatible_content_explanation": sanction.reason[:EXPLANATION_LIMIT],
        "category": SCOPE,
        "decision_facts": f"A moderator {what}: {sanction.reason}"[:FACTS_LIMIT],
        "automated_detection": False,
        "automated_decision": NOT_AUTOMATED,
        "source_type": SOURCE_VOLUNTARY,
        "content_date": sanction.created_at,
        "application_date": sanction.created_at,
        "end_date": sanction.ends_at,
        "redress": REDRESS,
        "decided_by": sanction.created_by,
        "created_at": utcnow(),
    }
    return _insert(session, [row])


def end_sanction(session: Session, sanction: AuthorSanction) -> None:
    """A lifted sanction's restriction ends when it was lifted (a suspension that would have
    run longer ends early; a ban gets its end date)."""
    ended = sanction.lifted_at or utcnow()
    session.execute(
        update(StatementOfReasons)
        .where(
            StatementOfReasons.sanction_id == sanction.id,
            or_(StatementOfReasons.end_date.is_(None), StatementOfReasons.end_date > ended),
        )
        .values(end_date=ended)
        .execution_options(synchronize_session="fetch")
    )


# --- Writing --------------------------------------------------------------------------------


def _row(
    comment: Comment,
    now: datetime,
    *,
    visibility: str,
    ground: str,
    category: str,
    facts: str,
    detection: bool,
    automated: str,
    source: str,
    incompatible: tuple[str, str] | None = None,
    illegal: tuple[str, str] | None = None,
    notice: Notice | None = None,
    decided_by: str | None = None,
) -> dict[str, Any]:
    return {
        "public_id": new_statement_id(),
        # Its own random value, not the public_id: it names no person and no comment, and the
        # Transparency Database publishes it, so it must not open the statement's page.
        "puid": new_statement_puid(),
        "site_id": comment.site_id,
        "author_id": comment.author_id,
        "comment_id": comment.id,
        "sanction_id": None,
        "notice_id": notice.id if notice else None,
        "decision_visibility": visibility,
        "decision_account": None,
        "decision_ground": ground,
        "illegal_content_legal_ground": illegal[0][:GROUND_LIMIT] if illegal else None,
        "illegal_content_explanation": illegal[1][:EXPLANATION_LIMIT] if illegal else None,
        "incompatible_content_ground": incompatible[0][:GROUND_LIMIT] if incompatible else None,
        "incompatible_content_explanation": (
            incompatible[1][:EXPLANATION_LIMIT] if incompatible else None
        ),
        "category": category,
        "decision_facts": facts[:FACTS_LIMIT],
        "automated_detection": detection,
        "automated_decision": automated,
        "source_type": source,
        "content_language": comment.language,
        "content_date": comment.created_at,
        "application_date": now,
        "end_date": None,
        "redress": REDRESS,
        "decided_by": decided_by,
        "created_at": now,
    }


def _insert(session: Session, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    session.execute(insert(StatementOfReasons), rows)
    emit_dsa_events(
        session,
        STATEMENT_ISSUED,
        [(row["site_id"], row["comment_id"], {"statement": _event_view(row)}) for row in rows],
    )
    return len(rows)


def _event_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """The statement as a webhook carries it (the site tells the author)."""
    skip = {"site_id", "comment_id", "sanction_id", "notice_id", "decided_by"}
    view = {key: value for key, value in row.items() if key not in skip}
    view["id"] = view.pop("public_id")
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in view.items()
    }


# --- Reading --------------------------------------------------------------------------------


def statements_of_author(
    session: Session, site_id: int, author_id: str, limit: int = 50
) -> list[StatementOfReasons]:
    """An author's statements on a site, newest first."""
    query = (
        select(StatementOfReasons)
        .where(StatementOfReasons.site_id == site_id, StatementOfReasons.author_id == author_id)
        .order_by(StatementOfReasons.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def statement_by_public_id(session: Session, public_id: str) -> StatementOfReasons | None:
    """A statement by its opaque id (the link an author is given)."""
    query = select(StatementOfReasons).where(StatementOfReasons.public_id == public_id)
    return session.scalars(query).one_or_none()


def statements_of_comment(session: Session, comment_id: int) -> list[StatementOfReasons]:
    """A comment's statements, oldest first."""
    query = (
        select(StatementOfReasons)
        .where(StatementOfReasons.comment_id == comment_id)
        .order_by(StatementOfReasons.id)
    )
    return list(session.scalars(query))


def restriction_words(statement: StatementOfReasons) -> str:
    """What was restricted, in plain words."""
    return {
        VISIBILITY_REMOVED: "Your comment was removed",
        VISIBILITY_DISABLED: "Your comment was hidden pending review",
        ACCOUNT_SUSPENDED: "Your commenting was suspended",
        ACCOUNT_TERMINATED: "You were banned from commenting",
    }.get(statement.decision_visibility or statement.decision_account or "", "Restriction")
