"""celery-batches' task base: batches sized by what they hold, and a batch whose pool
process dies handed back at once.

celery-batches counts messages (``flush_every``), but a scoring message carries many comment
ids (the API's send buffer, the sweeper): 32 messages of 32 ids would go to one pool process
as one batch of 1,024 comments while the others wait. Each flush is cut into batches of at
most ``batch_items`` ids, each a pool job of its own, so every process gets a share.

A batch also leaves as soon as a pool process is free to take it, not at the next tick of
``flush_interval``: a message that finds fewer batches in the pool than processes is flushed
at once, and a batch that finishes lets what arrived meanwhile go. At low rates a comment
waits for no timer; under load, batches grow to what arrives while the processes are busy.
Only scoring batches are counted: a process busy with another task (an explanation, a
synchronous request) can still be given a batch, which then waits its turn in the pool. The
hooks run in the worker's main process, as the prefork pool calls them (the pool this
service runs).

celery-batches gives the pool only a success callback: when the process running a batch is
killed (OOM killer, a segfault in torch, SIGKILL), billiard reports ``WorkerLostError`` to
nobody, and the batch's messages stay unacknowledged in the worker's main process until that
process stops or Redis' visibility timeout restores them; the comments wait for the pending
sweeper. Here the main process rejects them back to the queue the moment the pool notices,
as ``task_reject_on_worker_lost`` does for ordinary tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
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
    # The most ids (the first argument's items) one pool job gets; None: no limit.
    batch_items: int | None = None
    # Batches handed to the pool and not yet finished (the worker's main process only).
    _in_flight = 0

    def Strategy(self, task: Any, app: Any, consumer: Any) -> Any:
        """celery-batches' message handler, flushing at once while a pool process is idle."""
        buffer_message = super().Strategy(task, app, consumer)

        def task_message_handler(*args: Any, **kwargs: Any) -> None:
            buffer_message(*args, **kwargs)
            if self._process_free():
                self._do_flush()

        return task_message_handler

    def _process_free(self) -> bool:
        return self._in_flight < (self._pool.num_processes or 1)

    def _batch_done(self) -> None:
        """A batch finished: if that frees a process, it takes what the buffer holds now."""
        self._in_flight -= 1
        if self._process_free() and not self._buffer.empty():
            self._do_flush()

    def flush(self, requests: Collection[Request]) -> list[Any]:
        """Cut the buffered messages into batches of at most ``batch_items`` ids, each run by
        a pool process of its own."""
        return [
            self._run_batch(batch)
            for batch in batches_of(list(requests), self.batch_items, _items_of)
        ]

    def _run_batch(self, requests: list[Request]) -> Any:
        """Run the batch in a pool process; acknowledge, or hand back if the process dies."""
        early = [request for request in requests if not request.task.acks_late]
        late = [request for request in requests if request.task.acks_late]

        def on_accepted(_pid: int, _time_accepted: float) -> None:
            for request in early:
                request.acknowledge()

        def on_return(_result: object) -> None:
            try:
                for request in late:
                    request.acknowledge()
            finally:
                self._batch_done()

        def on_error(failure: ExceptionInfo) -> None:
            try:
                self.batch_failed(late, failure)
            finally:
                self._batch_done()

        # SimpleRequests: what the prefork pool can pickle.
        simple = ([SimpleRequest.from_request(request) for request in requests],)
        self._in_flight += 1
        try:
            return self._pool.apply_async(
                apply_batches_task,
                (self, simple, 0, None),
                accept_callback=on_accepted,
                callback=on_return,
                error_callback=on_error,
            )
        except BaseException:
            self._in_flight -= 1
            raise

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


def batches_of(
    requests: list[Any], size: int | None, items_of: Callable[[Any], int]
) -> list[list[Any]]:
    """The requests in order, cut into runs of at most ``size`` items; a request with more
    items than ``size`` is a batch of its own (a message is never split)."""
    if size is None:
        return [requests] if requests else []
    batches: list[list[Any]] = []
    current: list[Any] = []
    held = 0
    for request in requests:
        items = items_of(request)
        if current and held + items > size:
            batches.append(current)
            current, held = [], 0
        current.append(request)
        held += items
    if current:
        batches.append(current)
    return batches


def _items_of(request: Request) -> int:
    """How many ids the message carries (its first argument, a list), else 1."""
    args = request.args or ()
    first = args[0] if args else None
    return max(1, len(first)) if isinstance(first, list) else 1


def _redelivered(request: Request) -> bool:
    return bool((request.delivery_info or {}).get("redelivered"))
