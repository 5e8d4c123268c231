"""celery-batches' task base, with a batch whose pool process dies handed back at once.

celery-batches gives the pool only a success callback: when the process running a batch is
killed (OOM killer, a segfault in torch, SIGKILL), billiard reports ``WorkerLostError`` to
nobody, and the batch's messages stay unacknowledged in the worker's main process until that
process stops or Redis' visibility timeout restores them; the comments wait for the pending
sweeper. Here the main process rejects them back to the queue the moment the pool notices,
as ``task_reject_on_worker_lost`` does for ordinary tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from billiard.einfo import ExceptionInfo, ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery.worker.request import Request
from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task

from moderation.ops import metrics

log = logging.getLogger(__name__)


class RequeueingBatches(Batches):
    """``Batches`` whose lost batches go back to the queue instead of waiting for a sweep."""

    abstract = True

    def flush(self, requests: Collection[Request]) -> Any:
        """Run the batch in a pool process; acknowledge, or hand back if the process dies."""
        requests = list(requests)
        early = [request for request in requests if not request.task.acks_late]
        late = [request for request in requests if request.task.acks_late]

        def on_accepted(_pid: int, _time_accepted: float) -> None:
            for request in early:
                request.acknowledge()

        def on_return(_result: object) -> None:
            for request in late:
                request.acknowledge()

        def on_error(failure: ExceptionInfo) -> None:
            self.batch_failed(late, failure)

        # SimpleRequests: what the prefork pool can pickle.
        simple = ([SimpleRequest.from_request(request) for request in requests],)
        return self._pool.apply_async(
            apply_batches_task,
            (self, simple, 0, None),
            accept_callback=on_accepted,
            callback=on_return,
            error_callback=on_error,
        )

    def batch_failed(self, requests: list[Request], failure: ExceptionInfo) -> None:
        """The pool could not run the batch: requeue it if its process died, else let it go.

        A message that had already been redelivered once and loses its process again is
        acknowledged instead: a batch that kills every process it lands on must not cycle
        through the pool without pause; its comments stay pending for the sweeper.
        """
        error = failure.exception
        if isinstance(error, ExceptionWithTraceback):
            error = error.exc
        lost = isinstance(error, WorkerLostError)
        requeued = 0
        for request in requests:
            if lost and self.reject_on_worker_lost and not _redelivered(request):
                request.reject(requeue=True)
                requeued += 1
            else:
                request.acknowledge()
        metrics.record_task_failure(self.name)
        if requeued:
            metrics.record_task_retry(self.name)
        log.error(
            "a batch of %d message(s) failed in the pool (%r); %d put back on the queue, "
            "the rest left to the pending sweeper",
            len(requests),
            error,
            requeued,
        )


def _redelivered(request: Request) -> bool:
    return bool((request.delivery_info or {}).get("redelivered"))
