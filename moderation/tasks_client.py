"""Sending work to the Celery workers by task name, so the web process never imports them."""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from base64 import b64encode
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeoutError
from kombu import Queue
from kombu.utils import json
from kombu.utils.uuid import uuid

from moderation.backoff import Backoff
from moderation.config import Settings
from moderation.forking import reset_after_fork
from moderation.logging_setup import log_context

SCORE_COMMENTS = "moderation.score_comments"
RESCORE_COMMENTS = "moderation.rescore_comments"
SWEEP_PENDING = "moderation.sweep_pending"
SCORE_TEXTS = "moderation.score_texts"
EXPLAIN_COMMENTS = "moderation.explain_comments"
# Message header of a scoring message: comment id -> the request id that accepted it.
COMMENT_REQUESTS = "comment_requests"

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
            "queue_order_strategy": "priority",
        },
        "task_serializer": "json",
        "accept_content": ["json"],
        # Only the synchronous scoring task keeps a result (see ``TaskQueue.score_now``);
        # results live in the broker's Redis for a minute.
        "result_backend": settings.broker_url,
        "result_expires": 60,
        "redis_socket_connect_timeout": 2,
        "redis_socket_timeout": 5,
        "task_ignore_result": True,
        "task_default_queue": settings.task_queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Batches form from prefetched messages: each process may hold two full batches
        # (one scoring, one filling) before it acknowledges.
        "worker_prefetch_multiplier": 2 * settings.scoring_batch_size,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": True,
        # Workers take from the synchronous queue first (see ``sync_queue``), explanations last.
        "task_queues": [
            Queue(sync_queue(settings)),
            Queue(settings.task_queue),
            Queue(explain_queue(settings)),
        ],
        "task_send_sent_event": False,
        "timezone": "UTC",
        "enable_utc": True,
    }


def sync_queue(settings: Settings) -> str:
    """The queue of requests someone is waiting on; workers serve it before the backlog."""
    return f"{settings.task_queue}.sync"


def explain_queue(settings: Settings) -> str:
    """The queue of explanations (a held comment's sentence scores): workers take from it last."""
    return f"{settings.task_queue}.explain"


def worker_queues(settings: Settings) -> str:
    """The ``--queues`` of a worker that serves all three, in the order it serves them."""
    return f"{sync_queue(settings)},{settings.task_queue},{explain_queue(settings)}"


# Seconds a synchronous request stays valid beyond the caller's wait.
EXPIRY_MARGIN_SECONDS = 5


class ScoringUnavailable(RuntimeError):
    """No worker scored the texts in time, or the broker could not be reached."""


@dataclass(frozen=True)
class TextScores:
    """What a worker answered for texts scored on request, in the order they were sent.

    ``spans`` holds, per text, the sentences as ``{"begin", "end", "scores"}`` when asked for.
    """

    model_name: str
    model_version: str
    scores: list[dict[str, float]]
    spans: list[list[dict[str, Any]]] | None = None
    # The hold thresholds the worker's model recorded: a site's policy starts from them.
    thresholds: dict[str, float] | None = None


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
    # The result backend (synchronous scoring) gives up as fast: one try, short timeouts,
    # so a request answers "unavailable" at once while Redis is down instead of retrying
    # for Celery's default 20 s and holding a web worker.
    config["redis_socket_connect_timeout"] = 1
    config["redis_socket_timeout"] = settings.sync_timeout + 1
    config["result_backend_transport_options"] = {"retry_policy": {"max_retries": 0}}
    return config


