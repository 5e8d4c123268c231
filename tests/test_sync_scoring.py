"""Scoring on request (the compatible APIs): fail fast without workers, time out without answers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from moderation.db import unit_of_work
from moderation.ops.checks import LOADING_MODEL, check_worker_heartbeats
from moderation.ops.heartbeat import Heartbeats, any_alive, any_ready
from moderation.ops.store import OpsStore
from moderation.services.sites import create_site
from moderation.tasks_client import ScoringUnavailable, TaskQueue, sync_queue
from tests.conftest import ping_worker
from tests.ops_support import run_status
from tests.support import (
    MODEL_PATH,
    WorkerProcess,
    serving,
    settings_for_tests,
    wait_until,
)


@pytest.fixture
def queue_settings(tmp_path):
    # No database is touched: only the broker and the ops store.
    return settings_for_tests(f"sqlite:///{tmp_path / 'unused.sqlite3'}", MODEL_PATH)


@pytest.fixture
def store(queue_settings, broker):
    store = OpsStore.from_settings(queue_settings)
    yield store
    broker.delete(store.key("workers"), store.key("ready"), store.key("models"))
    store.client.close()


def test_any_alive_follows_the_freshest_heartbeat(store):
    assert not any_alive(store, max_age=30)

    Heartbeats(store).beat("w1@host", active=0, processed=0)
    assert any_alive(store, max_age=30)

    stale = {"at": time.time() - 60, "pid": 1, "active": 0, "processed": 0}
    store.client.hset(store.key("workers"), "w1@host", json.dumps(stale))
    store.client.hset(store.key("workers"), "broken@host", b"not json")
    assert not any_alive(store, max_age=30)


def test_redis_that_does_not_answer_counts_as_alive_so_the_send_reports_it():
    import redis

    dead = OpsStore(redis.Redis(port=1, socket_connect_timeout=0.2), "moderation-ops:x")
    assert any_alive(dead, max_age=30)
    dead.client.close()


def test_without_a_live_worker_nothing_is_sent_and_the_answer_is_immediate(queue_settings, broker):
    queue = TaskQueue(queue_settings, workers_alive=lambda: False)
    started = time.monotonic()
    with pytest.raises(ScoringUnavailable, match="no worker is alive"):
        queue.score_now(["hello"], timeout=5)
    queue.close()

    # Long before the 5 s timeout: nothing was waited for.
    assert time.monotonic() - started < 2.5
    assert broker.llen(sync_queue(queue_settings)) == 0


def test_a_worker_that_never_answers_is_a_timeout_and_the_request_expires(queue_settings, broker):
    queue = TaskQueue(queue_settings, workers_alive=lambda: True)
    started = time.monotonic()
    with pytest.raises(ScoringUnavailable, match="no worker answered within 1s"):
        queue.score_now(["hello"], timeout=1)
    elapsed = time.monotonic() - started
    queue.close()

    # It waited out the deadline (no early give-up) and said so; how much longer is the load's.
    assert elapsed >= 1.0
    (raw,) = broker.lrange(sync_queue(queue_settings), 0, -1)
    message = json.loads(raw)
    assert message["headers"]["task"] == "moderation.score_texts"
    assert message["headers"]["expires"]  # a worker that comes late drops it
    # The texts travel in the body only; logs and task events carry a placeholder.
    assert message["headers"]["argsrepr"] == "[<1 text(s)>, False]"
    broker.delete(sync_queue(queue_settings))


# ---- ready means ready: a live worker is "loading model" until it scored a warm-up batch ----


def test_a_live_worker_is_loading_until_a_pool_process_scored_its_warm_up_batch(store):
    heartbeats = Heartbeats(store)
    heartbeats.beat("w1@host", active=0, processed=0)
    try:
        assert not any_ready(store, max_age=30)
        check = check_worker_heartbeats(store, max_age=30)
        assert not check.ok and check.detail.startswith(LOADING_MODEL)

        heartbeats.mark_ready("w1@host", name="default", version="3")
        assert any_ready(store, max_age=30)
        check = check_worker_heartbeats(store, max_age=30)
        assert check.ok and LOADING_MODEL not in check.detail
        (beat,) = heartbeats.all()
        assert beat.ready and beat.model == "default 3"

        # Restarted under the same name: loading again until it warms up.
        heartbeats.mark_loading("w1@host")
        assert not any_ready(store, max_age=30)
    finally:
        heartbeats.forget("w1@host")
    assert not store.client.hgetall(store.key("ready"))


def test_a_ready_worker_is_one_whose_heartbeat_is_fresh(store):
    heartbeats = Heartbeats(store)
    stale = {"at": time.time() - 60, "pid": 1, "active": 0, "processed": 0}
    store.client.hset(store.key("workers"), "old@host", json.dumps(stale))
    heartbeats.mark_ready("old@host", name="default", version="3")
    try:
        assert not any_ready(store, max_age=30)
    finally:
        heartbeats.forget("old@host")


def _model_that_cannot_load(tmp_path: Path) -> Path:
    """The default model with its transformer checkpoint replaced by bytes torch cannot read:
    the files the worker checks at start are there, the load itself fails."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    for entry in MODEL_PATH.iterdir():
        if entry.name != "minilm":
            (broken / entry.name).symlink_to(entry)
    (broken / "minilm").mkdir()
    for entry in (MODEL_PATH / "minilm").iterdir():
        if entry.name != "model.ckpt":
            (broken / "minilm" / entry.name).symlink_to(entry)
    (broken / "minilm" / "model.ckpt").write_bytes(b"not a checkpoint" * 64)
    return broken


