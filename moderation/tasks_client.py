"""Sending work to the Celery workers by task name, so the web process never imports them."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from celery import Celery

from moderation.config import Settings

SCORE_COMMENTS = "moderation.score_comments"
RESCORE_COMMENTS = "moderation.rescore_comments"
SWEEP_PENDING = "moderation.sweep_pending"

log = logging.getLogger(__name__)


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings shared by the producer (API) and the workers."""
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "task_default_queue": settings.task_queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Batches form from prefetched messages: each process may hold two full batches
        # (one scoring, one filling) before it acknowledges.
        "worker_prefetch_multiplier": 2 * settings.scoring_batch_size,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": True,
        "task_send_sent_event": False,
        "timezone": "UTC",
        "enable_utc": True,
    }


def producer_config(settings: Settings) -> dict[str, Any]:
    """Like the workers' config, but giving up on a dead broker in milliseconds, not seconds.

    A request must not wait for Redis: the comment is already committed and the sweeper
    re-sends it, so one quick try is all the API makes.
    """
    config = celery_config(settings)
    config["broker_connection_timeout"] = 1
    config["broker_transport_options"] = config["broker_transport_options"] | {
        "socket_connect_timeout": 1,
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.1,
    }
    return config


class TaskQueue:
    """Publishes tasks by name; a broker outage is logged, never raised to the caller."""

    # After a failed send, skip the broker for this long instead of making every request wait.
    BACKOFF_SECONDS = 2.0

    def __init__(self, settings: Settings):
        self._settings = settings
        self._celery: Celery | None = None
        self._skip_until = 0.0

    @property
    def celery(self) -> Celery:
        """The producer-side Celery app, built on first use."""
        if self._celery is None:
            self._celery = Celery("moderation-producer", set_as_current=False)
            self._celery.conf.update(producer_config(self._settings))
        return self._celery

    def send_for_scoring(self, comment_ids: Sequence[int]) -> bool:
        """Ask the workers to score these comments; False when the broker did not take it.

        The comments are already committed as pending, so a failed send loses nothing:
        the sweeper re-sends them.
        """
        if time.monotonic() < self._skip_until:
            return False
        try:
            self.celery.send_task(
                SCORE_COMMENTS,
                args=[list(comment_ids)],
                queue=self._settings.task_queue,
                retry=False,
            )
        except Exception:
            self._skip_until = time.monotonic() + self.BACKOFF_SECONDS
            log.warning("broker unavailable; %d comment(s) left for the sweeper", len(comment_ids))
            return False
        return True
