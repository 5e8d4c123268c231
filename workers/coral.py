"""Coral's external moderation, decided in a worker: thin, the service does the work."""

from __future__ import annotations

from typing import Any

from moderation.db import unit_of_work
from moderation.models import Site
from moderation.services.coral import (
    CORAL_MODERATE,
    CoralRequest,
    CoralVerdicts,
    ScoredText,
    ScoreSource,
    moderate_coral_comment,
)
from moderation.services.text_scoring import scores_for_texts
from workers.app import app, monitor
from workers.runtime import runtime
from workers.tasks import explain_later


@app.task(name=CORAL_MODERATE, acks_late=True, ignore_result=True)
def coral_moderate(site_id: int, request: dict[str, Any], text: str, request_id: str) -> None:
    """Score Coral's comment, offer the verdict to the waiting web process, keep the comment.

    It runs to the end even when the web process has already answered Coral at the
    deadline, so that our record is made and says what Coral was told.
    """
    answer = scores_for_texts(runtime.scorer, [text])
    scored = ScoredText(
        scores=answer["scores"][0],
        source=ScoreSource(answer["model_name"], answer["model_version"], answer["thresholds"]),
    )
    verdicts = CoralVerdicts(monitor.store.client, monitor.store.prefix)
    held: list[int] = []
    with unit_of_work(runtime.sessions) as session:
        site = session.get(Site, site_id)
        if site is None:
            verdicts.offer(request_id, None)
            return
        moderate_coral_comment(
            session,
            site,
            CoralRequest.model_validate(request),
            text,
            scored,
            tell=lambda body: verdicts.offer(request_id, body),
            request_id=request_id,
            explain=held.append,
        )
    if held:
        explain_later(held)
