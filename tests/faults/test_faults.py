"""Fault tests: a 202 is a promise, kept through dead workers, a dead broker and a lost database.

Each test owns the processes it breaks (a private Redis, its own workers and beat, a proxy in
front of PostgreSQL), so the shared services are never disturbed.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from moderation.models import AuditEvent, Comment, CommentScore, Status
from moderation.policy import LABELS
from moderation.tasks_client import TaskQueue
from tests.faults.conftest import beat_args, report, worker_args
from tests.faults.proxy import CuttableProxy
from tests.support import serving, settings_for_tests, wait_until

pytestmark = pytest.mark.faults

TEXTS = [
    "Thanks for the clear explanation.",
    "You are a pathetic idiot.",
    "I disagree with the council's plan, but it is well argued.",
]


def body(i: int) -> dict:
    return {
        "article_id": "faults",
        "author_id": f"reader-{i}",
        "author_name": "Reader",
        "text": f"{TEXTS[i % len(TEXTS)]} ({i})",
    }


def counts(sessions) -> dict[str, int]:
    with sessions() as session:
        by_status = dict(
            session.execute(select(Comment.status, func.count()).group_by(Comment.status)).all()
        )
        audits = session.scalar(select(func.count()).select_from(AuditEvent))
    return {
        "pending": by_status.get(Status.PENDING, 0),
        "all": sum(by_status.values()),
        "audit": audits,
    }


def assert_each_decided_once(sessions) -> None:
    """Every comment: decided, exactly one audit event, one score per label."""
    with sessions() as session:
        pending = session.scalar(
            select(func.count()).select_from(Comment).where(Comment.status == Status.PENDING)
        )
        audits = dict(
            session.execute(
                select(AuditEvent.comment_id, func.count()).group_by(AuditEvent.comment_id)
            ).all()
        )
        scores = dict(
            session.execute(
                select(CommentScore.comment_id, func.count()).group_by(CommentScore.comment_id)
            ).all()
        )
        ids = session.scalars(select(Comment.id)).all()
    assert pending == 0
    assert {audits.get(i, 0) for i in ids} == {1}, "a comment has no or several decisions"
    assert {scores.get(i, 0) for i in ids} == {len(LABELS)}


def test_a_worker_killed_mid_batch_loses_nothing_and_decides_nothing_twice(
    settings, model_dir, sessions, site_key, services, tmp_path
):
    fast = settings_for_tests(
        settings.database_url,
        model_dir,
        visibility_timeout=10,
        pending_resend_after=5,
        sweep_interval=2,
    )
    first = services(worker_args(fast, f"doomed-{uuid.uuid4().hex[:6]}@localhost"), fast, "w1")
    headers = {"Authorization": f"Bearer {site_key}"}
    with serving(fast) as server:
        for i in range(120):
            response = requests.post(
                f"{server.url}/api/v1/comments", json=body(i), headers=headers, timeout=10
            )
            assert response.status_code == 202
    assert wait_until(lambda: counts(sessions)["audit"] > 0, timeout=120)
    first.kill()
    decided_before_kill = counts(sessions)["audit"]
    services(worker_args(fast, f"second-{uuid.uuid4().hex[:6]}@localhost"), fast, "w2")
    services(beat_args(tmp_path), fast, "beat")
    assert wait_until(lambda: counts(sessions)["pending"] == 0, timeout=240)
    assert_each_decided_once(sessions)
    final = counts(sessions)
    report(
        "worker SIGKILL mid-batch",
        sent=120,
        accepted=final["all"],
        decided_before_kill=decided_before_kill,
        decided=final["all"] - final["pending"],
        lost=120 - final["all"],
        duplicate_decisions=final["audit"] - final["all"],
    )
    assert final["all"] == 120


def announced(log: Path) -> list[dict]:
    """What ``tests.faults.slow_worker`` announced, oldest first."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.endswith("}")]


def batches_scored(log: Path) -> list[dict]:
    """One ``{"pid", "texts"}`` per scoring call."""
    return [entry for entry in announced(log) if "texts" in entry]


def warm_processes(log: Path) -> set[int]:
    """The pool processes whose model has loaded."""
    return {entry["pid"] for entry in announced(log) if entry.get("warm")}


def statuses_of(sessions, texts: list[str]) -> list[Status]:
    """The statuses of the comments with these texts."""
    with sessions() as session:
        return list(session.scalars(select(Comment.status).where(Comment.text.in_(texts))))


