"""Fixtures: each database backend, the built model, the app, a live server, a real worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

# The service runs as production unless told otherwise; the suite says what it is, and the
# processes and CLI commands it starts inherit that. Tests of the default unset it.
os.environ["MODERATION_ENV"] = "test"

from moderation import create_app
from moderation.db import make_engine, make_session_factory, unit_of_work
from moderation.migrate import upgrade_database
from moderation.ops.heartbeat import any_ready
from moderation.ops.store import OpsStore
from moderation.services.sites import create_site
from moderation.tasks_client import TaskQueue
from tests.support import (
    BROKER_URL,
    MODEL_PATH,
    LiveServer,
    WorkerProcess,
    postgres_database,
    settings_for_tests,
    wait_until,
    wipe,
)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The default combined model, built once and reused across runs."""
    if not (MODEL_PATH / "meta.json").exists():
        from moderation.scoring.default_model import build_default_model

        build_default_model(MODEL_PATH)
    return MODEL_PATH


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """A migrated, empty database of each backend; the suite runs once per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'moderation.sqlite3'}"
        upgrade_database(url)
        yield url
        return
    with postgres_database() as url:
        upgrade_database(url)
        yield url


@pytest.fixture(scope="session")
def broker() -> redis.Redis:
    """The shared Redis the tests use as broker (each run on its own queue)."""
    client = redis.Redis.from_url(BROKER_URL)
    client.ping()
    return client


@pytest.fixture(scope="session")
def settings(database_url):
    """Settings for this backend's run; the model is built only when a worker needs it."""
    return settings_for_tests(database_url, MODEL_PATH)


@pytest.fixture(scope="session")
def app(settings):
    """The Flask app on this backend."""
    app = create_app(settings)
    yield app
    app.extensions["moderation"].engine.dispose()


@pytest.fixture(scope="session")
def engine(database_url):
    """An engine for the tests' own reads and writes."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(app, engine, broker, settings):
    """A session factory on a clean database; rows and queued tasks are removed afterwards.

    Also wiped before: a test that wrote through an app of its own without this fixture
    must not leave rows for the next one.
    """
    wipe(engine)
    yield make_session_factory(engine)
    broker.delete(settings.task_queue)
    wipe(engine)


@pytest.fixture
def client(app, sessions):
    """Flask's test client on a clean database."""
    return app.test_client()


@pytest.fixture
def site_key(sessions) -> str:
    """A site's API key."""
    with unit_of_work(sessions) as session:
        return create_site(session, "example-news")[1]


@pytest.fixture
def auth(site_key) -> dict[str, str]:
    """The Authorization header of that site."""
    return {"Authorization": f"Bearer {site_key}"}


@pytest.fixture(scope="session")
def worker(settings, model_dir, tmp_path_factory) -> Iterator[WorkerProcess]:
    """A real Celery worker process on this backend's database and queue."""
    process = WorkerProcess(settings, tmp_path_factory.mktemp("worker") / "worker.log")
    yield process.start(ping_worker(settings))
    process.stop()


@pytest.fixture(scope="session")
def warm_worker(worker, settings) -> WorkerProcess:
    """The worker once its model has loaded, for tests that wait on it with a short timeout."""
    queue = TaskQueue(settings)
    try:
        queue.score_now(["warming up"], timeout=300)
    finally:
        queue.close()
    # The compatible APIs wait only for a worker that says it scored its warm-up batch.
    store = OpsStore.from_settings(settings)
    try:
        assert wait_until(lambda: any_ready(store, max_age=60), timeout=300)
    finally:
        store.client.close()
    return worker


@pytest.fixture
def live_server(app, sessions) -> Iterator[LiveServer]:
    """The app over real HTTP."""
    with LiveServer(app) as server:
        yield server


def ping_worker(settings):
    """A function that tells whether the named worker answers."""
    control = TaskQueue(settings).celery.control

    def _ping(name: str) -> bool:
        return bool(control.ping(destination=[name], timeout=0.5))

    return _ping


CHROMIUM = Path(os.environ.get("MODERATION_TEST_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (no browser download)."""
    if not CHROMIUM.exists():
        if os.environ.get("MODERATION_TEST_REQUIRE_BROWSER"):
            pytest.fail("/usr/bin/chromium is missing (apt-get install chromium)")
        pytest.skip(f"{BROWSER_SKIP} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser page; fails the test if the page runs into a script error."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"script errors on the page: {errors}"


BROWSER_SKIP = "browser tests need /usr/bin/chromium"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """A green run that skipped the browser tests says so loudly, and how to run them."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if BROWSER_SKIP in str(getattr(report, "longrepr", ""))
    ]
    if skipped:
        terminalreporter.write_sep(
            "!",
            f"{len(skipped)} browser tests did NOT run: Chromium is missing "
            "(apt-get install chromium, then run the tests again)",
            red=True,
            bold=True,
        )
