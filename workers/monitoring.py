"""What a worker tells ops, through Celery's signals: heartbeats, task metrics, log context.

Signals rather than code in the task bodies, so every task (and any task added later) is
covered the same way, and the tasks stay about their work.
"""

from __future__ import annotations

import logging
import multiprocessing
from typing import Any

from celery.signals import (
    before_task_publish,
    celeryd_after_setup,
    heartbeat_sent,
    setup_logging,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    worker_shutdown,
)
from celery.worker import state as worker_state

from moderation.config import Settings
from moderation.logging_setup import bind, configure_logging, unbind
from moderation.ops import metrics
from moderation.ops.heartbeat import Heartbeats
from moderation.ops.store import OpsStore
from moderation.tasks_client import COMMENT_REQUESTS, RESCORE_COMMENTS, SCORE_COMMENTS

log = logging.getLogger(__name__)


class WorkerMonitor:
    """Holds the worker's name (known once Celery set it up) and where to report."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = OpsStore.from_settings(settings)
        self.heartbeats = Heartbeats(self.store)
        self.recorder = metrics.install(self.store)
        self.nodename: str | None = None
        self._log_tokens: dict[str, Any] = {}
        # Set by a pool process once its model is warm; created before the pool forks, so
        # the main process sees it and repeats readiness with each heartbeat.
        self.warmed = multiprocessing.Value("b", 0, lock=False)

    def connect(self) -> None:
        """Connect every handler; strong references, as the monitor lives as long as the app."""
        for signal, handler in (
            (setup_logging, self.on_setup_logging),
            (celeryd_after_setup, self.on_after_setup),
            (heartbeat_sent, self.on_heartbeat),
            (worker_shutdown, self.on_shutdown),
            (task_prerun, self.on_task_start),
            (task_postrun, self.on_task_end),
            (task_failure, self.on_task_failure),
            (task_retry, self.on_task_retry),
            (before_task_publish, self.on_publish),
        ):
            signal.connect(handler, weak=False, dispatch_uid=f"{__name__}.{handler.__name__}")

    def on_setup_logging(self, loglevel: int | None = None, **_kwargs: Any) -> None:
        """Our formats instead of Celery's, in the worker and in beat alike."""
        configure_logging(self.settings, level=loglevel, force=True)

    def on_after_setup(self, sender: str, **_kwargs: Any) -> None:
        """Learn the worker's name before the pool forks, so pool processes inherit it."""
        self.nodename = sender
        self.recorder.worker = sender

    def on_heartbeat(self, **_kwargs: Any) -> None:
        """Celery's event heartbeat (every 2 s in the main process): write ours alongside."""
        if self.nodename:
            self.heartbeats.beat(
                self.nodename,
                active=len(worker_state.active_requests),
                processed=worker_state.all_total_count[0],
                ready=bool(self.warmed.value),
            )

    def on_shutdown(self, **_kwargs: Any) -> None:
        """A clean stop takes the worker off the list at once instead of letting it age out."""
        if self.nodename:
            self.heartbeats.forget(self.nodename)

    def on_task_start(self, task_id: str, task: Any, args: Any = (), **_kwargs: Any) -> None:
        """Bind the task id, and which request sent each comment of a batch, to log lines."""
        fields: dict[str, Any] = {"task_id": task_id}
        request_id = getattr(task.request, "request_id", None)
        if request_id:
            fields["request_id"] = request_id
        comment_requests = _comment_requests(args)
        if comment_requests:
            fields["comment_requests"] = comment_requests
        self._log_tokens[task_id] = bind(**fields)

    def on_task_end(self, task_id: str, **_kwargs: Any) -> None:
        """Unbind what ``on_task_start`` bound."""
        token = self._log_tokens.pop(task_id, None)
        if token is not None:
            unbind(token)

    def on_task_failure(self, sender: Any = None, **_kwargs: Any) -> None:
        """A task raised."""
        metrics.record_task_failure(getattr(sender, "name", str(sender)))

    def on_task_retry(self, sender: Any = None, **_kwargs: Any) -> None:
        """A task asked Celery to retry it."""
        metrics.record_task_retry(getattr(sender, "name", str(sender)))

    def on_publish(self, sender: str | None = None, **_kwargs: Any) -> None:
        """A scoring batch that failed is retried by sending ``rescore_comments``."""
        if sender == RESCORE_COMMENTS:
            metrics.record_task_retry(SCORE_COMMENTS)


def _comment_requests(args: Any) -> dict[int, str]:
    """For a celery-batches call: comment id -> the request id its message carried."""
    if not args or not isinstance(args[0], list):
        return {}
    found: dict[int, str] = {}
    for request in args[0]:
        headers = getattr(request, "request_dict", None) or {}
        request_id = headers.get("request_id")
        comment_ids = (getattr(request, "args", None) or [[]])[0]
        if request_id and isinstance(comment_ids, list):
            found |= {comment_id: request_id for comment_id in comment_ids}
        # A message gathered from several requests names each comment's (JSON: str keys).
        for comment_id, its_request in (headers.get(COMMENT_REQUESTS) or {}).items():
            found[int(comment_id)] = its_request
    return found


def install(settings: Settings) -> WorkerMonitor:
    """Report heartbeats, task metrics and structured logs from this process's workers."""
    monitor = WorkerMonitor(settings)
    monitor.connect()
    return monitor
