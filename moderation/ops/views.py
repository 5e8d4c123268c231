"""The ops page: health checks, workers, queue, backlog, recent decisions, model, 24-hour chart."""

from __future__ import annotations

import redis
from flask import Blueprint, render_template

from moderation.app_state import app_state, db_session
from moderation.ops.chart import decision_chart
from moderation.ops.metrics import MinuteCounts, decisions_by_minute
from moderation.ops.status import RECENT_MINUTES, database_facts, gather_status
from moderation.ops.web import ops_store
from moderation.security_headers import private_pages
from moderation.web.auth import admin_required, current_moderator

DAY_MINUTES = 24 * 60

ops = Blueprint(
    "ops",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/ops/static",
)


@ops.get("/ops")
@admin_required
def dashboard():
    """What `moderation status` prints, for admins in the browser."""
    state, session = app_state(), db_session()
    database = database_facts(session)
    session.rollback()  # read-only; on SQLite this frees the write lock before the broadcast
    status = gather_status(state.settings, database, ops_store(), state.tasks.celery)
    return render_template(
        "ops/dashboard.html",
        status=status,
        chart=decision_chart(_last_day()),
        recent_minutes=RECENT_MINUTES,
        moderator=current_moderator(),
    )


def _last_day() -> list[MinuteCounts]:
    try:
        return decisions_by_minute(ops_store(), DAY_MINUTES)
    except redis.RedisError:
        return []


# The app-wide policy (security_headers) covers the chart: inline SVG, styles from a file.
private_pages(ops)
