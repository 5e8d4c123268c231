"""The ``Retry-After`` and ``X-RateLimit-*`` a client is told, with Flask-Limiter's header
hook in the chain, and what a limited request costs in Redis."""

from __future__ import annotations

import time
import uuid

import pytest
import redis.connection
from flask import Flask

from moderation.config import load_settings
from moderation.limits import init_limiter, limiter
from tests.support import BROKER_URL


@pytest.fixture
def client():
    app = Flask(__name__)
    settings = load_settings(
        env="test",
        broker_url=BROKER_URL,
        ratelimit_storage_url=BROKER_URL,
        task_queue=f"test-{uuid.uuid4().hex[:12]}",
    )

    @app.get("/busy")
    @limiter.limit("100/minute")
    def busy():
        return {"error": "busy"}, 503, {"Retry-After": "7"}

    @app.get("/fine")
    @limiter.limit("100/minute")
    def fine():
        return {"ok": True}

    @app.get("/scarce")
    @limiter.limit("1/minute")
    def scarce():
        return {"ok": True}

    @app.get("/two-windows")
    @limiter.limit("3/minute;100/hour")
    def two_windows():
        return {"ok": True}

    @app.get("/roomy")
    @limiter.limit("100/minute;1000/hour")
    def roomy():
        return {"ok": True}

    init_limiter(app, settings)
    return app.test_client()


def test_the_service_s_own_retry_advice_reaches_the_client(client):
    # The limiter's hook recomputes the header from its window and truncates: 7 became 6.
    for _ in range(3):
        assert client.get("/busy").headers["Retry-After"] == "7"


def test_a_limiter_429_says_whole_seconds_to_wait_never_zero(client):
    assert client.get("/scarce").status_code == 200
    refused = client.get("/scarce")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 61


def test_an_answer_that_asks_no_wait_carries_no_retry_after(client):
    response = client.get("/fine")
    assert response.status_code == 200
    assert "Retry-After" not in response.headers
    assert response.headers["X-RateLimit-Limit"] == "100"


def test_the_headers_count_down_the_tighter_window_and_the_429_keeps_them(client):
    remaining = []
    for _ in range(3):
        answer = client.get("/two-windows")
        assert answer.status_code == 200
        assert answer.headers["X-RateLimit-Limit"] == "3"
        remaining.append(answer.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    refused = client.get("/two-windows")
    assert refused.status_code == 429
    assert (refused.headers["X-RateLimit-Limit"], refused.headers["X-RateLimit-Remaining"]) == (
        "3",
        "0",
    )
    assert time.time() < int(refused.headers["X-RateLimit-Reset"]) <= time.time() + 61


def test_a_limit_and_its_headers_cost_one_redis_round_trip(client, monkeypatch):
    # The connection is open, the scripts are loaded.
    before = int(client.get("/fine").headers["X-RateLimit-Remaining"])
    sends = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(connection, command, check_health=True):
        sends.append(command)
        return send(connection, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    answer = client.get("/fine")
    assert answer.status_code == 200
    assert int(answer.headers["X-RateLimit-Remaining"]) == before - 1
    assert len(sends) == 1


def test_figures_read_with_a_hit_do_not_outlive_their_request(client):
    from flask import g

    # Tests and scripts can run requests inside one application context, which keeps ``g``.
    with client.application.app_context():
        assert client.get("/roomy").status_code == 200
        assert "ratelimit_read_with_hit" not in g


def test_a_redis_that_forgot_one_script_counts_the_hit_once(client):
    storage = limiter.limiter.storage
    connection = storage.get_connection()
    before = int(client.get("/fine").headers["X-RateLimit-Remaining"])
    # As after a restart of Redis that only the acquiring script was loaded into again.
    connection.script_flush()
    connection.script_load(storage.lua_acquire_moving_window.script)
    answer = client.get("/fine")
    assert answer.status_code == 200
    assert int(answer.headers["X-RateLimit-Remaining"]) == before - 1
    assert int(client.get("/fine").headers["X-RateLimit-Remaining"]) == before - 2
