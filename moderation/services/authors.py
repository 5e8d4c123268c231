"""An author's standing on a site: their record, and the sanctions moderators set on them.

Sanctions are warn (the widget shows the message and posting waits until the author
acknowledges it), suspend until a time (posting answers 403 ``author_suspended``), ban (403
``author_banned``; the moderator may reject the author's published comments in the same
action) and always pre-moderate (every new comment is held). Each takes a reason, names the
moderator, and is lifted, never deleted: the sanctions table is their audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session, selectinload

from moderation.db import utcnow
from moderation.dsa.statements import end_sanction, record_sanction
from moderation.models import (
    AuthorSanction,
    Comment,
    Moderator,
    Report,
    SanctionKind,
    Site,
    Status,
)
from moderation.rules import AuthorContext, SiteRules, same_text_key
from moderation.services.moderation import Outcome, moderate

MAX_SANCTION_REASON = 1000
RECENT_COMMENTS = 20
COORDINATED_WINDOW = timedelta(hours=1)


class SanctionRefused(ValueError):
    """A sanction (or a lift) was asked with bad input; nothing was changed."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


@dataclass(frozen=True)
class PostingRefusal:
    """Why this author may not post now: an error code, plain words, and details."""

    code: str
    message: str
    until: datetime | None = None
    sanction: AuthorSanction | None = None


# --- In force -------------------------------------------------------------------------------


def sanctions_in_force(
    session: Session, site_id: int, author_id: str, now: datetime | None = None
) -> list[AuthorSanction]:
    """The author's sanctions on the site that are not lifted, not over, not acknowledged."""
    now = now or utcnow()
    query = (
        select(AuthorSanction)
        .where(
            AuthorSanction.site_id == site_id,
            AuthorSanction.author_id == author_id,
            AuthorSanction.lifted_at.is_(None),
        )
        .order_by(AuthorSanction.id)
    )
    return [s for s in session.scalars(query) if in_force(s, now)]


def in_force(sanction: AuthorSanction, now: datetime | None = None) -> bool:
    """Whether a sanction applies now: not lifted, not over, not an acknowledged warning."""
    now = now or utcnow()
    if sanction.lifted_at is not None:
        return False
    if sanction.ends_at is not None and sanction.ends_at <= now:
        return False
    return not (sanction.kind == SanctionKind.WARN and sanction.acknowledged_at is not None)


def posting_refusal(
    sanctions: Sequence[AuthorSanction], *, warnings_block: bool
) -> PostingRefusal | None:
    """The refusal a new comment of an author with these sanctions gets, or None.

    A warning blocks posting only where the author can read and acknowledge it (the widget).
    """
    # Of several of a kind, the one that lasts longest speaks (no end lasts longest).
    lasting = sorted(sanctions, key=lambda s: (s.ends_at is None, s.ends_at or s.created_at))
    by_kind = {sanction.kind: sanction for sanction in lasting}
    if SanctionKind.BAN in by_kind:
        ban = by_kind[SanctionKind.BAN]
        return PostingRefusal(
            "author_banned", "you can no longer comment on this site", ban.ends_at, ban
        )
    if SanctionKind.SUSPEND in by_kind:
        suspension = by_kind[SanctionKind.SUSPEND]
        return PostingRefusal(
            "author_suspended",
            "your commenting is suspended until " + _plain_time(suspension.ends_at),
            suspension.ends_at,
            suspension,
        )
    if warnings_block and SanctionKind.WARN in by_kind:
        warning = by_kind[SanctionKind.WARN]
        return PostingRefusal(
            "warning_unacknowledged",
            "a moderator sent you a warning; read and acknowledge it before you comment",
            sanction=warning,
        )
    return None


def _plain_time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "further notice"


def premoderated(sanctions: Sequence[AuthorSanction]) -> bool:
    """Whether every new comment of this author is held."""
    return any(sanction.kind == SanctionKind.PREMODERATE for sanction in sanctions)


