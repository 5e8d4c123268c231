"""Fixtures for fault tests: processes the tests own and may stop, kill or cut off."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moderation.tasks_client import worker_queues
from tests.support import ROOT, PrivateRedis, worker_environment


@pytest.fixture
def private_redis(tmp_path):
    """A Redis only this test uses."""
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


class ServiceProcess:
    """A worker or beat process in its own process group, so a test can SIGKILL all of it."""

    def __init__(
        self,
        args: list[str],
        settings,
        log: Path,
        app: str = "workers.app",
        env: dict[str, str] | None = None,
    ):
        self.args, self.settings, self.log = args, settings, log
        self.app, self.env = app, env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", self.app, *self.args],
                env=worker_environment(self.settings) | self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL the process and its children at once."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Warm shutdown, then kill."""
        if not self.process or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def worker_args(settings, name: str, concurrency: int = 1) -> list[str]:
    """Arguments of a worker on the settings' queue."""
    return [
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        str(concurrency),
        "--hostname",
        name,
        "--queues",
        worker_queues(settings),
        "--without-gossip",
        "--without-mingle",
    ]


def beat_args(tmp_path: Path) -> list[str]:
    """Arguments of beat, with its schedule file in the test's folder."""
    return ["beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule")]


@pytest.fixture
def services(tmp_path):
    """Start service processes; every one is stopped at the end of the test."""
    started: list[ServiceProcess] = []

    def start(args: list[str], settings, name: str, **options) -> ServiceProcess:
        process = ServiceProcess(args, settings, tmp_path / f"{name}.log", **options).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def report(title: str, **counts: int) -> None:
    """Print what a fault test did, for the CI log."""
    figures = ", ".join(f"{name} {value}" for name, value in counts.items())
    print(f"\n[fault] {title}: {figures}", flush=True)


@pytest.fixture(autouse=True)
def _settle():
    yield
    time.sleep(0.1)
