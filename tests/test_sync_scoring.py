"""Scoring on request (the compatible APIs): fail fast without workers, time out without answers."""

from __future__ import annotations

import json
import time

import pytest

from moderation.ops.heartbeat import Heartbeats, any_alive
from moderation.ops.store import OpsStore
from moderation.tasks_client import ScoringUnavailable, TaskQueue, sync_queue
from tests.support import MODEL_PATH, settings_for_tests


@pytest.fixture
def queue_settings(tmp_path):
    # No database is touched: only the broker and the ops store.
    return settings_for_tests(f"sqlite:///{tmp_path / 'unused.sqlite3'}", MODEL_PATH)


@pytest.fixture
def store(queue_settings, broker):
    store = OpsStore.from_settings(queue_settings)
    yield store
    broker.delete(store.key("workers"))
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

    assert time.monotonic() - started < 0.5
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
