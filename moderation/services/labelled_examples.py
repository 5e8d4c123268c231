"""Labelled examples a site's clients suggest (Perspective's SuggestCommentScore).

Kept per site and attributed to the client's token; the labelled export
(:mod:`moderation.services.labelled_export`) writes them in the layout ``moderation model
tune`` and ``moderation evaluate`` read.
"""

from __future__ import annotations

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
