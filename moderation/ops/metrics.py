"""Prometheus metrics, counted in the shared Redis and read at scrape time (``GET /metrics``).

This module has no Flask in it: services, scoring and workers record through it; the web
side (``moderation.ops.web``) serves the scrape and binds each request's recorder.

Why not prometheus-client's multiprocess mode: it shares samples through files in one local
directory, which serves several gunicorn workers on one host but cannot see Celery workers on
other hosts, and the design lets workers run anywhere on the same Redis and database (no
local files as shared state). Every API and worker process already talks to that Redis, so
each event increments a Redis hash (one pipelined round trip per request or per batch), and
a scrape reads those hashes plus live values: queue lengths and heartbeats from Redis, the
pending backlog from the database. Any gunicorn worker answers a scrape with the same
numbers, counters survive process restarts, and prometheus-client still does the exposition.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import threading
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from moderation.config import Settings
from moderation.db import after_commit, utcnow
from moderation.forking import reset_after_fork
from moderation.logging_setup import log_context
from moderation.ops.heartbeat import Heartbeat, Heartbeats
from moderation.ops.store import OpsStore, queue_length
from moderation.services.backlog import pending_backlog
from moderation.tasks_client import explain_queue, sync_queue

if TYPE_CHECKING:
    from moderation.models import Comment
    from moderation.policy import Decision

EXTENSION_KEY = "moderation.ops.metrics"
OUTCOMES = ("approved", "held", "rejected")
# Per-minute decision counts feed the ops page's 24-hour chart; kept a little longer.
MINUTE_SERIES_TTL = 26 * 3600

log = logging.getLogger(__name__)
# The two lines that let one comment be followed from HTTP to decision.
comments_log = logging.getLogger("moderation.comments")


@dataclass(frozen=True)
class CounterSpec:
    """A counter: ``name`` without the ``_total`` suffix the exposition adds."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistogramSpec:
    """A histogram with fixed upper bounds."""

    name: str
    documentation: str
    buckets: tuple[float, ...]
    labels: tuple[str, ...] = ()