class TaskQueue:
    """Publishes tasks by name; a broker outage is logged, never raised to the caller."""

    # After a failed send, skip the broker for this long instead of making every request wait.
    BACKOFF_SECONDS = 2.0

    def __init__(self, settings: Settings, workers_alive: Callable[[], bool] | None = None):
        self._settings = settings
        self._celery: Celery | None = None
        self._broker = Backoff(self.BACKOFF_SECONDS)
        # Asked before a synchronous request: with no live worker it fails at once instead
        # of holding a web worker for the whole timeout.
        self._workers_alive = workers_alive
        self._buffer = SendBuffer(self.send_for_scoring, settings.scoring_batch_size)
        self._direct = (
            DirectPublisher(self, settings.broker_url, settings.task_queue)
            if DirectPublisher.serves(settings.broker_url)
            else None
        )

    @property
    def celery(self) -> Celery:
        """The producer-side Celery app, built on first use."""
        if self._celery is None:
            self._celery = Celery("moderation-producer", set_as_current=False)
            self._celery.conf.update(producer_config(self._settings))
        return self._celery

    def send_for_scoring(
        self, comment_ids: Sequence[int], requests: Mapping[int, str] | None = None
    ) -> bool:
        """Ask the workers to score these comments; False when the broker did not take it.

        The comments are already committed as pending, so a failed send loses nothing:
        the sweeper re-sends them. ``requests``: the request id that accepted each comment,
        for the workers' log lines, when one message carries several requests' comments.
        """
        if self._broker.waiting:
            return False
        headers = {COMMENT_REQUESTS: dict(requests)} if requests else {}
        try:
            if self._direct is not None:
                self._direct.send(SCORE_COMMENTS, [list(comment_ids)], headers)
            else:
                self.celery.send_task(
                    SCORE_COMMENTS,
                    args=[list(comment_ids)],
                    queue=self._settings.task_queue,
                    retry=False,
                    # Nobody waits for it; without this the result backend would subscribe.
                    ignore_result=True,
                    headers=headers or None,
                )
        except Exception:
            self._broker.failed()
            log.warning("broker unavailable; %d comment(s) left for the sweeper", len(comment_ids))
            return False
        return True

    def enqueue_for_scoring(self, comment_ids: Sequence[int]) -> None:
        """Send these committed comments for scoring: now, or with the send under way."""
        self._buffer.add(comment_ids, log_context().get("request_id"))

    def flush(self) -> None:
        """Send what ``enqueue_for_scoring`` still holds, now."""
        self._buffer.flush()

    def score_now(
        self,
        texts: Sequence[str],
        *,
        spans: bool = False,
        timeout: float | None = None,
        language: str | None = None,
    ) -> TextScores:
        """Have a worker score these texts and wait for the answer; the model never loads here.

        The request goes to the synchronous queue, which workers take before the backlog,
        and expires when nobody would read its answer any more. A ``language`` other than
        English goes to the workers' multilingual model. Raises ``ScoringUnavailable`` on
        timeout or when the broker cannot be reached.
        """
        timeout = self._settings.sync_timeout if timeout is None else timeout
        if self._broker.waiting:
            raise ScoringUnavailable("the broker is unavailable")
        if self._workers_alive is not None and not self._workers_alive():
            raise ScoringUnavailable("no worker is alive")
        try:
            result = self.celery.send_task(
                SCORE_TEXTS,
                # Sent only when needed, so English requests still suit workers that predate it.
                args=[list(texts), spans] + ([language] if language else []),
                # Workers log and broadcast (task events) this instead of the texts.
                argsrepr=f"[<{len(texts)} text(s)>, {spans!r}]",
                queue=sync_queue(self._settings),
                # Relative to the worker's clock: a margin keeps a clock a little ahead from
                # discarding every request; a late answer is simply never read.
                expires=timeout + EXPIRY_MARGIN_SECONDS,
                retry=False,
            )
        except Exception as exc:
            self._broker.failed()
            log.warning("broker unavailable for a synchronous request: %r", exc)
            raise ScoringUnavailable("the broker is unavailable") from exc
        try:
            answer = TextScores(**result.get(timeout=timeout, propagate=True))
        except CeleryTimeoutError:
            raise ScoringUnavailable(f"no worker answered within {timeout:g}s") from None
        except Exception as exc:
            # Only the type: a worker's error message may quote the text.
            raise ScoringUnavailable(f"scoring failed: {type(exc).__name__}") from exc
        finally:
            # Deletes the answer and stops listening for it while the connection is open.
            with contextlib.suppress(Exception):
                result.forget()
            with contextlib.suppress(Exception):
                result.backend.remove_pending_result(result)
            if threading.current_thread() is not threading.main_thread():
                self._release_thread_backend()
            # Else the result's __del__ unsubscribes again, reconnecting a released backend.
            result.backend = None
        return answer

    def _release_thread_backend(self) -> None:
        """Close this thread's result connections.

        Celery keeps one Redis result backend per thread. A gunicorn sync worker serves
        every request on its main thread and reuses it; a threaded server starts a thread
        per request, whose connections would otherwise stay open until garbage collection.
        """
        backend = self.celery._backend
        if backend is None:
            return
        with contextlib.suppress(Exception):
            consumer = getattr(backend, "result_consumer", None)
            if consumer is not None:
                consumer.stop()
            backend.client.connection_pool.disconnect()

    def close(self) -> None:
        """Close the broker and result connections this queue opened (tests, scripts)."""
        self._buffer.flush()
        if self._direct is not None:
            self._direct.close()
        if self._celery is None:
            return
        self._release_thread_backend()
        # Broker connections stay in kombu's pool, which every app on this URL shares.
        self._celery.close()
        self._celery = None


