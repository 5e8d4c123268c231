"""/readyz and `moderation status` tell the truth when the worker or the broker goes away."""

from __future__ import annotations

import os
import signal

import pytest

from tests.conftest import MODEL_PATH, ping_worker
from tests.ops_support import own_redis, readyz, run_status
from tests.support import WorkerProcess, serving, settings_for_tests, wait_until

pytestmark = pytest.mark.e2e

# Short enough to see a silent worker age out within the test; Celery beats every 2 s.
HEARTBEAT_MAX_AGE = 8.0


def ready(url: str) -> bool:
    return readyz(url)[0] == 200


def failed_checks(url: str) -> set[str]:
    _code, body = readyz(url)
    return {name for name, check in body["checks"].items() if not check["ok"]}


def assert_status(settings, healthy: bool, failing: str | None = None) -> str:
    result = run_status(settings)
    assert result.returncode == (0 if healthy else 1), result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("HEALTHY" if healthy else "UNHEALTHY"), result.stdout
    if failing is not None:
        rows = [line.split() for line in result.stdout.splitlines()]
        assert [failing, "FAIL"] in [row[:2] for row in rows], result.stdout
    return result.stdout


def test_a_stopped_or_hung_worker_makes_the_service_unready(database_url, sessions, tmp_path):
    settings = settings_for_tests(
        database_url, MODEL_PATH, worker_heartbeat_max_age=HEARTBEAT_MAX_AGE
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    with serving(settings) as server:
        assert failed_checks(server.url) == {"workers"}
        worker.start(ping_worker(settings))
        try:
            assert wait_until(lambda: ready(server.url), timeout=60)
            _code, body = readyz(server.url)
            assert body["status"] == "ok"
            assert set(body["checks"]) == {"database", "broker", "workers"}
            table = assert_status(settings, healthy=True)
            assert worker.name in table

            # A hung worker sends no heartbeat and answers no ping: it ages out.
            os.kill(worker.process.pid, signal.SIGSTOP)
            try:
                assert wait_until(lambda: not ready(server.url), timeout=HEARTBEAT_MAX_AGE + 60)
                assert failed_checks(server.url) == {"workers"}
                assert_status(settings, healthy=False, failing="workers")
            finally:
                os.kill(worker.process.pid, signal.SIGCONT)
            assert wait_until(lambda: ready(server.url), timeout=60)
            assert_status(settings, healthy=True)

            # A clean stop takes the worker off at once.
            worker.stop()
            assert wait_until(lambda: not ready(server.url), timeout=15)
            assert failed_checks(server.url) == {"workers"}
            assert_status(settings, healthy=False, failing="workers")

            worker.start(ping_worker(settings))
            assert wait_until(lambda: ready(server.url), timeout=60)
            assert_status(settings, healthy=True)
        finally:
            worker.stop()


def test_an_unreachable_broker_makes_the_service_unready(database_url, sessions, tmp_path):
    with own_redis() as broker:
        settings = settings_for_tests(
            database_url,
            MODEL_PATH,
            broker_url=broker.url,
            worker_heartbeat_max_age=HEARTBEAT_MAX_AGE,
        )
        worker = WorkerProcess(settings, tmp_path / "worker.log")
        worker.start(ping_worker(settings))
        try:
            with serving(settings) as server:
                assert wait_until(lambda: ready(server.url), timeout=60)
                assert_status(settings, healthy=True)

                broker.stop()
                assert not ready(server.url)
                assert failed_checks(server.url) == {"broker", "workers"}
                table = assert_status(settings, healthy=False, failing="broker")
                assert ["database", "ok"] in [line.split()[:2] for line in table.splitlines()]

                broker.start()
                # The worker reconnects with back-off, then beats again.
                assert wait_until(lambda: ready(server.url), timeout=120)
                assert_status(settings, healthy=True)
        finally:
            worker.stop()