COMMENTS_RECEIVED = CounterSpec(
    "moderation_comments_received", "Comments accepted by the API.", ("site",)
)
DECISIONS = CounterSpec(
    "moderation_decisions", "Automated decisions stored, by outcome.", ("outcome",)
)
DECISION_REASONS = CounterSpec(
    "moderation_decision_reasons",
    "Reasons given for automated decisions: code and toxicity label (empty if none).",
    ("outcome", "reason", "label"),
)
TASK_FAILURES = CounterSpec(
    "moderation_task_failures", "Task runs that ended in an exception.", ("task",)
)
TASK_RETRIES = CounterSpec(
    "moderation_task_retries", "Retries scheduled after a failed task run.", ("task",)
)
WEBHOOK_DELIVERIES = CounterSpec(
    "moderation_webhook_deliveries", "Webhook delivery attempts, by result.", ("status",)
)
SUBMIT_TO_DECISION = HistogramSpec(
    "moderation_submit_to_decision_seconds",
    "Time from a comment's acceptance to its stored automated decision.",
    (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
)
MODEL_FORWARD = HistogramSpec(
    "moderation_model_forward_seconds",
    "Duration of one model forward pass.",
    (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MODEL_BATCH_SIZE = HistogramSpec(
    "moderation_model_batch_size",
    "Comments scored in one model forward pass.",
    (1, 2, 4, 8, 16, 32, 64, 128, 256),
)
COUNTERS = (
    COMMENTS_RECEIVED,
    DECISIONS,
    DECISION_REASONS,
    TASK_FAILURES,
    TASK_RETRIES,
    WEBHOOK_DELIVERIES,
)
HISTOGRAMS = (SUBMIT_TO_DECISION, MODEL_FORWARD, MODEL_BATCH_SIZE)


# ---- recording -----------------------------------------------------------------------------


class Samples:
    """Increments gathered locally, then written to Redis in one round trip."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.sums: defaultdict[tuple[str, str], float] = defaultdict(float)

    def count(self, spec: CounterSpec, labels: Sequence[str] = (), amount: int = 1) -> None:
        """Add to a counter."""
        self.counts[spec.name, _field(labels)] += amount

    def observe(self, spec: HistogramSpec, value: float, labels: Sequence[str] = ()) -> None:
        """Put one observation into its bucket (the first bound >= value) and the sum."""
        self.counts[spec.name, _field([*labels, bisect_left(spec.buckets, value)])] += 1
        self.sums[spec.name, _field([*labels, "sum"])] += value

    def add(self, other: Samples) -> None:
        """Add another's increments to these."""
        self.counts.update(other.counts)
        for key, amount in other.sums.items():
            self.sums[key] += amount

    def __bool__(self) -> bool:
        return bool(self.counts or self.sums)

    def queue(self, store: OpsStore, pipe: Any) -> None:
        """Queue the increments on a Redis pipeline."""
        for (name, field), amount in self.counts.items():
            pipe.hincrby(store.key("metric", name), field, amount)
        for (name, field), amount in self.sums.items():
            pipe.hincrbyfloat(store.key("metric", name), field, amount)


def _field(values: Sequence[object]) -> str:
    return json.dumps(list(values))


class MetricsRecorder:
    """Writes samples for one deployment; ``worker`` names the Celery worker it runs in."""

    def __init__(self, store: OpsStore, worker: str | None = None):
        self.store = store
        self.worker = worker

    def record(self, samples: Samples, also: Callable[[Any], None] | None = None) -> bool:
        """Write the samples (and whatever ``also`` queues) in one pipeline; best effort."""

        def fill(pipe: Any) -> None:
            samples.queue(self.store, pipe)
            if also is not None:
                also(pipe)

        return self.store.write(fill)


class GatheringRecorder(MetricsRecorder):
    """A web process's recorder: increments are gathered in the process and written in one
    round trip at most every ``interval`` seconds (and at exit, and before this process
    answers a scrape), not one round trip per request.

    A background thread of the process writes; it starts with the first increment (after a
    fork, again in the child). Samples that come with extra commands (``also``) are written
    at once, as by ``MetricsRecorder``.
    """

    def __init__(self, store: OpsStore, interval: float = 1.0):
        super().__init__(store)
        self.interval = interval
        self._pending = Samples()
        self._lock = threading.Lock()
        self._recorded = threading.Event()
        self._owner: int | None = None
        # Samples a parent gathered before a fork are the parent's to write.
        reset_after_fork(self._forget)
        atexit.register(self.flush)

    def record(self, samples: Samples, also: Callable[[Any], None] | None = None) -> bool:
        """Gather the samples for the next write; True (written or not is known later)."""
        if also is not None:
            return super().record(samples, also)
        with self._lock:
            if self._owner != os.getpid():
                self._owner = os.getpid()
                threading.Thread(target=self._run, name="metrics-writer", daemon=True).start()
            self._pending.add(samples)
        self._recorded.set()
        return True

    def flush(self) -> bool:
        """Write what was gathered, now; False when Redis did not take it."""
        with self._lock:
            pending, self._pending = self._pending, Samples()
        return super().record(pending) if pending else True

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._recorded = threading.Event()
        self._pending, self._owner = Samples(), None

    def _run(self) -> None:
        while True:
            self._recorded.wait()
            self._recorded.clear()
            # Gather for one interval: every request in it shares the write.
            threading.Event().wait(self.interval)
            self.flush()


_process_recorder: MetricsRecorder | None = None


def install(store: OpsStore, worker: str | None = None) -> MetricsRecorder:
    """Make this process record into ``store`` outside any Flask app (the workers)."""
    global _process_recorder
    _process_recorder = MetricsRecorder(store, worker)
    return _process_recorder


_request_recorder: ContextVar[MetricsRecorder | None] = ContextVar(
    "moderation_metrics_recorder", default=None
)


def use_recorder(recorder: MetricsRecorder) -> Token[MetricsRecorder | None]:
    """Record into ``recorder`` in this context (a web request) until ``reset``."""
    return _request_recorder.set(recorder)


def reset_recorder(token: Token[MetricsRecorder | None]) -> None:
    """Undo ``use_recorder``."""
    _request_recorder.reset(token)


def current_recorder() -> MetricsRecorder | None:
    """The request's recorder, else the process's (a worker); None records nothing."""
    return _request_recorder.get() or _process_recorder


def _record(fill: Callable[[Samples], None]) -> None:
    recorder = current_recorder()
    if recorder is not None:
        samples = Samples()
        fill(samples)
        recorder.record(samples)


def comment_received(site: str, comment_id: str) -> None:
    """A new comment was committed as pending."""
    comments_log.info("comment accepted", extra={"comment_id": comment_id, "site": site})
    _record(lambda samples: samples.count(COMMENTS_RECEIVED, (site,)))


def record_task_failure(task: str) -> None:
    """A task run raised."""
    _record(lambda samples: samples.count(TASK_FAILURES, (task,)))


def record_task_retry(task: str) -> None:
    """A failed task run was scheduled to run again."""
    _record(lambda samples: samples.count(TASK_RETRIES, (task,)))


def record_webhook_delivery(status: str) -> None:
    """One webhook delivery attempt ended: e.g. ``delivered``, ``failed``, ``gave_up``."""
    _record(lambda samples: samples.count(WEBHOOK_DELIVERIES, (status,)))


def observe_scoring(
    model_name: str, model_version: str, passes: Sequence[tuple[float, int]]
) -> None:
    """Forward passes of one ``score_batch`` as (seconds, comments); notes the model loaded."""
    recorder = current_recorder()
    if recorder is None or not passes:
        return
    samples = Samples()
    for seconds, size in passes:
        samples.observe(MODEL_FORWARD, seconds)
        samples.observe(MODEL_BATCH_SIZE, size)
    scored = partial(
        Heartbeats(recorder.store).queue_scored,
        worker=recorder.worker,
        name=model_name,
        version=model_version,
        comments=sum(size for _seconds, size in passes),
    )
    recorder.record(samples, also=scored)


@dataclass(frozen=True)
class _Decided:
    id: int
    public_id: str
    created_at: datetime
    outcome: str
    reasons: tuple[tuple[str, str], ...]


def observe_decisions(session: Session, decided: Sequence[tuple[Comment, Decision]]) -> None:
    """Count and log these automated decisions once ``session`` commits them, never before."""
    facts = [
        _Decided(
            comment.id,
            comment.public_id,
            comment.created_at,
            str(decision.outcome),
            tuple((reason.code, reason.label or "") for reason in decision.reasons),
        )
        for comment, decision in decided
    ]
    if facts:
        recorder = current_recorder()
        count = partial(_decisions_committed, recorder)
        after_commit(session, f"{__name__}:decisions", count, *facts)


def _decisions_committed(
    recorder: MetricsRecorder | None, _session: Session, facts: list[_Decided]
) -> None:
    now = utcnow()
    request_ids = log_context().get("comment_requests") or {}
    samples = Samples()
    per_outcome: Counter[str] = Counter()
    for fact in facts:
        latency = max(0.0, (now - fact.created_at).total_seconds())
        samples.count(DECISIONS, (fact.outcome,))
        for code, label in fact.reasons:
            samples.count(DECISION_REASONS, (fact.outcome, code, label))
        samples.observe(SUBMIT_TO_DECISION, latency)
        per_outcome[fact.outcome] += 1
        comments_log.info(
            "comment decided: %s",
            fact.outcome,
            extra={
                "comment_id": fact.public_id,
                "request_id": request_ids.get(fact.id),
                "outcome": fact.outcome,
                "reasons": [
                    code if not label else f"{code}:{label}" for code, label in fact.reasons
                ],
                "latency_seconds": round(latency, 3),
            },
        )
    if recorder is not None:
        recorder.record(samples, also=partial(_count_minute, recorder.store, per_outcome, now))


def _count_minute(store: OpsStore, per_outcome: Counter[str], now: datetime, pipe: Any) -> None:
    key = store.key("decided", int(now.timestamp()) // 60)
    for outcome, amount in per_outcome.items():
        pipe.hincrby(key, outcome, amount)
    pipe.expire(key, MINUTE_SERIES_TTL)


@dataclass(frozen=True)
class MinuteCounts:
    """Automated decisions taken in one minute, by outcome."""

    minute: int
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Every decision of the minute."""
        return sum(self.counts.values())


def decisions_by_minute(
    store: OpsStore, minutes: int, now: float | None = None
) -> list[MinuteCounts]:
    """The last ``minutes`` minutes, oldest first, the current (partial) minute last."""
    current = int(now or time.time()) // 60
    span = range(current - minutes + 1, current + 1)
    pipe = store.client.pipeline(transaction=False)
    for minute in span:
        pipe.hgetall(store.key("decided", minute))
    rows = pipe.execute()
    return [
        MinuteCounts(minute, {key.decode(): int(value) for key, value in row.items()})
        for minute, row in zip(span, rows, strict=True)
    ]


# ---- exposition ----------------------------------------------------------------------------


class ScrapeCollector:
    """Builds every family when Prometheus scrapes, from Redis and the database."""

    def __init__(self, settings: Settings, store: OpsStore, engine: Engine):
        self.settings = settings
        self.store = store
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        """Redis-backed families, then database ones; an unreachable one reports up=0."""
        yield from self._from_redis()
        yield from self._from_database()

    def _from_redis(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("moderation_broker_up", "Whether Redis answered this scrape.")
        try:
            families = list(self._stored()) + list(self._live())
        except redis.RedisError as exc:
            log.warning("metrics scrape could not read Redis: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _stored(self) -> Iterator[Metric]:
        pipe = self.store.client.pipeline(transaction=False)
        for spec in (*COUNTERS, *HISTOGRAMS):
            pipe.hgetall(self.store.key("metric", spec.name))
        stored = dict(
            zip([spec.name for spec in (*COUNTERS, *HISTOGRAMS)], pipe.execute(), strict=True)
        )
        for spec in COUNTERS:
            yield _counter_family(spec, stored[spec.name])
        for spec in HISTOGRAMS:
            yield _histogram_family(spec, stored[spec.name])

    def _live(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily(
            "moderation_queue_length", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        # Scoring, the synchronous requests someone waits on, and the explanations of held
        # comments (taken from last, so they grow while the workers are saturated).
        for name in (
            self.settings.task_queue,
            sync_queue(self.settings),
            explain_queue(self.settings),
        ):
            queue.add_metric([name], queue_length(self.store.client, name))
        yield queue
        yield from _heartbeat_families(Heartbeats(self.store).all(), self.settings)

    def _from_database(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "moderation_database_up", "Whether the database answered this scrape."
        )
        try:
            with Session(self.engine) as session:
                backlog = pending_backlog(session)
        except Exception as exc:  # any driver's error: the scrape must still answer
            log.warning("metrics scrape could not read the database: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        pending = GaugeMetricFamily(
            "moderation_pending_comments", "Comments waiting for a decision."
        )
        pending.add_metric([], backlog.pending)
        yield pending
        oldest = GaugeMetricFamily(
            "moderation_oldest_pending_age_seconds",
            "How long the oldest pending comment has waited; 0 when none is pending.",
        )
        oldest.add_metric([], backlog.oldest_age())
        yield oldest


def _counter_family(spec: CounterSpec, stored: dict[bytes, bytes]) -> CounterMetricFamily:
    family = CounterMetricFamily(spec.name, spec.documentation, labels=list(spec.labels))
    values = {tuple(json.loads(field)): float(value) for field, value in stored.items()}
    if spec is DECISIONS:
        # Every outcome is always exposed, so rate() works from the first decision on.
        values = {(outcome,): 0.0 for outcome in OUTCOMES} | values
    for labels, value in sorted(values.items()):
        family.add_metric(list(labels), value)
    return family


def _histogram_family(spec: HistogramSpec, stored: dict[bytes, bytes]) -> HistogramMetricFamily:
    counts: defaultdict[tuple[str, ...], list[int]] = defaultdict(
        lambda: [0] * (len(spec.buckets) + 1)
    )
    sums: defaultdict[tuple[str, ...], float] = defaultdict(float)
    for field, value in stored.items():
        *labels, suffix = json.loads(field)
        if suffix == "sum":
            sums[tuple(labels)] += float(value)
        else:
            counts[tuple(labels)][int(suffix)] += int(value)
    if not spec.labels:
        counts[()]  # an unlabelled histogram is exposed from zero
    family = HistogramMetricFamily(spec.name, spec.documentation, labels=list(spec.labels))
    for labels, per_bucket in sorted(counts.items()):
        bounds = [_bound(bound) for bound in spec.buckets] + ["+Inf"]
        cumulative = [sum(per_bucket[: index + 1]) for index in range(len(per_bucket))]
        family.add_metric(list(labels), list(zip(bounds, cumulative, strict=True)), sums[labels])
    return family


def _bound(bound: float) -> str:
    return str(float(bound)) if not math.isinf(bound) else "+Inf"


def _heartbeat_families(beats: list[Heartbeat], settings: Settings) -> Iterator[Metric]:
    last = GaugeMetricFamily(
        "moderation_worker_last_heartbeat_timestamp_seconds",
        "Unix time of each worker's last heartbeat.",
        labels=["worker"],
    )
    active = GaugeMetricFamily(
        "moderation_worker_active_tasks",
        "Tasks a worker was running at its last heartbeat.",
        labels=["worker"],
    )
    processed = CounterMetricFamily(
        "moderation_worker_tasks_processed",
        "Tasks a worker has run since it started (resets when it restarts).",
        labels=["worker"],
    )
    scored = CounterMetricFamily(
        "moderation_worker_comments_scored",
        "Comments a worker's processes have scored since it started.",
        labels=["worker"],
    )
    model = InfoMetricFamily(
        "moderation_model", "The model a worker's processes score with.", labels=["worker"]
    )
    now = time.time()
    alive = GaugeMetricFamily(
        "moderation_workers_alive",
        "Workers whose last heartbeat is younger than MODERATION_WORKER_HEARTBEAT_MAX_AGE.",
    )
    alive.add_metric([], sum(beat.age(now) <= settings.worker_heartbeat_max_age for beat in beats))
    for beat in beats:
        last.add_metric([beat.worker], beat.at)
        active.add_metric([beat.worker], beat.active or 0)
        processed.add_metric([beat.worker], beat.processed or 0)
        scored.add_metric([beat.worker], beat.scored)
        if beat.model_name:
            model.add_metric(
                [beat.worker],
                {"model_name": beat.model_name, "model_version": beat.model_version or ""},
            )
    yield from (alive, last, active, processed, scored, model)
