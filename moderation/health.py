"""Liveness and readiness for load balancers, process managers and ops.

``/healthz`` says the process is up (liveness). ``/readyz`` says whether this web process can
take requests: its own dependencies, the database and Redis (rate limits, task messages),
answer (readiness). Workers are not among them: with every worker down the API still
accepts comments, which wait as pending, so a readiness probe must not take the API out of
service for it. ``/healthz/workers`` answers for the workers, for ops and alerting. Each
check is named in the body, and any failure answers 503.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.orm import Session

from moderation.app_state import app_state, db_session
from moderation.heartbeat import Heartbeats
from moderation.ops_store import OpsStore, ops_store

health = Blueprint("health", __name__)


@dataclass(frozen=True)
class Check:
    """One named check: passed or not, and what was seen."""

    name: str
    ok: bool
    detail: str


def timed(name: str, probe: Callable[[], str], errors: tuple[type[BaseException], ...]) -> Check:
    """Run a probe; its return value is the detail, an expected error a failed check."""
    started = time.perf_counter()
    try:
        detail = probe()
    except errors as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}"[:300])
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Check(name, True, f"{detail} in {elapsed_ms:.0f} ms")


def check_database(session: Session) -> Check:
    """The database answers a trivial query in this session."""

    def probe() -> str:
        session.execute(text("SELECT 1"))
        return "answered"

    # Any driver's connection error, whatever its class, means the check failed.
    return timed("database", probe, (Exception,))


def check_broker(store: OpsStore) -> Check:
    """The broker's Redis answers PING."""

    def probe() -> str:
        store.client.ping()
        return "answered"

    return timed("broker", probe, (redis.RedisError,))


def check_worker_heartbeats(store: OpsStore, max_age: float) -> Check:
    """At least one worker sent a heartbeat within ``max_age`` seconds."""
    try:
        beats = Heartbeats(store).all()
    except redis.RedisError as exc:
        return Check("workers", False, f"heartbeats unreadable: {type(exc).__name__}: {exc}")
    now = time.time()
    fresh = [beat for beat in beats if beat.age(now) <= max_age]
    if not beats:
        return Check("workers", False, "no worker heartbeat")
    newest = beats[0].age(now)
    detail = f"{len(fresh)} of {len(beats)} worker(s) fresh; newest heartbeat {newest:.1f} s ago"
    return Check("workers", bool(fresh), f"{detail} (limit {max_age:g} s)")


def readiness_checks(session: Session, store: OpsStore) -> list[Check]:
    """The checks behind ``/readyz``: what this web process itself needs."""
    return [check_database(session), check_broker(store)]


@health.get("/healthz")
def healthz():
    """The process is up; checks no dependency."""
    return jsonify(status="ok")


@health.get("/readyz")
def readyz():
    """Database and Redis answer; 503 naming the failed check otherwise."""
    return _answer(readiness_checks(db_session(), ops_store()))


@health.get("/healthz/workers")
def workers_health():
    """At least one worker sent a heartbeat recently; 503 otherwise (for alerting)."""
    max_age = app_state().settings.worker_heartbeat_max_age
    return _answer([check_worker_heartbeats(ops_store(), max_age)])


def _answer(checks: list[Check]):
    ok = all(check.ok for check in checks)
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    return jsonify(body), 200 if ok else 503
