"""The Redis every API and worker process shares for what ops reads: counts and heartbeats.

Writes are best effort: a counter or heartbeat that cannot be written must never fail a
request or a task, and after a failure the writer leaves Redis alone for a few seconds so a
dead server costs one timeout, not one per call. Reads raise, so health checks see the truth.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis

from moderation.backoff import Backoff
from moderation.config import Settings

log = logging.getLogger(__name__)


class OpsStore:
    """A Redis client and the key prefix of one deployment."""

    # Seconds to skip writes after a failed one.
    BACKOFF_SECONDS = 5.0

    def __init__(self, client: redis.Redis, prefix: str):
        self.client = client
        self.prefix = prefix
        self._redis = Backoff(self.BACKOFF_SECONDS)

    @classmethod
    def from_settings(cls, settings: Settings) -> OpsStore:
        """The broker's Redis, under a prefix named after the deployment's queue.

        Deployments (and test runs) sharing one Redis keep apart by their queue, as the
        rate limiter's counters do.
        """
        client = redis.Redis.from_url(
            settings.broker_url, socket_connect_timeout=1, socket_timeout=2
        )
        return cls(client, f"moderation-ops:{settings.task_queue}")

    def key(self, *parts: object) -> str:
        """A key under this deployment's prefix."""
        return ":".join([self.prefix, *(str(part) for part in parts)])

    def write(self, fill: Callable[[Any], None]) -> bool:
        """Run the commands ``fill`` queues on a pipeline; False when Redis did not take them."""
        if self._redis.waiting:
            return False
        try:
            pipe = self.client.pipeline(transaction=False)
            fill(pipe)
            pipe.execute()
        except redis.RedisError as exc:
            self._redis.failed()
            log.warning("ops counters not written, Redis unavailable: %s", exc)
            return False
        return True


# kombu's Redis transport keeps messages sent with a priority in sibling lists named
# queue + "\x06\x16" + step; plain messages are in the list named after the queue.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)


def queue_length(client: redis.Redis, queue: str) -> int:
    """Messages waiting in a Celery queue on Redis (not counting those workers prefetched)."""
    pipe = client.pipeline(transaction=False)
    pipe.llen(queue)
    for step in PRIORITY_STEPS:
        pipe.llen(f"{queue}{PRIORITY_SEPARATOR}{step}")
    return sum(pipe.execute())