def author_context(
    session: Session,
    site: Site,
    author_id: str,
    text: str,
    rules: SiteRules,
    sanctions: Sequence[AuthorSanction],
) -> AuthorContext:
    """What the author rules need, read only for the rules the site turned on."""
    earlier = approved = decided = rejected = same_text = 0
    if not (rules.new_commenter_holds or rules.history_reject_percent or rules.coordinated_authors):
        # The rules are off (the default): nothing to read, nothing to build.
        return AuthorContext(premoderated=premoderated(sanctions))
    mine = (Comment.site_id == site.id, Comment.author_id == author_id)
    if rules.new_commenter_holds:
        query = select(Comment.status, func.count()).where(*mine).group_by(Comment.status)
        counts = dict(session.execute(query).all())
        earlier = sum(counts.values())
        approved = counts.get(Status.APPROVED, 0)
    if rules.history_reject_percent:
        since = utcnow() - timedelta(days=rules.history_days)
        query = (
            select(Comment.status, func.count())
            .where(
                *mine,
                Comment.decided_at >= since,
                Comment.status.in_([Status.APPROVED, Status.REJECTED]),
            )
            .group_by(Comment.status)
        )
        counts = dict(session.execute(query).all())
        rejected = counts.get(Status.REJECTED, 0)
        decided = rejected + counts.get(Status.APPROVED, 0)
    if rules.coordinated_authors:
        same_text = _other_authors_with_text(session, site, author_id, text)
    return AuthorContext(
        premoderated=premoderated(sanctions),
        earlier_comments=earlier,
        approved_comments=approved,
        recent_decided=decided,
        recent_rejected=rejected,
        same_text_authors=same_text,
    )


