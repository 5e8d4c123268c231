"""What ops asks at 3 a.m., in one object: are workers alive, is the queue growing, are
decisions sane. ``moderation status`` prints it as tables; the ops page renders it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import redis
from celery import Celery
from sqlalchemy.orm import Session

from moderation.config import Settings
from moderation.db import utcnow
from moderation.ops.checks import LOADING_MODEL, Check, check_broker, check_database
from moderation.ops.heartbeat import Heartbeat, Heartbeats
from moderation.ops.metrics import decisions_by_minute
from moderation.ops.store import OpsStore, queue_length
from moderation.services.backlog import Backlog, pending_backlog

RECENT_MINUTES = 5


@dataclass(frozen=True)
class WorkerRow:
    """One worker as its heartbeat and Celery's inspect describe it."""

    name: str
    answered: bool
    heartbeat_age: float | None
    active: int | None = None
    reserved: int | None = None
    processed: int | None = None
    scored: int | None = None
    model: str | None = None
    ready: bool = False


@dataclass(frozen=True)
class DecisionWindow:
    """Automated decisions of the last few whole minutes (the current one included)."""

    minutes: int
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Every decision in the window."""
        return sum(self.counts.values())

    @property
    def hold_rate(self) -> float | None:
        """Share of the window's decisions that held the comment; None without decisions."""
        return self.counts.get("held", 0) / self.total if self.total else None