def test_a_pool_process_killed_mid_batch_hands_the_batch_back_within_seconds(
    settings, model_dir, sessions, site_key, services, tmp_path
):
    # No beat, a sweeper that would wait a day and a visibility timeout of an hour: only the
    # worker itself can bring the batch of its dead pool process back.
    patient = settings_for_tests(
        settings.database_url, model_dir, pending_resend_after=86400, visibility_timeout=3600
    )
    headers = {"Authorization": f"Bearer {site_key}"}
    # Accepted while the broker is away, then sent as the sweeper sends them: the 40 ids in
    # one message, which the worker takes as one batch.
    unreachable = patient.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    with serving(unreachable) as server:
        for i in range(40):
            response = requests.post(
                f"{server.url}/api/v1/comments", json=body(i), headers=headers, timeout=10
            )
            assert response.status_code == 202
    with sessions() as session:
        ids = list(session.scalars(select(Comment.id).where(Comment.status == Status.PENDING)))
    queue = TaskQueue(patient)
    try:
        assert len(ids) == 40 and queue.send_for_scoring(ids)
    finally:
        queue.close()
    scoring_log = tmp_path / "scoring.jsonl"
    name = f"slow-{uuid.uuid4().hex[:6]}@localhost"
    worker = services(
        # Two processes, as on a two-core host; all 40 comments form one batch.
        worker_args(patient, name, concurrency=2),
        patient,
        "worker",
        app="tests.faults.slow_worker",
        env={
            "MODERATION_SCORING_BATCH_SIZE": "64",
            "MODERATION_SCORING_BATCH_WAIT": "1",
            "FAULTS_SCORING_DELAY": "300",
            "FAULTS_SCORING_LOG": str(scoring_log),
        },
    )
    # The first scoring call is announced, then held up: that batch is caught in flight. The
    # kill comes once both processes have loaded the model, as in a worker that has run a while.
    assert wait_until(
        lambda: batches_scored(scoring_log) and len(warm_processes(scoring_log)) == 2, 240
    ), "no batch in flight, or the model did not load"
    in_flight = batches_scored(scoring_log)[0]
    assert in_flight["pid"] != worker.process.pid, "scored in the main process"
    assert len(in_flight["texts"]) == 40
    assert set(statuses_of(sessions, in_flight["texts"])) == {Status.PENDING}
    os.kill(in_flight["pid"], signal.SIGKILL)
    killed = time.monotonic()

    def handed_back() -> bool:
        again = [set(entry["texts"]) for entry in batches_scored(scoring_log)[1:]]
        return set().union(*again) >= set(in_flight["texts"])

    # Handed back: its comments are being scored again, in another process; a process
    # started in place of the dead one loads the model before it can score them.
    assert wait_until(handed_back, timeout=30, interval=0.1), "the batch was not handed back"
    seconds_to_hand_back = time.monotonic() - killed
    assert wait_until(lambda: counts(sessions)["pending"] == 0, timeout=120, interval=0.1)
    seconds_to_decide = time.monotonic() - killed
    assert_each_decided_once(sessions)
    final = counts(sessions)
    report(
        "pool process SIGKILL mid-batch, no beat, no sweeper",
        batch=len(in_flight["texts"]),
        seconds_from_kill_to_scoring_again=round(seconds_to_hand_back, 1),
        seconds_from_kill_to_last_decision=round(seconds_to_decide, 1),
        decided=final["all"] - final["pending"],
        duplicate_decisions=final["audit"] - final["all"],
    )
    assert in_flight["pid"] not in {entry["pid"] for entry in batches_scored(scoring_log)[1:]}
    # The sweeper would have re-sent the batch after 150 s at its default timing, and Redis
    # after the visibility timeout (300 s by default); a model load on a busy two-core
    # machine takes up to 40 s.
    assert seconds_to_decide < 90


def test_redis_down_for_30_seconds_under_a_steady_stream(
    settings, model_dir, sessions, site_key, services, private_redis, tmp_path
):
    fast = settings_for_tests(
        settings.database_url,
        model_dir,
        broker_url=private_redis.url,
        pending_resend_after=5,
        sweep_interval=2,
    )
    services(worker_args(fast, f"steady-{uuid.uuid4().hex[:6]}@localhost"), fast, "worker")
    services(beat_args(tmp_path), fast, "beat")
    statuses: list[int] = []
    outage = threading.Timer(10, private_redis.stop)
    recovery = threading.Timer(40, private_redis.start)
    headers = {"Authorization": f"Bearer {site_key}"}
    with serving(fast) as server:
        outage.start()
        recovery.start()
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < 50:
            time.sleep(max(0.0, started + i / 4 - time.monotonic()))
            response = requests.post(
                f"{server.url}/api/v1/comments", json=body(i), headers=headers, timeout=10
            )
            statuses.append(response.status_code)
            i += 1
        recovery.join()
    assert wait_until(lambda: counts(sessions)["pending"] == 0, timeout=240)
    assert_each_decided_once(sessions)
    final = counts(sessions)
    report(
        "Redis stopped 30 s",
        sent=len(statuses),
        accepted=statuses.count(202),
        decided=final["all"] - final["pending"],
        lost=statuses.count(202) - final["all"],
    )
    assert set(statuses) == {202}
    assert final["all"] == len(statuses)


def test_database_unreachable_answers_503_writes_nothing_and_recovers(
    database_url, settings, model_dir, sessions, site_key
):
    if not database_url.startswith("postgresql"):
        pytest.skip("cutting the connection needs a database server")
    host_and_db = database_url.split("@", 1)[1]
    port = host_and_db.split(":", 1)[1].split("/", 1)[0]
    proxy = CuttableProxy("127.0.0.1", int(port))
    proxied_url = database_url.replace(f":{port}/", f":{proxy.port}/")
    proxied = settings_for_tests(proxied_url, model_dir)
    headers = {"Authorization": f"Bearer {site_key}"}
    outcomes: dict[str, list[int]] = {"before": [], "during": [], "after": []}
    try:
        with serving(proxied) as server:

            def post(phase: str, n: int) -> None:
                for i in range(n):
                    response = requests.post(
                        f"{server.url}/api/v1/comments",
                        json=body(len(outcomes[phase]) + i),
                        headers=headers,
                        timeout=15,
                    )
                    outcomes[phase].append(response.status_code)
                    if response.status_code == 503:
                        assert response.headers["Retry-After"].isdigit()
                        assert response.json()["error"]["code"] == "database_unavailable"

            post("before", 10)
            proxy.cut()
            post("during", 10)
            proxy.restore()
            post("after", 10)
    finally:
        proxy.close()
    report(
        "database unreachable",
        sent=30,
        accepted=outcomes["before"].count(202) + outcomes["after"].count(202),
        refused_503=outcomes["during"].count(503),
        stored=counts(sessions)["all"],
        lost=0,
    )
    assert outcomes["before"] == [202] * 10
    assert outcomes["during"] == [503] * 10
    assert outcomes["after"] == [202] * 10
    assert counts(sessions)["all"] == 20
