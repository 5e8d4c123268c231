"""Pooled PostgreSQL connections: one idle a while is checked before use, one used moments
ago is not (a round trip saved per request)."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from moderation import db
from moderation.db import make_engine
from tests.support import wait_until


@pytest.fixture
def postgres_engine(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite opens a file: no server can close its connections")
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def counted_pings(engine, monkeypatch) -> list[object]:
    pings: list[object] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection):
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def test_a_connection_the_server_closed_is_replaced_before_use(postgres_engine, monkeypatch):
    old = backend_pid(postgres_engine)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # every checkout is "idle"
    admin_url = postgres_engine.url.render_as_string(hide_password=False)
    with psycopg.connect(
        admin_url.replace("postgresql+psycopg", "postgresql"), autocommit=True
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (old,))
        gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
        assert wait_until(lambda: admin.execute(gone, (old,)).fetchone()[0] == 0, timeout=10)
    new = backend_pid(postgres_engine)  # would raise OperationalError on the closed one
    assert new != old


def test_a_connection_used_moments_ago_is_not_pinged(postgres_engine, monkeypatch):
    backend_pid(postgres_engine)  # a new connection: just opened, not pinged
    pings = counted_pings(postgres_engine, monkeypatch)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    for _ in range(3):
        backend_pid(postgres_engine)
    assert pings == []
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    backend_pid(postgres_engine)
    assert len(pings) == 1
