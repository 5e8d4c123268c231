"""A web process's metrics: gathered in the process, written in one round trip per interval."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from moderation.ops.metrics import COMMENTS_RECEIVED, GatheringRecorder, Samples
from moderation.ops.store import OpsStore
from tests.support import BROKER_URL, wait_until


@pytest.fixture
def store():
    client = redis.Redis.from_url(BROKER_URL)
    store = OpsStore(client, f"moderation-ops:test-{uuid.uuid4().hex[:12]}")
    yield store
    for key in client.scan_iter(f"{store.prefix}:*"):
        client.delete(key)
    client.close()


def received(store: OpsStore, site: str) -> int:
    value = store.client.hget(store.key("metric", COMMENTS_RECEIVED.name), f'["{site}"]')
    return int(value or 0)


def one_comment(site: str = "news") -> Samples:
    samples = Samples()
    samples.count(COMMENTS_RECEIVED, (site,))
    return samples


def test_many_requests_share_one_write(store, monkeypatch):
    writes = []
    write = store.write
    monkeypatch.setattr(store, "write", lambda fill: writes.append(fill) or write(fill))
    recorder = GatheringRecorder(store, interval=3600)
    for _ in range(50):
        recorder.record(one_comment())
    assert (writes, received(store, "news")) == ([], 0)
    assert recorder.flush()
    assert (len(writes), received(store, "news")) == (1, 50)
    assert recorder.flush()  # nothing left: no write
    assert len(writes) == 1


def test_gathered_counts_reach_redis_within_the_interval_unasked(store):
    recorder = GatheringRecorder(store, interval=0.2)
    for site in ("news", "news", "sport"):
        recorder.record(one_comment(site))
    assert wait_until(lambda: received(store, "news") == 2, timeout=10, interval=0.05)
    assert received(store, "sport") == 1


def test_a_scrape_sees_the_scraping_process_s_counts_at_once(client, site_key, monkeypatch):
    recorder = client.application.extensions["moderation.ops.recorder"]
    # The scrape must not rely on the background write.
    monkeypatch.setattr(recorder, "interval", 3600)
    auth = {"Authorization": f"Bearer {site_key}"}
    body = {"article_id": "a1", "author_id": "u1", "author_name": "U", "text": "Hello there"}
    before = _received_line(client.get("/metrics").get_data(as_text=True))
    assert client.post("/api/v1/comments", json=body, headers=auth).status_code == 202
    after = _received_line(client.get("/metrics").get_data(as_text=True))
    assert after == before + 1


def _received_line(exposition: str) -> float:
    for line in exposition.splitlines():
        if line.startswith('moderation_comments_received_total{site="example-news"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_forked_child_writes_its_own_counts_not_its_parent_s(store):
    recorder = GatheringRecorder(store, interval=3600)
    for _ in range(3):
        recorder.record(one_comment())
    pid = os.fork()
    if pid == 0:  # the child: a gunicorn worker forked from an app that recorded already
        try:
            scraped = recorder.flush()  # a scrape before its first request
            recorder.record(one_comment("child"))
            os._exit(0 if scraped and recorder.flush() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (received(store, "news"), received(store, "child")) == (0, 1)
    assert recorder.flush()
    assert (received(store, "news"), received(store, "child")) == (3, 1)