@pytest.mark.e2e
def test_a_worker_whose_model_never_scores_stays_loading_and_sync_requests_fail_at_once(
    database_url, sessions, model_dir, tmp_path
):
    settings = settings_for_tests(
        database_url, _model_that_cannot_load(tmp_path), worker_heartbeat_max_age=30
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    with serving(settings) as server:
        worker.start(ping_worker(settings))
        try:
            log = tmp_path / "worker.log"
            assert wait_until(lambda: "warm-up batch" in log.read_text(), timeout=120)
            assert wait_until(lambda: _worker_check(server.url)[0] == 503, timeout=30)
            _code, detail = _worker_check(server.url)
            assert detail.startswith(LOADING_MODEL), detail
            status = run_status(settings)
            assert status.returncode == 1 and LOADING_MODEL in status.stdout, status.stdout

            with unit_of_work(sessions) as session:
                key = create_site(session, "loading-site")[1]
            started = time.monotonic()
            response = requests.post(
                f"{server.url}/v1alpha1/comments:analyze?key={key}",
                json={"comment": {"text": "hello"}, "requestedAttributes": {"TOXICITY": {}}},
                timeout=30,
            )
            # Refused at once instead of after MODERATION_SYNC_TIMEOUT (10 s in the tests).
            assert response.status_code == 503, response.text
            assert time.monotonic() - started < 5
        finally:
            worker.stop()


@pytest.mark.e2e
def test_a_ready_worker_answers_a_sync_request_in_well_under_a_second(warm_worker, settings, app):
    store = OpsStore.from_settings(settings)
    try:
        check = check_worker_heartbeats(store, settings.worker_heartbeat_max_age)
        assert check.ok, check.detail
        beat = next(beat for beat in Heartbeats(store).all() if beat.worker == warm_worker.name)
        assert beat.ready and beat.model
    finally:
        store.client.close()
    queue = TaskQueue(settings)
    try:
        answer = queue.score_now(["Thanks for the article."], timeout=5)
    finally:
        queue.close()
    assert set(answer.scores[0]) >= {"toxicity", "insult"}


def _worker_check(url: str) -> tuple[int, str]:
    response = requests.get(f"{url}/healthz/workers", timeout=30)
    return response.status_code, response.json()["checks"]["workers"]["detail"]
