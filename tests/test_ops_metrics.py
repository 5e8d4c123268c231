"""/metrics after real flows through a real worker: counts and histograms move as they should."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from moderation.models import Comment, CommentScore, Status
from moderation.scoring.model_build import CHECKPOINT_FILE
from moderation.tasks_client import RESCORE_COMMENTS, SCORE_COMMENTS, explain_queue, sync_queue
from tests.conftest import ping_worker
from tests.ops_support import delta, parse_metrics, scrape, value
from tests.support import WorkerProcess, app_with, serving, settings_for_tests, wait_until

pytestmark = pytest.mark.e2e

CLEAN = [
    "Thank you for this thoughtful and well researched article.",
    "I think the council made the right call on the new bike lanes.",
    "Great reporting, I learned a lot about the housing market here.",
]
ABUSIVE = [
    "You are a complete idiot and nobody wants to hear from you.",
    "Shut up, you pathetic moron.",
]


def post(url: str, key: str, text: str, request_id: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    if request_id:
        headers["X-Request-ID"] = request_id
    response = requests.post(
        f"{url}/api/v1/comments",
        json={"article_id": "ops/metrics", "author_id": "reader", "author_name": "R", "text": text},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    if request_id:
        assert response.headers["X-Request-ID"] == request_id
    return response.json()["id"]


def undecided(sessions) -> int:
    with sessions() as session:
        return len(
            session.scalars(select(Comment.id).where(Comment.status == Status.PENDING)).all()
        )


def decisions(samples) -> float:
    return sum(
        value(samples, "moderation_decisions_total", outcome=outcome)
        for outcome in ("approved", "held", "rejected")
    )


def test_metrics_move_by_what_a_real_flow_did(
    warm_worker, live_server, site_key, sessions, settings
):
    # Warm: its model loaded and its warm-up batch scored before the first scrape.
    worker = warm_worker
    before = scrape(live_server.url)
    started = time.monotonic()
    ids = [post(live_server.url, site_key, text) for text in CLEAN + ABUSIVE[:1]]
    traced = post(live_server.url, site_key, ABUSIVE[1], request_id="ops-trace-1")
    ids.append(traced)
    assert wait_until(lambda: undecided(sessions) == 0, timeout=180), "comments left pending"
    # Counts are written right after the decisions' commit: give them a moment.
    assert wait_until(lambda: decisions(scrape(live_server.url)) - decisions(before) >= 5, 30)
    elapsed = time.monotonic() - started
    after = scrape(live_server.url)

    with sessions() as session:
        comments = session.scalars(select(Comment)).all()
        score = session.scalars(select(CommentScore)).first()
    assert len(comments) == 5
    outcomes = Counter(str(comment.status) for comment in comments)
    reasons = Counter(
        (str(comment.status), reason["code"], reason["label"] or "")
        for comment in comments
        for reason in comment.reasons
    )
    assert outcomes["held"] >= 1 and outcomes["approved"] >= 1

    assert delta(before, after, "moderation_comments_received_total", site="example-news") == 5
    for outcome in ("approved", "held", "rejected"):
        moved = delta(before, after, "moderation_decisions_total", outcome=outcome)
        assert moved == outcomes[outcome], outcome
    for (outcome, code, label), count in reasons.items():
        moved = delta(
            before,
            after,
            "moderation_decision_reasons_total",
            outcome=outcome,
            reason=code,
            label=label,
        )
        assert moved == count, (outcome, code, label)

    latency = "moderation_submit_to_decision_seconds"
    assert delta(before, after, f"{latency}_count") == 5
    assert delta(before, after, f"{latency}_bucket", le="+Inf") == 5
    assert 0 < delta(before, after, f"{latency}_sum") <= 5 * elapsed
    # Each comment went through exactly one forward pass, whatever the batching.
    passes = delta(before, after, "moderation_model_batch_size_count")
    assert delta(before, after, "moderation_model_batch_size_sum") == 5
    assert 1 <= passes <= 5
    assert delta(before, after, "moderation_model_forward_seconds_count") == passes
    assert delta(before, after, "moderation_model_forward_seconds_sum") > 0
    for task in (SCORE_COMMENTS, RESCORE_COMMENTS):
        assert delta(before, after, "moderation_task_failures_total", task=task) == 0

    assert value(after, "moderation_queue_length", queue=settings.task_queue) == 0
    assert value(after, "moderation_pending_comments") == 0
    assert value(after, "moderation_oldest_pending_age_seconds") == 0
    assert value(after, "moderation_broker_up") == 1
    assert value(after, "moderation_database_up") == 1
    assert value(after, "moderation_workers_alive") >= 1
    heartbeat = value(
        after, "moderation_worker_last_heartbeat_timestamp_seconds", worker=worker.name
    )
    assert time.time() - heartbeat < settings.worker_heartbeat_max_age
    model = {
        "worker": worker.name,
        "model_name": score.model_name,
        "model_version": score.model_version,
    }
    assert value(after, "moderation_model_info", **model) == 1
    scored = "moderation_worker_comments_scored_total"
    assert delta(before, after, scored, worker=worker.name) == 5

    # The comment can be followed from the HTTP request to its decision in the worker's log.
    decided = [
        line
        for line in worker.log_path.read_text().splitlines()
        if "comment decided" in line and f"comment_id={traced}" in line
    ]
    assert len(decided) == 1
    assert "request_id=ops-trace-1" in decided[0] and "task_id=" in decided[0]


def broken_at_scoring(model: Path, copy: Path) -> Path:
    """A copy of the model whose checkpoints are garbage: every file the worker checks at
    start is there, and loading the weights, on the first batch, fails."""
    for source in model.rglob("*"):
        target = copy / source.relative_to(model)
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif source.name == CHECKPOINT_FILE:
            target.write_bytes(b"not a checkpoint")
        else:
            target.symlink_to(source)
    assert any(copy.rglob(CHECKPOINT_FILE)), f"{model} has no {CHECKPOINT_FILE}"
    return copy


def test_a_model_failing_at_scoring_counts_failures_retries_and_a_held_decision(
    database_url, model_dir, site_key, sessions, tmp_path
):
    model = broken_at_scoring(model_dir, tmp_path / "broken-model")
    settings = settings_for_tests(database_url, model)
    process = WorkerProcess(settings, tmp_path / "worker.log")
    process.start(ping_worker(settings))
    try:
        with serving(settings) as server:
            before = scrape(server.url)
            post(server.url, site_key, CLEAN[0])
            assert wait_until(lambda: undecided(sessions) == 0, timeout=120)
            assert wait_until(lambda: decisions(scrape(server.url)) == decisions(before) + 1, 30)
            after = scrape(server.url)
    finally:
        process.stop()
    # One failed batch, then each retry failed too; every retry was counted as sent.
    assert delta(before, after, "moderation_task_failures_total", task=SCORE_COMMENTS) == 1
    retries_failed = delta(before, after, "moderation_task_failures_total", task=RESCORE_COMMENTS)
    assert retries_failed == settings.scoring_max_retries
    retries = delta(before, after, "moderation_task_retries_total", task=SCORE_COMMENTS)
    assert retries == settings.scoring_max_retries
    assert delta(before, after, "moderation_decisions_total", outcome="held") == 1
    assert (
        delta(
            before,
            after,
            "moderation_decision_reasons_total",
            outcome="held",
            reason="scoring_failed",
            label="",
        )
        == 1
    )
    assert delta(before, after, "moderation_model_forward_seconds_count") == 0


def test_each_queue_s_length_is_exposed(database_url, broker):
    with app_with(database_url, broker) as app:
        settings = app.extensions["moderation"].settings
        explain, sync = explain_queue(settings), sync_queue(settings)
        broker.rpush(explain, "waiting-1", "waiting-2")
        broker.rpush(sync, "waiting-3")
        try:
            samples = parse_metrics(app.test_client().get("/metrics").get_data(as_text=True))
        finally:
            broker.delete(explain, sync)

    assert value(samples, "moderation_queue_length", queue=settings.task_queue) == 0
    assert value(samples, "moderation_queue_length", queue=sync) == 1
    assert value(samples, "moderation_queue_length", queue=explain) == 2