class DirectPublisher:
    """Puts a task message on a Redis broker's queue with one LPUSH, without kombu's producer.

    Celery builds the message (its task protocol 2: headers, properties, body), as
    ``send_task`` would; this writes it in the envelope kombu's Redis transport stores and
    its consumers read, for a plain queue (no exchange, no priority). kombu's producer
    machinery (channel, pool, declarations) costs more than the rest of sending; this costs
    the LPUSH. ``tests/test_ingest_path.py`` holds the envelope to what kombu writes.
    """

    def __init__(self, queue: TaskQueue, broker_url: str, routing_key: str):
        self._queue = queue
        self._routing_key = routing_key
        self._redis = redis.Redis.from_url(broker_url, socket_connect_timeout=1, socket_timeout=5)

    @staticmethod
    def serves(broker_url: str) -> bool:
        """Whether messages for this broker can go directly (plain Redis, with or without TLS)."""
        return urlsplit(broker_url).scheme in ("redis", "rediss")

    def send(self, name: str, args: list[Any], headers: Mapping[str, Any]) -> None:
        """Put one ``name`` task with these positional arguments and extra headers."""
        task_id = uuid()
        app = self._queue.celery
        message = app.amqp.as_task_v2(
            task_id, name, args=args, kwargs={}, ignore_result=True, reply_to=app.thread_oid
        )
        request_id = log_context().get("request_id")
        extra = {"request_id": request_id} if request_id else {}
        properties = message.properties | {
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": self._routing_key},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": uuid(),
        }
        envelope = {
            "body": b64encode(json.dumps(message.body).encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": message.headers | extra | dict(headers),
            "properties": properties,
        }
        self._redis.lpush(self._routing_key, json.dumps(envelope))

    def close(self) -> None:
        """Close its connections."""
        self._redis.close()


class SendBuffer:
    """Sends comment ids for scoring, many to a message when they arrive together.

    An id that arrives while no send is under way in this process is sent at once, by the
    thread that adds it (a sync web worker, serving one request at a time, always does this).
    Ids that arrive while a send is under way (other threads' requests) wait for it, and the
    thread whose send finishes takes every waiting id into its next message (at most
    ``size`` to a message): one broker round trip however many requests came meanwhile,
    and no timer. A thread sends at most ``ROUNDS_PER_CALLER`` messages; what still waits
    then goes from a short-lived thread. Only ids of committed comments come here, so a
    process that dies holding some loses no comment: they stay pending and the sweeper
    sends them.
    """

    def __init__(self, send: Callable[[Sequence[int], Mapping[int, str] | None], bool], size: int):
        self._send, self._size = send, size
        self._ids: list[int] = []
        self._requests: dict[int, str] = {}
        self._idle = threading.Condition()
        self._sending = False
        # Ids a parent held at a fork are the parent's to send.
        reset_after_fork(self._forget)
        atexit.register(self.flush)

    def add(self, comment_ids: Sequence[int], request_id: str | None = None) -> None:
        """Send these ids (accepted by request ``request_id``) now, or with the send under way."""
        with self._idle:
            self._ids.extend(comment_ids)
            if request_id:
                self._requests |= dict.fromkeys(comment_ids, request_id)
            if self._sending:
                return
            self._sending = True
        self._send_waiting()

    def flush(self) -> None:
        """Return once every id added before is on the broker (or was refused by it)."""
        with self._idle:
            while self._sending:
                self._idle.wait()
            if not self._ids:
                return
            self._sending = True
        self._send_waiting()

    # Messages a request thread sends for others before it hands the rest to a thread of
    # its own, so that no request waits on a steady stream of other requests' ids.
    ROUNDS_PER_CALLER = 2

    def _send_waiting(self, rounds: int | None = ROUNDS_PER_CALLER) -> None:
        # Called by the one thread that set ``_sending``; it sends until nothing waits, or
        # hands the duty to a new thread after ``rounds`` messages (None: no limit).
        sent = 0
        try:
            while True:
                with self._idle:
                    if not self._ids:
                        # Cleared under the same lock an ``add`` takes: an id added after
                        # this finds no send under way and is sent by its own thread.
                        self._sending = False
                        self._idle.notify_all()
                        return
                    if rounds is not None and sent >= rounds:
                        threading.Thread(
                            target=self._send_waiting,
                            args=(None,),
                            name="scoring-sender",
                            daemon=True,
                        ).start()
                        return
                    ids, self._ids = self._ids[: self._size], self._ids[self._size :]
                    requests = {i: self._requests.pop(i) for i in ids if i in self._requests}
                self._send(ids, requests)
                sent += 1
        except BaseException:
            # The ids of the failed message are left to the sweeper; those still waiting go
            # with the next ``add`` or ``flush``.
            with self._idle:
                self._sending = False
                self._idle.notify_all()
            raise

    def _forget(self) -> None:
        self._idle = threading.Condition()
        self._ids, self._requests, self._sending = [], {}, False
