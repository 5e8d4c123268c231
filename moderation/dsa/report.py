"""The transparency report's figures for a period (Art. 15 and 24 DSA): notices, restrictions,
appeals and sanctions, on a set of sites."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from moderation.dsa.transparency import ExportError
from moderation.models import (
    Appeal,
    AppealOutcome,
    AuthorSanction,
    Notice,
    NoticeDecision,
    StatementOfReasons,
)


@dataclass
class TransparencyReport:
    """The figures of one period."""

    since: datetime
    until: datetime
    notices_by_category: Counter[str] = field(default_factory=Counter)
    notices_by_outcome: Counter[str] = field(default_factory=Counter)
    median_hours_to_decision: float | None = None
    restrictions_by_ground: Counter[str] = field(default_factory=Counter)
    restrictions_by_automation: Counter[str] = field(default_factory=Counter)
    restrictions_by_type: Counter[str] = field(default_factory=Counter)
    restrictions_by_source: Counter[str] = field(default_factory=Counter)
    appeals: Counter[str] = field(default_factory=Counter)
    median_hours_to_appeal_decision: float | None = None
    sanctions: Counter[str] = field(default_factory=Counter)

    @property
    def notices_received(self) -> int:
        """Every notice received in the period."""
        return sum(self.notices_by_category.values())

    @property
    def notices_actioned(self) -> int:
        """Notices that led to a removal."""
        return self.notices_by_outcome.get(NoticeDecision.ILLEGAL, 0)

    def rows(self) -> list[tuple[str, str, str]]:
        """(section, item, value) rows, for the CSV and the page."""
        rows = [
            ("period", "since", self.since.isoformat()),
            ("period", "until", self.until.isoformat()),
            ("notices", "received", str(self.notices_received)),
            ("notices", "actioned", str(self.notices_actioned)),
            ("notices", "median hours to decision", _hours(self.median_hours_to_decision)),
        ]
        sections = (
            ("notices by category", self.notices_by_category),
            ("notices by outcome", self.notices_by_outcome),
            ("restrictions by ground", self.restrictions_by_ground),
            ("restrictions by automation", self.restrictions_by_automation),
            ("restrictions by type", self.restrictions_by_type),
            ("restrictions by source", self.restrictions_by_source),
            ("appeals", self.appeals),
            ("sanctions", self.sanctions),
        )
        for section, counts in sections:
            rows += [(section, key, str(value)) for key, value in sorted(counts.items())]
        rows.append(
            ("appeals", "median hours to decision", _hours(self.median_hours_to_appeal_decision))
        )
        return rows


def _hours(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def transparency_report(
    session: Session, site_ids: Iterable[int] | None, since: datetime, until: datetime
) -> TransparencyReport:
    """Count what happened on these sites (None: all) in ``[since, until)``."""
    if until <= since:
        raise ExportError("until must be after since")
    sites = sorted(site_ids) if site_ids is not None else None
    report = TransparencyReport(since, until)
    _notices(session, sites, report)
    _restrictions(session, sites, report)
    _appeals(session, sites, report)
    _sanctions(session, sites, report)
    return report


def _period(model, column, sites, report: TransparencyReport):  # type: ignore[no-untyped-def]
    query = select(model).where(column >= report.since, column < report.until)
    return query if sites is None else query.where(model.site_id.in_(sites))


def _notices(session: Session, sites: list[int] | None, report: TransparencyReport) -> None:
    waits = []
    for notice in session.scalars(_period(Notice, Notice.created_at, sites, report)):
        report.notices_by_category[notice.category] += 1
        report.notices_by_outcome[notice.decision or notice.state] += 1
        if notice.decided_at is not None:
            waits.append((notice.decided_at - notice.created_at).total_seconds() / 3600)
    report.median_hours_to_decision = statistics.median(waits) if waits else None


def _restrictions(session: Session, sites: list[int] | None, report: TransparencyReport) -> None:
    query = _period(StatementOfReasons, StatementOfReasons.created_at, sites, report)
    for statement in session.scalars(query):
        report.restrictions_by_ground[statement.decision_ground] += 1
        report.restrictions_by_automation[statement.automated_decision] += 1
        kind = statement.decision_visibility or statement.decision_account or "other"
        report.restrictions_by_type[kind] += 1
        report.restrictions_by_source[statement.source_type] += 1


def _appeals(session: Session, sites: list[int] | None, report: TransparencyReport) -> None:
    waits = []
    for appeal in session.scalars(_period(Appeal, Appeal.created_at, sites, report)):
        report.appeals["received"] += 1
        if appeal.outcome == AppealOutcome.UPHELD:
            report.appeals["decision upheld"] += 1
        elif appeal.outcome == AppealOutcome.REVERSED:
            report.appeals["decision reversed"] += 1
        else:
            report.appeals["open"] += 1
        if appeal.decided_at is not None:
            waits.append((appeal.decided_at - appeal.created_at).total_seconds() / 3600)
    report.median_hours_to_appeal_decision = statistics.median(waits) if waits else None


def _sanctions(session: Session, sites: list[int] | None, report: TransparencyReport) -> None:
    query = _period(AuthorSanction, AuthorSanction.created_at, sites, report)
    for sanction in session.scalars(query):
        report.sanctions[sanction.kind] += 1
