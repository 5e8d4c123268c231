"""Database engine, sessions and the declarative base shared by every model."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every model; constraint names are stable across databases."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp, also on SQLite which stores no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        # PostgreSQL answers in its session's TimeZone, which need not be UTC.
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, tz-aware UTC."""
    return datetime.now(UTC)


def make_engine(url: str) -> Engine:
    """Build an engine; connects lazily, so building one runs no query."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    # The connect timeout turns an unreachable server into a prompt error, not a hung request.
    engine = create_engine(url, pool_size=5, max_overflow=10, connect_args={"connect_timeout": 3})
    ping_after_idle(engine)
    return engine


# A pooled connection idle this long is checked before use: a database restart, a failover
# or an idle timeout may have closed it. One back in the pool for less time was working
# moments ago and is not checked, which saves a round trip per request under load.
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "moderation.idle_since"


def ping_after_idle(engine: Engine) -> None:
    """Like ``pool_pre_ping``, but only for connections idle ``PING_AFTER_IDLE_SECONDS``.

    A connection that fails the check is replaced before the caller sees it (SQLAlchemy's
    pool retries a checkout that raises ``DisconnectionError``).
    """

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("the pooled connection is closed") from exc


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: object, _record: object) -> None:
        # WAL lets the API insert while a worker writes decisions; the API and the
        # workers are separate processes sharing one file.
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        # Take over transaction control from the sqlite3 module, whose implicit BEGIN
        # breaks SAVEPOINTs; see the SQLAlchemy pysqlite notes.
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]

    @event.listens_for(engine, "begin")
    def _begin(connection: object) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads and
        # then writes fails at once (not after busy_timeout) when another process wrote
        # in between, which is the normal case with an API and workers on one file.
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # type: ignore[attr-defined]

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit, and run ``after_commit`` work."""
    factory = sessionmaker(engine, expire_on_commit=False)
    event.listen(factory, "after_commit", _run_after_commit)
    event.listen(factory, "after_soft_rollback", _drop_after_rollback)
    return factory


_AFTER_COMMIT = "moderation.after_commit"
AfterCommit = Callable[[Session, list[Any]], None]


def after_commit(session: Session, key: str, run: AfterCommit, *items: Any) -> None:
    """Once this transaction commits, call ``run(session, items)`` with every item queued
    under ``key``; nothing runs if it rolls back.

    Work that must not happen for rows that are not on disk (sending tasks, counting
    decisions) waits here. One call per key and transaction, however many items.
    """
    pending = session.info.setdefault(_AFTER_COMMIT, {})
    pending.setdefault(key, (run, []))[1].extend(items)


def _run_after_commit(session: Session) -> None:
    for key, (run, items) in session.info.pop(_AFTER_COMMIT, {}).items():
        try:
            run(session, items)
        except Exception:  # committed already: the follow-up failing must not undo a request
            log.exception("after-commit work %r failed", key)


def _drop_after_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:
        session.info.pop(_AFTER_COMMIT, None)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session and one transaction: commit on success, roll back on error."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
