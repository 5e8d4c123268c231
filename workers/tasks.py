"""Thin tasks: ids in, a moderation service does the work in its own transaction."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Task

from moderation.db import unit_of_work
from moderation.services.decisions import mark_scoring_failed, score_and_decide, stale_pending_ids
from moderation.tasks_client import SCORE_COMMENTS, SWEEP_PENDING
from workers.app import app, settings
from workers.runtime import runtime

log = logging.getLogger(__name__)


@app.task(name=SCORE_COMMENTS, bind=True, max_retries=settings.scoring_max_retries)
def score_comments(self: Task, comment_ids: list[int]) -> int:
    """Score a batch of comments and store their decisions; a no-op for decided ones."""
    try:
        return score_and_decide(runtime.sessions, comment_ids, runtime.scorer)
    except Exception as exc:
        if self.request.retries < self.max_retries:
            delay = settings.scoring_retry_delay * 2**self.request.retries
            log.warning("scoring %s failed (%r); retry in %.1fs", comment_ids, exc, delay)
            raise self.retry(exc=exc, countdown=delay) from exc
        log.error("scoring %s failed for good: %r", comment_ids, exc)
        with unit_of_work(runtime.sessions) as session:
            return mark_scoring_failed(session, comment_ids, repr(exc))


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
