"""The checks behind the probes and `moderation status`: each one named, passed or not."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from sqlalchemy import text
from sqlalchemy.orm import Session

from moderation.ops.heartbeat import Heartbeats
from moderation.ops.store import OpsStore

# What the worker check says of a live worker that has not yet scored its warm-up batch.
LOADING_MODEL = "loading model"


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
    detail = f"{detail} (limit {max_age:g} s)"
    if fresh and not any(beat.ready for beat in fresh):
        # Alive, but a request someone waits for would wait for the model to load.
        return Check("workers", False, f"{LOADING_MODEL}: {detail}")
    return Check("workers", bool(fresh), detail)


def readiness_checks(session: Session, store: OpsStore) -> list[Check]:
    """The checks behind ``/readyz``: what this web process itself needs."""
    return [check_database(session), check_broker(store)]
