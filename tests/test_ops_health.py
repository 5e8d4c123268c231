"""/readyz, /healthz/workers and `moderation status` tell the truth when a worker or the broker
goes away; readiness follows the web's own dependencies only."""

from __future__ import annotations

import os
import signal

import pytest
import requests

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


def workers_healthy(url: str) -> bool:
    response = requests.get(f"{url}/healthz/workers", timeout=30)
    assert set(response.json()["checks"]) == {"workers"}
    return response.status_code == 200


def assert_status(settings, healthy: bool, failing: str | None = None) -> str:
    result = run_status(settings)
    assert result.returncode == (0 if healthy else 1), result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("HEALTHY" if healthy else "UNHEALTHY"), result.stdout
    if failing is not None:
        rows = [line.split() for line in result.stdout.splitlines()]
        assert [failing, "FAIL"] in [row[:2] for row in rows], result.stdout
    return result.stdout


def test_a_stopped_or_hung_worker_fails_the_worker_check_but_not_readiness(
    database_url, sessions, tmp_path
):
    settings = settings_for_tests(
        database_url, MODEL_PATH, worker_heartbeat_max_age=HEARTBEAT_MAX_AGE
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    with serving(settings) as server:
        # No worker at all: the API still takes comments, so it stays ready.
        assert ready(server.url) and not workers_healthy(server.url)
        worker.start(ping_worker(settings))
        try:
            assert wait_until(lambda: workers_healthy(server.url), timeout=60)
            _code, body = readyz(server.url)
            assert body["status"] == "ok"
            assert set(body["checks"]) == {"database", "broker"}
            table = assert_status(settings, healthy=True)
            assert worker.name in table
            # The model the worker described at start, its thresholds and where they come from.
            assert "THRESHOLDS of combined-seed" in table and "out-of-fold" in table
            assert [line.split()[:1] for line in table.splitlines()].count(["toxicity"]) == 1

            # A hung worker sends no heartbeat and answers no ping: it ages out.
            os.kill(worker.process.pid, signal.SIGSTOP)
            try:
                assert wait_until(
                    lambda: not workers_healthy(server.url), timeout=HEARTBEAT_MAX_AGE + 60
                )
                assert ready(server.url)
                assert_status(settings, healthy=False, failing="workers")
            finally:
                os.kill(worker.process.pid, signal.SIGCONT)
            assert wait_until(lambda: workers_healthy(server.url), timeout=60)
            assert_status(settings, healthy=True)

            # A clean stop takes the worker off at once.
            worker.stop()
            assert wait_until(lambda: not workers_healthy(server.url), timeout=15)
            assert ready(server.url)
            assert_status(settings, healthy=False, failing="workers")

            worker.start(ping_worker(settings))
            assert wait_until(lambda: workers_healthy(server.url), timeout=60)
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
                assert wait_until(lambda: workers_healthy(server.url), timeout=60)
                assert ready(server.url)
                assert_status(settings, healthy=True)

                broker.stop()
                assert not ready(server.url)
                assert failed_checks(server.url) == {"broker"}
                assert not workers_healthy(server.url)
                table = assert_status(settings, healthy=False, failing="broker")
                assert ["database", "ok"] in [line.split()[:2] for line in table.splitlines()]

                broker.start()
                # The worker reconnects with back-off, then beats again.
                assert ready(server.url)
                assert wait_until(lambda: workers_healthy(server.url), timeout=120)
                assert_status(settings, healthy=True)
        finally:
            worker.stop()


def test_metrics_need_a_token_in_production(settings):
    from moderation import create_app

    production = settings.model_copy(
        update={"env": "production", "secret_key": "x" * 40, "metrics_token": None}
    )
    apps = [
        create_app(production),
        create_app(production.model_copy(update={"metrics_token": "t0ken"})),
    ]
    try:
        refused = apps[0].test_client().get("/metrics")
        guarded = apps[1].test_client()
        unauthorized = guarded.get("/metrics")
        scraped = guarded.get("/metrics", headers={"Authorization": "Bearer t0ken"})
    finally:
        for app in apps:  # the scrape opened database connections: close them now
            app.extensions["moderation"].tasks.close()
            app.extensions["moderation"].engine.dispose()
    assert refused.status_code == 403 and b"MODERATION_METRICS_TOKEN" in refused.data
    assert unauthorized.status_code == 401
    assert scraped.status_code == 200 and b"moderation_" in scraped.data
