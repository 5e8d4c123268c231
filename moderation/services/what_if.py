"""Moderators' decisions as labels: what other thresholds would have done.

Every moderator decision on a scored comment is a label: approved means clean, rejected
means toxic. Replaying those labels against proposed hold thresholds tells a site, before
it changes its policy, how many approved comments the new thresholds would have held
(extra work, false holds) and how many rejected ones they would have published (misses).
Only the model's thresholds are replayed: rules and pre-moderation are left out.

A comment counts once, by its latest moderator decision (a reversal replaces the first
call), and only if that decision falls in the period; scores are those of its latest
scoring. Counting is done in the database, one aggregate query per site, so a site with a
million decided comments costs one query, not a million rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Select,
    and_,
    case,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from moderation.models import Actor, AuditEvent, CommentScore, Site, Status
from moderation.policy import LABELS, SitePolicy, hold_thresholds
from moderation.services.moderation import CONFLICT

DEFAULT_DAYS = 30
_MAX_MOMENT_LENGTH = 40


class CalibrationError(ValueError):
    """A what-if or export was asked with bad input (a threshold, a label, a date)."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


# --------------------------------------------------------------------------------- input


@dataclass(frozen=True)
class Period:
    """A span of UTC time: from ``since`` (included) to ``until`` (excluded)."""

    since: datetime
    until: datetime


def parse_period(
    since: str | None, until: str | None, *, now: datetime, default_days: int = DEFAULT_DAYS
) -> Period:
    """The period asked for; ``until`` defaults to now, ``since`` to ``default_days`` before it.

    A date alone means the start of that day for ``since`` and its whole day for ``until``,
    so ``since=2026-03-01&until=2026-03-31`` is all of March.
    """
    end = parse_moment(until, "until", end_of_day=True) if until else now
    try:
        start = parse_moment(since, "since") if since else end - timedelta(days=default_days)
    except OverflowError:
        raise CalibrationError("invalid", "until is out of range", "until") from None
    if start >= end:
        raise CalibrationError("invalid", "since must be before until", "since")
    return Period(start, end)


