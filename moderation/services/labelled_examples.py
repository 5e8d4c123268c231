"""Labelled examples a site's clients suggest (Perspective's SuggestCommentScore).

Kept per site and attributed to the client's token, in the labelled-CSV layout that
``moderation model tune`` and ``moderation model evaluate`` read.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session

from moderation.models import LabelledExample, Site

SUGGESTSCORE = "perspective_suggestscore"


def keep_suggestion(
    session: Session,
    site: Site,
    text: str,
    labels: dict[str, float],
    *,
    language: str | None,
    client_token: str | None,
    community_id: str | None,
) -> LabelledExample:
    """Store one suggested label set for a text."""
    example = LabelledExample(
        site_id=site.id,
        text=text,
        labels=labels,
        language=language,
        source=SUGGESTSCORE,
        client_token=client_token,
        community_id=community_id,
    )
    session.add(example)
    session.flush()
    return example


def site_examples(session: Session, site: Site) -> Iterable[LabelledExample]:
    """The site's labelled examples, oldest first."""
    query = select(LabelledExample).where(LabelledExample.site_id == site.id)
    return session.scalars(query.order_by(LabelledExample.id))


def write_csv(examples: Iterable[LabelledExample], out: IO[str]) -> int:
    """Write examples as a labelled CSV (``text`` and one column per label); returns rows."""
    rows = list(examples)
    labels = sorted({label for example in rows for label in example.labels})
    writer = csv.writer(out)
    writer.writerow(["text", *labels, "client_token"])
    for example in rows:
        cells = [example.labels.get(label, "") for label in labels]
        writer.writerow([example.text, *cells, example.client_token or ""])
    return len(rows)
