"""Liveness and readiness for load balancers, process managers and ops.

``/healthz`` says the process is up (liveness). ``/readyz`` says whether this web process can
take requests: its own dependencies, the database and Redis (rate limits, task messages),
answer (readiness). Workers are not among them: with every worker down the API still
accepts comments, which wait as pending, so a readiness probe must not take the API out of
service for it. ``/healthz/workers`` answers for the workers, for ops and alerting. Each
check is named in the body, and any failure answers 503.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from moderation.app_state import app_state, db_session
from moderation.ops.checks import Check, check_worker_heartbeats, readiness_checks
from moderation.ops.web import ops_store

health = Blueprint("health", __name__)


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
