"""What a widget reader is told about themselves: their standing on the site (a warning to
acknowledge, a suspension, a ban) and their own comments' outcomes (published, awaiting
moderation, or not published with the reason in plain words).

Only the reader sees this (the widget proves it with the reader token); everyone else sees
comments without reasons. The words say why without exposing scores, notes or the site's
word lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from moderation.models import Actor, AuditEvent, AuthorSanction, Comment, SanctionKind, Site, Status
from moderation.services.authors import sanctions_in_force

AWAITING = "awaiting moderation"
# After "Not published: ".
BROKE_RULES = "it breaks this site's rules"
MODERATOR_WORDS = {
    "offensive": "a moderator found it offensive",
    "abusive": "a moderator found it abusive",
    "spam": "a moderator found it to be spam",
    "off_topic": "a moderator found it off-topic",
    "other": "a moderator found that " + BROKE_RULES,
    "illegal_content": "it was found to be illegal content",
}
RULE_WORDS = {
    "banned_word": "it contains a word this site does not allow",
    "repeat_post": "you posted the same text a moment before",
    "reported": "readers reported it and a moderator agreed",
    "language_not_supported": "it is in a language this site cannot check",
}
MODEL_LABEL_WORDS = {
    "toxicity": "toxic",
    "severe_toxicity": "severely toxic",
    "obscene": "obscene",
    "threat": "a threat",
    "insult": "an insult",
    "identity_attack": "an attack on people for who they are",
    "sexual_explicit": "sexually explicit",
}


@dataclass(frozen=True)
class ReaderOutcome:
    """A comment's status for its author: a reason code and plain words (None: published)."""

    status: str
    reason_code: str | None
    reason: str | None

    def as_dict(self) -> dict[str, str | None]:
        """The JSON the widget reads."""
        return {"status": self.status, "reason_code": self.reason_code, "reason": self.reason}


def reader_outcome(session: Session, comment: Comment) -> ReaderOutcome:
    """What the author of this comment is told about it."""
    if comment.status == Status.APPROVED:
        return ReaderOutcome(comment.status, None, None)
    if comment.status != Status.REJECTED:
        return ReaderOutcome(comment.status, None, AWAITING)
    code, words = rejection_reason(session, comment)
    return ReaderOutcome(comment.status, code, words)


def rejection_reason(session: Session, comment: Comment) -> tuple[str, str]:
    """The code and plain words of the decision that rejected the comment."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.comment_id == comment.id, AuditEvent.to_status == Status.REJECTED)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    audit = session.scalars(query).first()
    if audit is not None and audit.actor_type == Actor.MODERATOR:
        code = (audit.detail or {}).get("reason_code") or audit.reason
        return code, MODERATOR_WORDS.get(code, BROKE_RULES)
    # Rules and the model: the first stored reason is the one that decided.
    first = next(iter(comment.reasons or []), None) or {}
    code = str(first.get("code") or "rejected")
    return code, automatic_words(code, first.get("label"))


def automatic_words(code: str, label: str | None) -> str:
    """Plain words for a rule's or the model's reason."""
    if code in RULE_WORDS:
        return RULE_WORDS[code]
    if label in MODEL_LABEL_WORDS:
        return "our filter found it likely to be " + MODEL_LABEL_WORDS[label]
    return BROKE_RULES


@dataclass(frozen=True)
class ReaderStanding:
    """Whether a reader may comment: the newest unread warning, a suspension's end, a ban."""

    warning: AuthorSanction | None
    suspended_until: datetime | None
    banned: bool


def reader_standing(session: Session, site: Site, author_id: str) -> ReaderStanding:
    """The sanctions in force on this reader, as the widget shows them."""
    by_kind: dict[str, list[AuthorSanction]] = {}
    for sanction in sanctions_in_force(session, site.id, author_id):
        by_kind.setdefault(sanction.kind, []).append(sanction)
    warnings = by_kind.get(SanctionKind.WARN, [])
    # Several suspensions: posting opens when the last one ends.
    ends = [s.ends_at for s in by_kind.get(SanctionKind.SUSPEND, []) if s.ends_at is not None]
    return ReaderStanding(
        warning=warnings[-1] if warnings else None,
        suspended_until=max(ends) if ends else None,
        banned=SanctionKind.BAN in by_kind,
    )