@dataclass
class OpsStatus:
    """Every fact the status command and the ops page show."""

    checked_at: datetime
    queue: str
    checks: list[Check] = field(default_factory=list)
    workers: list[WorkerRow] = field(default_factory=list)
    queue_length: int | None = None
    backlog: Backlog | None = None
    recent: DecisionWindow | None = None
    # The workers' model as one of them described it: thresholds, their source, quality.
    model_card: dict[str, Any] | None = None

    @property
    def healthy(self) -> bool:
        """True when every check passed."""
        return all(check.ok for check in self.checks)

    @property
    def models(self) -> list[str]:
        """The distinct models the answering workers have loaded."""
        return sorted({row.model for row in self.workers if row.model and row.answered})

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for ``moderation status --json``."""
        body = asdict(self)
        body["checked_at"] = self.checked_at.isoformat()
        body["healthy"] = self.healthy
        body["models"] = self.models
        if self.backlog is not None:
            body["backlog"] = {
                "pending": self.backlog.pending,
                "oldest_age_seconds": round(self.backlog.oldest_age(self.checked_at), 1),
            }
        if self.recent is not None:
            body["recent"] |= {"total": self.recent.total, "hold_rate": self.recent.hold_rate}
        return body


def database_facts(session: Session) -> tuple[Check, Backlog | None]:
    """The database check and the backlog, read in the caller's session.

    Read first and on their own so that the caller can end its transaction before the
    workers are asked (SQLite's write lock must not wait on a broadcast).
    """
    check = check_database(session)
    return check, pending_backlog(session) if check.ok else None


def gather_status(
    settings: Settings,
    database: tuple[Check, Backlog | None],
    store: OpsStore,
    celery: Celery,
    *,
    inspect_timeout: float = 1.0,
) -> OpsStatus:
    """Add what Redis and the workers say to ``database_facts``; an unreachable one fails."""
    status = OpsStatus(checked_at=utcnow(), queue=settings.task_queue)
    database_check, status.backlog = database
    broker = check_broker(store)
    status.checks += [database_check, broker]
    beats: list[Heartbeat] = []
    if broker.ok:
        beats, status.queue_length, status.recent = _from_redis(settings, store)
        status.model_card = Heartbeats(store).model_card()
        answers = _inspect(celery, settings.task_queue, inspect_timeout)
        status.workers = _worker_rows(beats, answers)
    status.checks.append(_workers_check(status.workers, settings.worker_heartbeat_max_age, broker))
    status.checks.append(
        _backlog_check(status.backlog, settings.max_pending_age, status.checked_at)
    )
    return status


def _from_redis(
    settings: Settings, store: OpsStore
) -> tuple[list[Heartbeat], int | None, DecisionWindow | None]:
    try:
        beats = Heartbeats(store).all()
        length = queue_length(store.client, settings.task_queue)
        minutes = decisions_by_minute(store, RECENT_MINUTES)
    except redis.RedisError:
        return [], None, None
    counts: dict[str, int] = {}
    for minute in minutes:
        for outcome, amount in minute.counts.items():
            counts[outcome] = counts.get(outcome, 0) + amount
    return beats, length, DecisionWindow(RECENT_MINUTES, counts)


def _inspect(celery: Celery, queue: str, timeout: float) -> dict[str, dict[str, int]]:
    """Find the workers consuming our queue, then ping them and ask for tasks and totals.

    A broadcast reaches every worker on the Redis, including other deployments' (each keeps
    to its own queue), so only the consumers of this deployment's queue are asked further.
    """
    try:
        consumers = celery.control.inspect(timeout=timeout).active_queues() or {}
        names = sorted(
            name
            for name, queues in consumers.items()
            if any(entry.get("name") == queue for entry in queues or [])
        )
        if not names:
            return {}
        targeted = celery.control.inspect(destination=names, timeout=timeout, limit=len(names))
        pongs = targeted.ping() or {}
        active = targeted.active() or {}
        reserved = targeted.reserved() or {}
        stats = targeted.stats() or {}
    except Exception:  # a broker that fails mid-way: report no answers rather than crash
        return {}
    return {
        name: {
            "active": len(active.get(name) or []),
            "reserved": len(reserved.get(name) or []),
            "processed": sum((stats.get(name) or {}).get("total", {}).values()),
        }
        for name in names
        if name in pongs
    }


def _worker_rows(beats: Sequence[Heartbeat], answers: dict[str, dict[str, int]]) -> list[WorkerRow]:
    now = time.time()
    by_name = {beat.worker: beat for beat in beats}
    rows = []
    for name in sorted(set(by_name) | set(answers)):
        beat, answer = by_name.get(name), answers.get(name)
        rows.append(
            WorkerRow(
                name=name,
                answered=answer is not None,
                heartbeat_age=beat.age(now) if beat else None,
                active=answer["active"] if answer else None,
                reserved=answer["reserved"] if answer else None,
                processed=answer["processed"] if answer else (beat.processed if beat else None),
                scored=beat.scored if beat else None,
                model=beat.model if beat else None,
                ready=beat.ready if beat else False,
            )
        )
    return rows


def _workers_check(rows: list[WorkerRow], max_age: float, broker: Check) -> Check:
    if not broker.ok:
        return Check("workers", False, "not checked: the broker does not answer")
    alive = [
        row
        for row in rows
        if row.answered and row.heartbeat_age is not None and row.heartbeat_age <= max_age
    ]
    detail = f"{len(alive)} of {len(rows)} worker(s) answered ping with a heartbeat"
    detail = f"{detail} younger than {max_age:g} s"
    if alive and not any(row.ready for row in alive):
        return Check("workers", False, f"{LOADING_MODEL}: {detail}")
    return Check("workers", bool(alive), detail)


def _backlog_check(backlog: Backlog | None, max_age: float, now: datetime) -> Check:
    if backlog is None:
        return Check("backlog", False, "not checked: the database does not answer")
    age = backlog.oldest_age(now)
    detail = f"{backlog.pending} pending, the oldest for {age:.0f} s (limit {max_age:g} s)"
    return Check("backlog", age <= max_age, detail)


# ---- the terminal table --------------------------------------------------------------------


def render_table(status: OpsStatus) -> str:
    """The status as plain-text tables, ending with HEALTHY or UNHEALTHY."""
    when = status.checked_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    sections = [
        [f"moderation status at {when}, queue {status.queue!r}"],
        _table(
            ("CHECK", "STATE", "DETAIL"),
            [(c.name, "ok" if c.ok else "FAIL", c.detail) for c in status.checks],
        ),
        _table(
            ("WORKER", "PING", "HEARTBEAT", "ACTIVE", "RESERVED", "PROCESSED", "SCORED", "MODEL"),
            [_worker_cells(row) for row in status.workers] or [("(none)",) + ("",) * 7],
        ),
        _table(
            ("QUEUE", "WAITING", "PENDING", "OLDEST PENDING"),
            [(status.queue, *_backlog_cells(status))],
        ),
        _table(
            (
                f"LAST {RECENT_MINUTES} MIN",
                "DECISIONS",
                "APPROVED",
                "HELD",
                "REJECTED",
                "HOLD RATE",
            ),
            [_recent_cells(status.recent)],
        ),
        _thresholds_section(status.model_card),
        ["HEALTHY" if status.healthy else "UNHEALTHY"],
    ]
    lines = [line for section in sections for line in ["", *section]][1:]
    return "\n".join(lines)


def _thresholds_section(card: dict[str, Any] | None) -> list[str]:
    """The default hold thresholds of the workers' model and where they come from."""
    if not card:
        return ["THRESHOLDS  no worker has described its model yet"]
    thresholds = card.get("thresholds") or {}
    source = card.get("thresholds_source") or "built-in fallback: the model records none"
    rows = [(label, f"{value:.3f}") for label, value in thresholds.items()]
    lines = _table(("LABEL", "HOLD AT"), rows) if rows else []
    quality = card.get("quality") or {}
    return [
        f"THRESHOLDS of {card.get('name')} {card.get('version')} (sites may override): {source}",
        *lines,
        "recorded quality: "
        + (", ".join(f"{key} {value}" for key, value in quality.items()) or "none"),
    ]


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(value) for value in row] for row in (headers, *rows)]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def _worker_cells(row: WorkerRow) -> tuple[object, ...]:
    heartbeat = f"{row.heartbeat_age:.1f} s ago" if row.heartbeat_age is not None else "none"
    return (
        row.name,
        "ok" if row.answered else "no answer",
        heartbeat,
        _or_dash(row.active),
        _or_dash(row.reserved),
        _or_dash(row.processed),
        _or_dash(row.scored),
        (row.model or "-") if row.ready else LOADING_MODEL,
    )


def _backlog_cells(status: OpsStatus) -> tuple[object, ...]:
    backlog = status.backlog
    oldest = "-"
    if backlog is not None and backlog.oldest_at is not None:
        oldest = f"{backlog.oldest_age(status.checked_at):.0f} s"
    return (_or_dash(status.queue_length), _or_dash(backlog.pending if backlog else None), oldest)


def _recent_cells(recent: DecisionWindow | None) -> tuple[object, ...]:
    if recent is None:
        return ("", "-", "-", "-", "-", "-")
    rate = f"{recent.hold_rate:.1%}" if recent.hold_rate is not None else "-"
    counts = [recent.counts.get(outcome, 0) for outcome in ("approved", "held", "rejected")]
    return ("", recent.total, *counts, rate)


def _or_dash(value: object) -> object:
    return "-" if value is None else value
