"""Helpers the tests share: databases, a live HTTP server, a real Celery worker process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis
from flask import Flask
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from werkzeug.serving import make_server

from moderation import create_app
from moderation.config import Settings, default_model_dir, load_settings
from moderation.db import Base, make_session_factory, unit_of_work
from moderation.models import Article, AuditEvent, Comment, CommentScore, Moderator, Site
from moderation.tasks_client import sync_queue, worker_queues

# The offline model the tests use; built from the seed set on first use (tests/conftest.py).
MODEL_PATH = Path(os.environ.get("MODERATION_TEST_MODEL", default_model_dir()))

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "MODERATION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BROKER_URL = os.environ.get("MODERATION_TEST_BROKER_URL", "redis://127.0.0.1:6379/3")
# Rate limits no test of what the API answers reaches, with counters of their own: made-up
# keys sent by one test do not turn away another's requests.
UNREACHED_LIMITS = {
    f"ratelimit_{name}": "100000/hour"
    for name in ("invalid_key", "public_ip", "public_author", "public_site", "public_read")
}


def settings_for_tests(database_url: str, model_dir: Path, **overrides: object) -> Settings:
    """Settings for one test run: its own database and its own queue on the shared Redis."""
    values: dict[str, object] = {
        "env": "test",
        "database_url": database_url,
        "broker_url": BROKER_URL,
        "task_queue": f"test-{uuid.uuid4().hex[:12]}",
        "model": str(model_dir),
        "scoring_retry_delay": 0.2,
        "scoring_max_retries": 2,
        # Flask-Limiter binds its storage once per process, so every test app shares one.
        "ratelimit_storage_url": BROKER_URL,
        # Many tests share one site name and address; the limit tests set their own.
        "ratelimit_sync": "1000/second",
        "ratelimit_author": "1000/second",
        # The compatible APIs' tests check what is answered, not how fast, on a machine the
        # whole suite shares; the tests of the timeout itself set their own.
        "sync_timeout": 10.0,
    }
    return load_settings(**(values | overrides))


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped afterwards."""
    name = f"moderation_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(POSTGRES_URL, autocommit=True)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES_URL.rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def wipe(engine: Engine) -> None:
    """Delete every row of every table, children first (the ORM deletes also clear the
    process's copies of sites and articles)."""
    with make_session_factory(engine)() as session:
        for model in (AuditEvent, CommentScore, Comment, Article, Site, Moderator):
            session.execute(delete(model))
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())
        session.commit()


class LiveServer:
    """The app served over real HTTP on a loopback port, in a thread."""

    def __init__(self, app):
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()


@contextmanager
def serving(settings: Settings) -> Iterator[LiveServer]:
    """A separate app with these settings, over HTTP; its connections closed afterwards."""
    app = create_app(settings)
    try:
        with LiveServer(app) as server:
            yield server
    finally:
        app.extensions["moderation"].engine.dispose()


@contextmanager
def app_with(database_url: str, broker: redis.Redis, **overrides: object) -> Iterator[Flask]:
    """An app on this backend with its own queues and rate-limit counters, cleaned up after."""
    settings = settings_for_tests(database_url, MODEL_PATH, **overrides)
    app = create_app(settings)
    try:
        yield app
    finally:
        broker.delete(settings.task_queue, sync_queue(settings))
        app.extensions["moderation"].tasks.close()
        app.extensions["moderation"].engine.dispose()


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment a worker process needs to serve these settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MODERATION_")}
    for name in (
        "env",
        "database_url",
        "broker_url",
        "task_queue",
        "model",
        "scoring_retry_delay",
        "scoring_max_retries",
        "scoring_batch_wait",
        "pending_resend_after",
        "sweep_interval",
        "visibility_timeout",
    ):
        env[f"MODERATION_{name.upper()}"] = str(getattr(settings, name))
    env["PYTHONPATH"] = str(ROOT)
    return env


class WorkerProcess:
    """A real ``celery worker`` process consuming the settings' queue."""

    def __init__(self, settings: Settings, log_path: Path, concurrency: int = 1):
        self.settings = settings
        self.log_path = log_path
        self.name = f"test-{uuid.uuid4().hex[:8]}@localhost"
        self.command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "worker",
            "--loglevel",
            "INFO",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--hostname",
            self.name,
            "--queues",
            worker_queues(settings),
            "--without-gossip",
            "--without-mingle",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ping: Callable[[str], bool], timeout: float = 60) -> WorkerProcess:
        """Start the process and wait until it answers a ping."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=worker_environment(self.settings),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited; see {self.log_path}")
            if ping(self.name):
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"worker did not answer within {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        """Warm shutdown, then kill if it does not finish."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll until the predicate holds or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A Redis server on its own loopback port that a test can stop and start again."""

    def __init__(self, workdir: Path | None = None):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or restart, empty: it keeps nothing on disk)."""
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not on PATH (apt-get install redis-server)"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *(["--dir", str(self.workdir)] if self.workdir else []),
            ],
            stdout=subprocess.DEVNULL,
        )
        assert wait_until(self.answers, timeout=10)

    def stop(self) -> None:
        """Kill the server, as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def answers(self) -> bool:
        """True when it answers PING."""
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False


WIDGET_ORIGIN = "https://news.example"


def make_site(sessions, name="example-news", origins=(WIDGET_ORIGIN,), **rules):
    """A site with its secret key, a publishable key for these origins, and these rules."""
    from types import SimpleNamespace

    from moderation.services.integration import (
        ensure_publishable_key,
        set_allowed_origins,
        update_rules,
    )
    from moderation.services.sites import create_site

    with unit_of_work(sessions) as session:
        site, key = create_site(session, name)
        publishable = ensure_publishable_key(session, site)
        set_allowed_origins(session, site, origins)
        if rules:
            update_rules(session, site, **rules)
    return SimpleNamespace(
        key=key, publishable=publishable, auth={"Authorization": f"Bearer {key}"}
    )


def post_readme_comment(api_url: str, auth: dict[str, str], timeout: float = 10) -> str:
    """POST the README's "Try it" comment with a fresh Idempotency-Key; returns its id (202)."""
    import uuid as _uuid

    import requests

    response = requests.post(
        f"{api_url}/api/v1/comments",
        json={
            "article_id": "budget-2026",
            "article_title": "The budget, explained",
            "author_id": "reader-17",
            "author_name": "Ann",
            "text": "Clear and fair, thank you.",
        },
        headers=auth | {"Idempotency-Key": _uuid.uuid4().hex},
        timeout=timeout,
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]