def _other_authors_with_text(session: Session, site: Site, author_id: str, text: str) -> int:
    """Other authors who posted the same text (folded) on the site within the last hour."""
    key = same_text_key(text)
    since = utcnow() - COORDINATED_WINDOW
    # Candidates by exact length window first, then compared folded in Python.
    query = (
        select(Comment.author_id, Comment.text)
        .where(
            Comment.site_id == site.id,
            Comment.author_id != author_id,
            Comment.created_at >= since,
            func.length(Comment.text).between(len(key) // 2, len(text) * 2 + 10),
        )
        .limit(2000)
    )
    return len({author for author, other in session.execute(query) if same_text_key(other) == key})


# --- Acting on an author --------------------------------------------------------------------


@dataclass
class Sanctioned:
    """A new sanction and the comments rejected with it."""

    sanction: AuthorSanction
    rejected: list[Outcome] = field(default_factory=list)


def sanction_author(
    session: Session,
    site: Site,
    author_id: str,
    moderator: Moderator,
    kind: str,
    reason: str,
    *,
    ends_at: datetime | None = None,
    reject_published: bool = False,
    reject_reason: str = "abusive",
    source: str = "web",
) -> Sanctioned:
    """Set a sanction on an author of a site, with a reason; a ban may reject their comments."""
    kind = _kind(kind)
    reason = _reason(reason)
    ends_at = _ends_at(kind, ends_at)
    if not _has_comments(session, site, author_id):
        raise SanctionRefused(404, "not_found", "no such author on this site")
    if reject_published and kind != SanctionKind.BAN:
        raise SanctionRefused(
            422, "invalid", "only a ban can reject the author's comments", "reject_published"
        )
    sanction = AuthorSanction(
        site_id=site.id,
        author_id=author_id,
        kind=kind,
        reason=reason,
        ends_at=ends_at,
        created_by=moderator.email,
    )
    session.add(sanction)
    session.flush()
    record_sanction(session, sanction)
    rejected = []
    if reject_published:
        query = select(Comment).where(
            Comment.site_id == site.id,
            Comment.author_id == author_id,
            # Pending too: one posted just before the ban would be published after it.
            Comment.status.in_([Status.APPROVED, Status.HELD, Status.PENDING]),
        )
        note = f"author banned: {reason}"[:1000]
        for comment in session.scalars(query.options(selectinload(Comment.scores))):
            rejected.append(
                moderate(
                    session, comment, moderator, Status.REJECTED, reject_reason, note, source=source
                )
            )
    return Sanctioned(sanction, rejected)


def _kind(kind: str) -> SanctionKind:
    if kind not in set(SanctionKind):
        choices = ", ".join(SanctionKind)
        raise SanctionRefused(422, "invalid", f"kind must be one of: {choices}", "kind")
    return SanctionKind(kind)


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise SanctionRefused(422, "invalid", "say why: a reason is required", "reason")
    if len(reason) > MAX_SANCTION_REASON:
        raise SanctionRefused(
            422, "invalid", f"reason is over {MAX_SANCTION_REASON} characters", "reason"
        )
    return reason


def _ends_at(kind: SanctionKind, ends_at: datetime | None) -> datetime | None:
    if kind == SanctionKind.WARN:
        if ends_at is not None:
            raise SanctionRefused(422, "invalid", "a warning has no end", "ends_at")
        return None
    if kind == SanctionKind.SUSPEND and ends_at is None:
        raise SanctionRefused(422, "invalid", "a suspension needs an end (ends_at)", "ends_at")
    if ends_at is not None:
        if ends_at.tzinfo is None:
            raise SanctionRefused(422, "invalid", "ends_at needs a time zone", "ends_at")
        if ends_at <= utcnow():
            raise SanctionRefused(422, "invalid", "ends_at is in the past", "ends_at")
    return ends_at


def _has_comments(session: Session, site: Site, author_id: str) -> bool:
    query = select(Comment.id).where(Comment.site_id == site.id, Comment.author_id == author_id)
    return session.scalars(query.limit(1)).first() is not None


def lift_sanction(
    session: Session, sanction: AuthorSanction, moderator: Moderator, reason: str
) -> AuthorSanction:
    """Lift a sanction (the row stays, with who lifted it, when and why)."""
    reason = _reason(reason)
    if sanction.lifted_at is not None:
        raise SanctionRefused(409, "already_lifted", "this sanction was already lifted")
    sanction.lifted_at = utcnow()
    sanction.lifted_by = moderator.email
    sanction.lift_reason = reason
    session.flush()
    end_sanction(session, sanction)
    return sanction


def sanction_for_site_ids(
    session: Session, site_ids: frozenset[int] | None, public_id: str
) -> AuthorSanction | None:
    """A sanction on one of these sites (None: any site), or None."""
    query = select(AuthorSanction).where(AuthorSanction.public_id == public_id)
    if site_ids is not None:
        query = query.where(AuthorSanction.site_id.in_(sorted(site_ids)))
    return session.scalars(query).one_or_none()


def acknowledge_warnings(session: Session, site: Site, author_id: str) -> int:
    """The author read their warnings; posting is open again. Returns how many."""
    warnings = [
        s for s in sanctions_in_force(session, site.id, author_id) if s.kind == SanctionKind.WARN
    ]
    now = utcnow()
    for warning in warnings:
        warning.acknowledged_at = now
    session.flush()
    return len(warnings)


# --- The author view ------------------------------------------------------------------------


@dataclass
class Standing:
    """An author's record on a site, for the author view."""

    site: Site
    author_id: str
    author_name: str
    counts: dict[str, int]
    recent: list[Comment]
    sanctions: list[AuthorSanction]
    in_force: list[AuthorSanction]


def author_standing(session: Session, site: Site, author_id: str) -> Standing | None:
    """Counts per outcome, reports, recent comments and every sanction; None if unknown."""
    mine = (Comment.site_id == site.id, Comment.author_id == author_id)
    recent = list(
        session.scalars(
            select(Comment).where(*mine).order_by(Comment.id.desc()).limit(RECENT_COMMENTS)
        )
    )
    if not recent:
        return None
    by_status = dict(
        session.execute(
            select(Comment.status, func.count()).where(*mine).group_by(Comment.status)
        ).all()
    )
    reported = session.scalar(
        select(func.count(distinct(Report.comment_id)))
        .join(Comment, Comment.id == Report.comment_id)
        .where(*mine)
    )
    counts = {
        "published": by_status.get(Status.APPROVED, 0),
        "held": by_status.get(Status.HELD, 0),
        "rejected": by_status.get(Status.REJECTED, 0),
        "pending": by_status.get(Status.PENDING, 0),
        "reported": int(reported or 0),
    }
    sanctions = list(
        session.scalars(
            select(AuthorSanction)
            .where(AuthorSanction.site_id == site.id, AuthorSanction.author_id == author_id)
            .order_by(AuthorSanction.id.desc())
        )
    )
    now = utcnow()
    current = [sanction for sanction in sanctions if in_force(sanction, now)]
    return Standing(site, author_id, recent[0].author_name, counts, recent, sanctions, current)
