"""Start and stop the real service pieces for benchmarks: database, gunicorn, Celery workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from moderation.config import Settings, load_settings
from moderation.db import make_engine, make_session_factory, unit_of_work
from moderation.migrate import upgrade_database
from moderation.models import Comment, Status
from moderation.services.sites import create_site
from moderation.tasks_client import worker_queues

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/4")


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards."""
    name = f"moderation_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
        try:
            upgrade_database(url)
            yield url
        finally:
            dispose_engines()
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for one benchmark run on its own queue: a development run on a throwaway
    database, so no production secret is needed."""
    values = {
        "env": "development",
        "database_url": database_url,
        "broker_url": BROKER_URL,
        "task_queue": f"bench-{uuid.uuid4().hex[:8]}",
    }
    return load_settings(**(values | overrides))


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    """Process environment carrying these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODERATION_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"MODERATION_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    return env | extra


def new_site_key(settings: Settings) -> str:
    """Create a site and return its key."""
    engine = make_engine(settings.database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        key = create_site(session, f"bench-{uuid.uuid4().hex[:6]}")[1]
    engine.dispose()
    return key


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """Run a process for the duration of the block, then stop it."""
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def worker_command(settings: Settings, concurrency: int, app: str = "workers.app") -> list[str]:
    """A Celery worker consuming the settings' queue."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "--loglevel",
        "WARNING",
        "--concurrency",
        str(concurrency),
        "--queues",
        worker_queues(settings),
        "--hostname",
        f"bench-{uuid.uuid4().hex[:6]}@localhost",
        "--without-gossip",
        "--without-mingle",
    ]


def gunicorn_command(port: int, workers: int = 2) -> list[str]:
    """The API under gunicorn, as in production."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "moderation.wsgi:app",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]


def wait_for_http(url: str, timeout: float = 30) -> None:
    """Block until the URL answers."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


_engines: dict[str, Engine] = {}


def pending_count(settings: Settings) -> int:
    """Comments still waiting for a decision (one pooled engine per database)."""
    engine = _engines.get(settings.database_url)
    if engine is None:
        engine = _engines[settings.database_url] = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        count = session.scalar(
            select(func.count()).select_from(Comment).where(Comment.status == Status.PENDING)
        )
    return count or 0


def dispose_engines() -> None:
    """Close the pooled connections of ``pending_count``."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def queue_length(settings: Settings) -> int:
    """Messages waiting in the broker queue."""
    return redis.Redis.from_url(settings.broker_url).llen(settings.task_queue)