def parse_moment(raw: str, field_name: str, *, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or date-time as tz-aware UTC; a time without an offset is UTC."""
    raw = raw.strip()
    try:
        if len(raw) > _MAX_MOMENT_LENGTH:
            raise ValueError(raw)
        if len(raw) == 10:
            moment = datetime.combine(date.fromisoformat(raw), time(), UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        moment = datetime.fromisoformat(raw)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        message = f"{field_name} must be an ISO 8601 date or date-time, e.g. 2026-03-01"
        raise CalibrationError("invalid", message, field_name) from None
    except OverflowError:
        raise CalibrationError("invalid", f"{field_name} is out of range", field_name) from None


def parse_thresholds(values: Iterable[tuple[str, str]]) -> dict[str, float]:
    """Proposed thresholds from (label, text) pairs; a blank value means "keep the current"."""
    thresholds = {}
    for label, raw in values:
        if label not in LABELS:
            message = f"unknown label {label[:50]!r}; labels are: {', '.join(LABELS)}"
            raise CalibrationError("invalid", message, label[:50])
        if not raw.strip():
            continue
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        # The negated test also refuses NaN, which compares false with everything.
        if not 0.0 <= value <= 1.0:
            message = f"{label} must be a number from 0 to 1"
            raise CalibrationError("invalid", message, label)
        thresholds[label] = value
    return thresholds


# -------------------------------------------------------------------------------- what-if


@dataclass(frozen=True)
class Tally:
    """What one set of thresholds would have done with the moderators' decisions."""

    approved_held: int  # approved by a moderator, held by these thresholds: false holds
    rejected_published: int  # rejected by a moderator, published by these thresholds: misses


@dataclass(frozen=True)
class SiteWhatIf:
    """One site's decided comments replayed against its current and the proposed thresholds."""

    site: str
    approved: int
    rejected: int
    # Decided, but with no scores to replay (a rule decided them, or scoring failed).
    unscored: int
    current: Tally
    proposed: Tally
    current_thresholds: dict[str, float]
    proposed_thresholds: dict[str, float]

    @property
    def decided(self) -> int:
        """Scored comments with a moderator decision in the period."""
        return self.approved + self.rejected


@dataclass(frozen=True)
class WhatIf:
    """The replay over one or more sites; totals add the sites up."""

    period: Period
    asked: dict[str, float]  # the proposed thresholds as asked, before each site's defaults
    sites: list[SiteWhatIf] = field(default_factory=list)

    @property
    def approved(self) -> int:
        """Approved comments counted, over every site."""
        return sum(site.approved for site in self.sites)

    @property
    def rejected(self) -> int:
        """Rejected comments counted, over every site."""
        return sum(site.rejected for site in self.sites)

    @property
    def decided(self) -> int:
        """Approved and rejected comments counted, over every site."""
        return self.approved + self.rejected

    @property
    def unscored(self) -> int:
        """Decided comments without scores, left out of every count."""
        return sum(site.unscored for site in self.sites)

    @property
    def current(self) -> Tally:
        """The sites' current thresholds, added up."""
        return _sum_tallies(site.current for site in self.sites)

    @property
    def proposed(self) -> Tally:
        """The proposed thresholds, added up."""
        return _sum_tallies(site.proposed for site in self.sites)


def _sum_tallies(tallies: Iterable[Tally]) -> Tally:
    held, published = 0, 0
    for tally in tallies:
        held, published = held + tally.approved_held, published + tally.rejected_published
    return Tally(held, published)


def what_if(
    session: Session,
    sites: Sequence[Site],
    period: Period,
    proposed: Mapping[str, float],
    model_hold_at: Mapping[str, float] | None = None,
) -> WhatIf:
    """Replay each site's moderator decisions in the period against the proposed thresholds.

    A label not in ``proposed`` keeps the threshold in force for it: the site's own, else
    the workers' model's recorded one (``model_hold_at``).
    """
    result = WhatIf(period, dict(proposed))
    for site in sites:
        current = hold_thresholds(SitePolicy.from_stored(site.policy).in_force(model_hold_at))
        result.sites.append(_site_what_if(session, site, period, current, current | proposed))
    return result


def _site_what_if(
    session: Session,
    site: Site,
    period: Period,
    current: dict[str, float],
    proposed: dict[str, float],
) -> SiteWhatIf:
    counts = {
        row.decision: row for row in session.execute(_replay(site, period, current, proposed))
    }
    approved, rejected = counts.get(Status.APPROVED), counts.get(Status.REJECTED)

    def count(row: Any, column: str) -> int:
        return int(getattr(row, column) or 0) if row is not None else 0

    scored = count(approved, "scored"), count(rejected, "scored")
    return SiteWhatIf(
        site=site.name,
        approved=scored[0],
        rejected=scored[1],
        unscored=count(approved, "decided") + count(rejected, "decided") - sum(scored),
        current=Tally(count(approved, "held_now"), scored[1] - count(rejected, "held_now")),
        proposed=Tally(count(approved, "held_then"), scored[1] - count(rejected, "held_then")),
        current_thresholds=current,
        proposed_thresholds=proposed,
    )


def _replay(
    site: Site, period: Period, current: dict[str, float], proposed: dict[str, float]
) -> Select[Any]:
    """Per decision (approved, rejected): decided, scored, held now, held as proposed."""
    decided = last_decisions([site.id], period).cte("decided")
    labels = sorted(set(current) | set(proposed))
    scores = _latest_scores(decided, labels).subquery("scores")
    columns = {label: scores.c[f"l{index}"] for index, label in enumerate(labels)}
    scored = scores.c.comment_id.is_not(None)

    def held(thresholds: dict[str, float]) -> Any:
        # Held when any label reaches its threshold; a label without a score holds nothing.
        crossed = [columns[label] >= value for label, value in thresholds.items()]
        return func.sum(case((and_(scored, or_(false(), *crossed)), 1), else_=0))

    return (
        select(
            decided.c.decision,
            func.count().label("decided"),
            func.count(scores.c.comment_id).label("scored"),
            held(current).label("held_now"),
            held(proposed).label("held_then"),
        )
        .select_from(decided.outerjoin(scores, scores.c.comment_id == decided.c.comment_id))
        .group_by(decided.c.decision)
    )


def last_decisions(site_ids: Sequence[int], period: Period) -> Select[Any]:
    """Comments whose latest moderator decision falls in the period: id, decision, reason.

    Only events from ``since`` on are read: a comment decided again later has its latest
    decision there too, and is then left out by ``until``.
    """
    latest = (
        select(func.max(AuditEvent.id).label("event_id"))
        .where(
            AuditEvent.site_id.in_(sorted(site_ids)),
            AuditEvent.actor_type == Actor.MODERATOR,
            # A lost race records an attempt, not a decision.
            AuditEvent.reason != CONFLICT,
            AuditEvent.created_at >= period.since,
        )
        .group_by(AuditEvent.comment_id)
        .subquery("latest")
    )
    return (
        select(
            AuditEvent.id.label("event_id"),
            AuditEvent.comment_id,
            AuditEvent.site_id,
            AuditEvent.to_status.label("decision"),
            AuditEvent.reason,
        )
        .join(latest, AuditEvent.id == latest.c.event_id)
        .where(
            AuditEvent.created_at < period.until,
            AuditEvent.to_status.in_([Status.APPROVED, Status.REJECTED]),
        )
    )


def _latest_scores(decided: CTE, labels: Sequence[str]) -> Select[Any]:
    """One row per decided, scored comment: its latest scoring's score per label (l0, l1...)."""
    scored_at = (
        select(CommentScore.comment_id, func.max(CommentScore.created_at).label("at"))
        .where(CommentScore.comment_id.in_(select(decided.c.comment_id)))
        .group_by(CommentScore.comment_id)
        .subquery("scored_at")
    )
    per_label: list[ColumnElement[Any]] = [
        func.max(case((CommentScore.label == label, CommentScore.score))).label(f"l{index}")
        for index, label in enumerate(labels)
    ]
    return (
        select(CommentScore.comment_id, *per_label)
        .join(
            scored_at,
            and_(
                CommentScore.comment_id == scored_at.c.comment_id,
                CommentScore.created_at == scored_at.c.at,
            ),
        )
        .group_by(CommentScore.comment_id)
    )
