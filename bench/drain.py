"""How fast workers empty a backlog: decisions/s through Redis, workers and the database.

The backlog is stored as pending comments first; the clock starts before the first of their
tasks is sent (one per comment, as the API sends them) and stops when none is pending, so
every decision counted is one a worker made within the timed span. Authors are new on each
run: the repeat-post rule (the same author's same text within 10 minutes) would otherwise
decide a second run's comments at submit, before any worker saw them.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from bench.stack import environment, pending_count, queue_length, running, worker_command
from moderation.config import Settings
from moderation.db import make_engine, make_session_factory, unit_of_work
from moderation.models import Status
from moderation.schemas import CommentSubmission
from moderation.services.comments import submit_comment
from moderation.services.sites import site_for_api_key
from moderation.tasks_client import TaskQueue


def store_pending(settings: Settings, key: str, texts: list[str]) -> list[int]:
    """Store comments as the API does, by authors new to the site; all must be pending."""
    run = uuid.uuid4().hex[:8]
    engine = make_engine(settings.database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        site = site_for_api_key(session, key)
        comments = [
            submit_comment(
                session,
                site,
                CommentSubmission(
                    article_id=f"bench-{i % 50}",
                    author_id=f"{run}-{i}",
                    author_name="Reader",
                    text=text,
                ),
            ).comment
            for i, text in enumerate(texts)
        ]
        ids = [comment.id for comment in comments]
        decided = sum(comment.status != Status.PENDING for comment in comments)
    engine.dispose()
    if decided:
        raise RuntimeError(f"rules decided {decided} of {len(ids)} comments before any worker")
    return ids


def send_for_scoring(settings: Settings, comment_ids: list[int], ids_per_message: int = 1) -> None:
    """One task per comment, as the API sends them one at a time; or ``ids_per_message`` ids
    in each, as its send buffer does under load and the pending sweeper does."""
    queue = TaskQueue(settings)
    try:
        for start in range(0, len(comment_ids), ids_per_message):
            if not queue.send_for_scoring(comment_ids[start : start + ids_per_message]):
                raise RuntimeError("the broker refused a task")
    finally:
        queue.close()


def enqueue_backlog(settings: Settings, key: str, texts: list[str]) -> list[int]:
    """Store pending comments and send their tasks."""
    ids = store_pending(settings, key, texts)
    send_for_scoring(settings, ids)
    return ids


def drain_rate(
    settings: Settings,
    key: str,
    texts: list[str],
    *,
    processes: int,
    log: Path,
    command: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    warm_processes: int | None = None,
    ids_per_message: int = 1,
) -> float:
    """Decisions per second while warmed-up workers empty a backlog of ``texts``.

    ``warm_processes``: every worker process consuming the queue, when other workers than
    this one do (20 comments each to warm up). ``ids_per_message``: comment ids per task.
    """
    warmup, backlog = texts[:20], texts[20:]
    command = command or worker_command(settings, processes)
    with running(command, environment(settings, **(extra_env or {})), log):
        enqueue_backlog(settings, key, warmup * (warm_processes or processes))
        _wait(lambda: pending_count(settings) == 0, 300)
        ids = store_pending(settings, key, backlog)
        started = time.monotonic()
        send_for_scoring(settings, ids, ids_per_message)
        _wait(lambda: pending_count(settings) == 0, 1200)
        elapsed = time.monotonic() - started
    return len(ids) / elapsed


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the workers")
        time.sleep(0.1)


__all__ = ["drain_rate", "enqueue_backlog", "queue_length", "send_for_scoring", "store_pending"]
