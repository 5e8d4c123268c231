"""How fast workers empty a backlog: decisions/s through Redis, workers and the database."""

from __future__ import annotations

import time
from pathlib import Path

from bench.stack import environment, pending_count, queue_length, running, worker_command
from moderation.config import Settings
from moderation.db import make_engine, make_session_factory, unit_of_work
from moderation.schemas import CommentSubmission
from moderation.services.comments import submit_comment
from moderation.services.sites import site_for_api_key
from moderation.tasks_client import TaskQueue


def enqueue_backlog(settings: Settings, key: str, texts: list[str]) -> None:
    """Store pending comments and send one task each, exactly as the API does."""
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    ids = []
    with unit_of_work(sessions) as session:
        site = site_for_api_key(session, key)
        for i, text in enumerate(texts):
            data = CommentSubmission(
                article_id=f"bench-{i % 50}", author_id=f"u{i}", author_name="Reader", text=text
            )
            ids.append(submit_comment(session, site, data).comment.id)
    engine.dispose()
    queue = TaskQueue(settings)
    for comment_id in ids:
        queue.send_for_scoring([comment_id])


def drain_rate(
    settings: Settings,
    key: str,
    texts: list[str],
    *,
    processes: int,
    log: Path,
    command: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> float:
    """Decisions per second while a warmed-up worker empties a backlog of ``texts``."""
    warmup, backlog = texts[:20], texts[20:]
    command = command or worker_command(settings, processes)
    with running(command, environment(settings, **(extra_env or {})), log):
        enqueue_backlog(settings, key, warmup * processes)
        _wait(lambda: pending_count(settings) == 0, 300)
        enqueue_backlog(settings, key, backlog)
        started = time.monotonic()
        _wait(lambda: pending_count(settings) == 0, 1200)
        elapsed = time.monotonic() - started
    return len(backlog) / elapsed


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the workers")
        time.sleep(0.1)


__all__ = ["drain_rate", "enqueue_backlog", "queue_length"]
