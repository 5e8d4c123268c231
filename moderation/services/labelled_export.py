"""Moderators' decisions, and the labels a site's clients suggested, as a labelled file in
the training layout, for retraining and tuning.

``moderation model build --train``, ``model tune`` and ``moderation evaluate`` read it as
they read ``../shared/data/*.csv``: approved is clean (``label_toxic`` 0), rejected is toxic
(1); a suggestion (Perspective's ``comments:suggestscore``, Coral's feedback) is toxic for
each label it scored 0.5 or more.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from moderation.models import AuditEvent, Comment, LabelledExample, Site, Status
from moderation.scoring.training_data import CSV_COLUMN_FOR_LABEL, LABELS
from moderation.services.moderation import REJECT_REASONS
from moderation.services.what_if import Period, last_decisions

# The layout of the training files (moderation.scoring.training_data.read_labelled_csv).
EXPORT_COLUMNS = (
    "id",
    "text",
    *(CSV_COLUMN_FOR_LABEL[label] for label in LABELS),
    "source",
    "domain",
    "orig_label",
    "license",
)
EXPORT_DOMAIN = "news_comment"
EXPORT_LICENSE = "site-owned"
_EXPORT_BATCH = 1000


@dataclass(frozen=True)
class Export:
    """What a labelled export streams: the decisions, found once, read back in batches."""

    event_ids: list[int]
    site_names: dict[int, str]
    example_ids: list[int] = field(default_factory=list)


def plan_export(session: Session, sites: Sequence[Site], period: Period) -> Export:
    """The latest in-period moderator decision of each comment on these sites, in comment order.

    Only event ids are read here (a few bytes per comment); the texts are read while the
    file streams, by :func:`export_rows`.
    """
    if not sites:
        return Export([], {})
    decided = last_decisions([site.id for site in sites], period).subquery("decided")
    query = select(decided.c.event_id).order_by(decided.c.comment_id)
    suggested = (
        select(LabelledExample.id)
        .where(
            LabelledExample.site_id.in_([site.id for site in sites]),
            LabelledExample.created_at >= period.since,
            LabelledExample.created_at < period.until,
        )
        .order_by(LabelledExample.id)
    )
    return Export(
        list(session.scalars(query)),
        {site.id: site.name for site in sites},
        list(session.scalars(suggested)),
    )


def export_rows(
    sessions: sessionmaker[Session], export: Export, batch: int = _EXPORT_BATCH
) -> Iterator[tuple[str, ...]]:
    """The export as training rows, each batch read in its own short session.

    No transaction stays open while a client downloads: on SQLite every transaction holds
    the write lock, and a slow download must not stop the API and the workers. Unscored
    comments are included (a label needs only the text). Text is kept verbatim, with no
    guard against spreadsheet formulas: the file is for training, not for a spreadsheet.
    """
    for start in range(0, len(export.event_ids), batch):
        query = (
            select(
                Comment.public_id,
                Comment.text,
                AuditEvent.site_id,
                AuditEvent.to_status,
                AuditEvent.reason,
            )
            .join(Comment, AuditEvent.comment_id == Comment.id)
            .where(AuditEvent.id.in_(export.event_ids[start : start + batch]))
            .order_by(Comment.id)
        )
        with sessions() as session:
            rows = session.execute(query).all()
        for public_id, text, site_id, decision, reason in rows:
            yield _training_row(public_id, text, export.site_names[site_id], decision, reason)
    for start in range(0, len(export.example_ids), batch):
        ids = export.example_ids[start : start + batch]
        with sessions() as session:
            examples = session.scalars(
                select(LabelledExample)
                .where(LabelledExample.id.in_(ids))
                .order_by(LabelledExample.id)
            ).all()
        for example in examples:
            yield _suggested_row(example, export.site_names[example.site_id])


def _suggested_row(example: LabelledExample, site_name: str) -> tuple[str, ...]:
    """A client's suggested labels: toxic for a label scored 0.5 or more, unknown if unscored."""
    cells = tuple(
        "" if label not in example.labels else ("1" if example.labels[label] >= 0.5 else "0")
        for label in LABELS
    )
    source = f"suggested:{site_name}"
    orig_label = f"suggested by {example.client_token or 'a client'} ({example.source})"
    return (
        f"sug_{example.id}",
        example.text,
        *cells,
        source,
        EXPORT_DOMAIN,
        orig_label,
        EXPORT_LICENSE,
    )


def _training_row(
    public_id: str, text: str, site_name: str, decision: str, reason: str
) -> tuple[str, ...]:
    toxic = decision == Status.REJECTED
    if toxic:
        orig_label = f"moderator rejected: {REJECT_REASONS.get(reason, reason)}"
    else:
        orig_label = "moderator approved"
    # The finer labels stay empty: a moderator's call says toxic or not, nothing finer.
    finer = ("",) * (len(LABELS) - 1)
    source = f"moderation:{site_name}"
    label = "1" if toxic else "0"
    return (public_id, text, label, *finer, source, EXPORT_DOMAIN, orig_label, EXPORT_LICENSE)


def export_filename(sites: Sequence[Site], period: Period) -> str:
    """A download name that says which site and days a file holds."""
    name = sites[0].name if len(sites) == 1 else "all-sites"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name)
    return f"moderation-{safe}-{period.since:%Y%m%d}-{period.until:%Y%m%d}.csv"


def csv_lines(rows: Iterable[Sequence[str]]) -> Iterator[str]:
    """The header and each row as CSV text, one chunk per row, for a streamed response."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    yield _drain(buffer)
    for row in rows:
        writer.writerow(row)
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
