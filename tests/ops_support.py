"""Helpers of the ops tests: scraping /metrics, asking /readyz, running `moderation status`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from moderation.config import Settings
from tests.support import ROOT, PrivateRedis, worker_environment

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
MODERATION_COMMAND = Path(sys.executable).with_name("moderation")


def parse_metrics(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(url: str) -> Samples:
    """GET /metrics and parse it."""
    response = requests.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    return parse_metrics(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 for a series not exposed yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much a sample moved between two scrapes."""
    return value(after, name, **labels) - value(before, name, **labels)


def readyz(url: str) -> tuple[int, dict]:
    """Status code and body of /readyz."""
    response = requests.get(f"{url}/readyz", timeout=30)
    return response.status_code, response.json()


def ops_environment(settings: Settings) -> dict[str, str]:
    """A worker's environment plus the settings the status command reads."""
    env = worker_environment(settings)
    env["MODERATION_WORKER_HEARTBEAT_MAX_AGE"] = str(settings.worker_heartbeat_max_age)
    env["MODERATION_MAX_PENDING_AGE"] = str(settings.max_pending_age)
    return env


def run_status(settings: Settings) -> subprocess.CompletedProcess[str]:
    """`moderation status` as a script would run it."""
    return subprocess.run(
        [str(MODERATION_COMMAND), "status"],
        env=ops_environment(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextmanager
def own_redis() -> Iterator[PrivateRedis]:
    """A redis-server on a free port for the duration of a block."""
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
