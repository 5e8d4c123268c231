"""Thin tasks: ids in, a moderation service does the work in its own transaction."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task
from celery_batches import SimpleRequest

from moderation.db import unit_of_work
from moderation.ops import metrics
from moderation.scoring.language import scorer_for
from moderation.services.decisions import (
    explain_held,
    mark_scoring_failed,
    score_and_decide,
    stale_pending_ids,
)
from moderation.services.text_scoring import scores_for_texts
from moderation.tasks_client import (
    EXPLAIN_COMMENTS,
    RESCORE_COMMENTS,
    SCORE_COMMENTS,
    SCORE_TEXTS,
    SWEEP_PENDING,
    explain_queue,
)
from workers.app import app, settings
from workers.batches import RequeueingBatches
from workers.runtime import runtime

log = logging.getLogger(__name__)


@app.task(
    base=RequeueingBatches,
    name=SCORE_COMMENTS,
    flush_every=settings.scoring_batch_size,
    flush_interval=settings.scoring_batch_wait,
    batch_items=settings.scoring_batch_size,
    acks_late=True,
)
def score_comments(requests: list[SimpleRequest]) -> int:
    """Score every comment of the buffered messages in one forward pass.

    celery-batches acknowledges the messages when this returns, also after an exception,
    so failures are counted and handed to ``rescore_comments`` before returning, never
    raised (Celery's ``task_failure`` signal never sees them).
    """
    comment_ids = [comment_id for request in requests for comment_id in request.args[0]]
    try:
        return _score_and_decide(comment_ids)
    except Exception as exc:
        log.warning("scoring %d comment(s) failed (%r); retrying", len(comment_ids), exc)
        metrics.record_task_failure(SCORE_COMMENTS)
        _retry_later(comment_ids, attempt=0)
        return 0


@app.task(name=RESCORE_COMMENTS, bind=True, acks_late=True)
def rescore_comments(self: Task, comment_ids: list[int], attempt: int) -> int:
    """Retry of a failed batch; after the last try its comments are held as scoring_failed."""
    try:
        return _score_and_decide(comment_ids)
    except Exception as exc:
        metrics.record_task_failure(RESCORE_COMMENTS)
        if attempt + 1 < settings.scoring_max_retries:
            log.warning("scoring %s failed again (%r)", comment_ids, exc)
            _retry_later(comment_ids, attempt=attempt + 1)
            return 0
        log.error("scoring %s failed for good: %r", comment_ids, exc)
        with unit_of_work(runtime.sessions) as session:
            return mark_scoring_failed(session, comment_ids, repr(exc))


@app.task(name=EXPLAIN_COMMENTS, acks_late=True, ignore_result=True)
def explain_comments(comment_ids: list[int]) -> int:
    """Score the sentences of comments their scores held, after their decisions were stored:
    what a moderator's card shows, never a decision's delay. Its queue is taken from last."""
    try:
        return explain_held(
            runtime.sessions, comment_ids, runtime.scorer, multilingual=runtime.multilingual
        )
    except Exception as exc:
        # An explanation never costs anything else: the cards show the plain text.
        log.warning("explaining %d held comment(s) failed (%r)", len(comment_ids), exc)
        return 0


def _score_and_decide(comment_ids: list[int]) -> int:
    return score_and_decide(
        runtime.sessions,
        comment_ids,
        runtime.scorer,
        multilingual=runtime.multilingual,
        explain_later=explain_later,
    )


def explain_later(comment_ids: list[int]) -> None:
    """Queue the explanation of these held comments (after their decisions committed)."""
    try:
        explain_comments.apply_async(args=[comment_ids], queue=explain_queue(settings))
    except Exception as exc:
        log.warning("could not queue the explanation of %d comment(s): %r", len(comment_ids), exc)


def _retry_later(comment_ids: list[int], attempt: int) -> None:
    # A separate plain task: celery-batches compares ETAs with a monotonic clock, so a
    # countdown on the batch task itself would never come due.
    delay = settings.scoring_retry_delay * 2**attempt
    rescore_comments.apply_async(
        args=[comment_ids, attempt], countdown=delay, queue=settings.task_queue
    )


@app.task(name=SCORE_TEXTS, ignore_result=False, acks_late=False)
def score_texts(
    texts: list[str], spans: bool = False, language: str | None = None
) -> dict[str, Any]:
    """Score texts someone is waiting for (the compatible APIs); nothing is stored.

    ``language`` (the caller's, or detected by it) picks the multilingual model where it
    covers it. Acknowledged on receipt: a request whose worker died is not worth
    redelivering after its caller has given up, and the message expires with the caller's
    timeout anyway.
    """
    scorer = scorer_for(language, runtime.scorer, runtime.multilingual)
    if scorer is None:
        raise ValueError(f"no loaded model covers the language {language!r}")
    return scores_for_texts(scorer, texts, spans=spans)


@app.task(name=SWEEP_PENDING)
def sweep_pending() -> int:
    """Re-send comments left pending too long (broker down at submit, lost task)."""
    with unit_of_work(runtime.sessions) as session:
        ids = stale_pending_ids(session, timedelta(seconds=settings.pending_resend_after))
    batch = settings.scoring_batch_size
    for start in range(0, len(ids), batch):
        score_comments.apply_async(args=[ids[start : start + batch]], queue=settings.task_queue)
    if ids:
        log.info("re-sent %d stale pending comment(s)", len(ids))
    return len(ids)
