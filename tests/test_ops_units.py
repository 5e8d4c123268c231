"""The ops pieces on real Redis and a real database, without a worker: the metrics store and
its exposition, counting only what was committed, request ids and JSON logs, the chart, and
`moderation status --json`."""

from __future__ import annotations

import io
import json
import logging
import uuid
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from moderation import create_app
from moderation.cli import main
from moderation.db import utcnow
from moderation.logging_setup import configure_logging
from moderation.models import Status
from moderation.ops import metrics
from moderation.ops.chart import decision_chart
from moderation.ops.metrics import (
    SUBMIT_TO_DECISION,
    MinuteCounts,
    Samples,
    observe_decisions,
    record_webhook_delivery,
)
from moderation.ops.web import STORE_KEY as EXTENSION_KEY
from moderation.policy import Decision, Reason
from tests.ops_support import delta, ops_environment, parse_metrics, value


@pytest.fixture
def store(app):
    """The app's ops store; other tests of the session count into it too, so compare deltas."""
    return app.extensions[EXTENSION_KEY]


@pytest.fixture
def process_recorder(store, monkeypatch):
    """What a worker process has: a recorder outside any Flask app."""
    monkeypatch.setattr(metrics, "_process_recorder", metrics.MetricsRecorder(store))


def scraped(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return parse_metrics(response.text)


def test_histogram_buckets_are_cumulative_and_sum_every_observation(client, store):
    before = scraped(client)
    samples = Samples()
    for seconds in (0.03, 0.05, 0.2, 7, 5000):
        samples.observe(SUBMIT_TO_DECISION, seconds)
    assert metrics.MetricsRecorder(store).record(samples)
    after = scraped(client)
    name = "moderation_submit_to_decision_seconds"
    expected = {"0.05": 2, "0.1": 2, "0.25": 3, "5.0": 3, "10.0": 4, "3600.0": 4, "+Inf": 5}
    for bound, count in expected.items():
        assert delta(before, after, f"{name}_bucket", le=bound) == count, bound
    assert delta(before, after, f"{name}_count") == 5
    assert delta(before, after, f"{name}_sum") == pytest.approx(5007.28)


def test_webhook_deliveries_are_counted_from_a_worker_process(client, process_recorder):
    before = scraped(client)
    record_webhook_delivery("delivered")
    record_webhook_delivery("delivered")
    record_webhook_delivery("failed")
    after = scraped(client)
    assert delta(before, after, "moderation_webhook_deliveries_total", status="delivered") == 2
    assert delta(before, after, "moderation_webhook_deliveries_total", status="failed") == 1


def test_decisions_count_only_once_committed(client, sessions, process_recorder):
    comment = SimpleNamespace(
        id=1, public_id="cmt_test", created_at=utcnow(), site_id=1, article=None
    )
    held = Decision(Status.HELD, (Reason("hold_threshold", "insult", 0.9, 0.5),))
    before = scraped(client)
    with sessions() as session:
        session.execute(text("SELECT 1"))
        observe_decisions(session, [(comment, held)])
        session.rollback()
        session.execute(text("SELECT 1"))
        session.commit()
    assert delta(before, scraped(client), "moderation_decisions_total", outcome="held") == 0
    with sessions() as session:
        session.execute(text("SELECT 1"))
        observe_decisions(session, [(comment, held)])
        session.commit()
    after = scraped(client)
    assert delta(before, after, "moderation_decisions_total", outcome="held") == 1
    assert delta(before, after, "moderation_decisions_total", outcome="approved") == 0
    reason = {"outcome": "held", "reason": "hold_threshold", "label": "insult"}
    assert delta(before, after, "moderation_decision_reasons_total", **reason) == 1
    assert delta(before, after, "moderation_submit_to_decision_seconds_count") == 1


def test_metrics_answer_without_redis_and_say_so(settings, sessions):
    app = create_app(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    try:
        found = scraped(app.test_client())
    finally:
        app.extensions["moderation"].engine.dispose()
    assert value(found, "moderation_broker_up") == 0
    assert value(found, "moderation_database_up") == 1
    assert value(found, "moderation_pending_comments") == 0


def test_metrics_want_the_token_when_one_is_set(settings, sessions):
    app = create_app(settings.model_copy(update={"metrics_token": "scrape-secret"}))
    try:
        client = app.test_client()
        assert client.get("/metrics").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.get("/metrics", headers=wrong).status_code == 401
        right = {"Authorization": "Bearer scrape-secret"}
        assert client.get("/metrics", headers=right).status_code == 200
    finally:
        app.extensions["moderation"].engine.dispose()


@pytest.fixture
def json_log(settings):
    """Everything logged during the test, as JSON lines in production format."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging(settings.model_copy(update={"log_format": "json"}), force=True, stream=stream)
    ours = root.handlers[-1]
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(ours)
    root.setLevel(level)


def test_a_comment_is_followed_by_request_id_in_json_logs(client, auth, json_log):
    body = {"article_id": "a-1", "author_id": "r-1", "author_name": "R", "text": "Nice piece."}
    headers = auth | {"X-Request-ID": "edge-4f0c2a"}
    response = client.post("/api/v1/comments", json=body, headers=headers)
    assert response.status_code == 202
    assert response.headers["X-Request-ID"] == "edge-4f0c2a"
    comment_id = response.get_json()["id"]
    lines = json_log()
    accepted = [line for line in lines if line["message"] == "comment accepted"]
    assert accepted == [
        {
            "time": accepted[0]["time"],
            "level": "INFO",
            "logger": "moderation.comments",
            "message": "comment accepted",
            "comment_id": comment_id,
            "site": "example-news",
            "request_id": "edge-4f0c2a",
        }
    ]
    access = [line for line in lines if line["logger"] == "moderation.http"]
    assert access[-1]["message"] == "POST /api/v1/comments 202"
    assert access[-1]["request_id"] == "edge-4f0c2a" and access[-1]["status"] == 202


def test_an_unsafe_request_id_is_replaced(client):
    for offered in ("has spaces and <html>", "x" * 200, ""):
        response = client.get("/healthz", headers={"X-Request-ID": offered})
        assigned = response.headers["X-Request-ID"]
        assert assigned != offered and len(assigned) == 32


def test_the_chart_draws_one_point_a_minute_and_breaks_the_hold_line_where_nothing_happened():
    start = 29_000_000  # a whole number of minutes; some minutes fall on 3-hourly ticks
    minutes = [MinuteCounts(start + i, {}) for i in range(24 * 60)]
    minutes[10] = MinuteCounts(start + 10, {"approved": 3, "held": 1})
    minutes[700] = MinuteCounts(start + 700, {"held": 8})
    chart = decision_chart(minutes)
    assert chart.total == 12 and chart.held == 9 and chart.peak == 8
    assert chart.hold_rate == pytest.approx(0.75)
    assert chart.decisions_area.startswith("M") and chart.decisions_area.endswith("Z")
    assert chart.decisions_area.count(" L") == 24 * 60 + 1
    # Two quarter hours had decisions, far apart: two separate pieces of line.
    assert chart.hold_rate_line.count("M") == 2 and chart.hold_rate_line.count("L") == 2
    assert [tick.label for tick in chart.decision_ticks] == ["0", "10"]
    assert len(chart.time_ticks) == 8 and all(t.label.endswith(":00") for t in chart.time_ticks)


def test_status_json_names_every_check_and_exits_1_without_workers(settings, sessions):
    # A queue of its own: the session's worker, if started, consumes the shared one.
    env = ops_environment(settings.model_copy(update={"task_queue": f"ops-{uuid.uuid4().hex}"}))
    result = CliRunner().invoke(main, ["status", "--json"], env=env)
    assert result.exit_code == 1, result.output
    body = json.loads(result.output)
    assert body["healthy"] is False
    checks = {check["name"]: check["ok"] for check in body["checks"]}
    assert checks == {"database": True, "broker": True, "workers": False, "backlog": True}
    assert body["workers"] == [] and body["queue_length"] == 0
    assert body["backlog"] == {"pending": 0, "oldest_age_seconds": 0.0}
