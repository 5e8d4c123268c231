"""A steady-rate soak through gunicorn and real workers: flat memory, no errors, all decided.

Runs when MODERATION_SOAK_SECONDS is set (`make soak` sets 600, and CI runs it).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.faults.conftest import beat_args, report, worker_args
from tests.faults.test_faults import assert_each_decided_once, body, counts
from tests.support import ROOT, free_port, settings_for_tests, wait_until, worker_environment

SOAK_SECONDS = int(os.environ.get("MODERATION_SOAK_SECONDS", "0"))
RATE = 10

pytestmark = [
    pytest.mark.faults,
    # The stream alone lasts SOAK_SECONDS; draining and start-up take a few minutes more.
    pytest.mark.timeout(SOAK_SECONDS + 900),
    pytest.mark.skipif(not SOAK_SECONDS, reason="set MODERATION_SOAK_SECONDS (make soak)"),
]


def tree_rss_mib(root_pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    total_kib = 0
    for pid in tree:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total_kib += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
    return total_kib / 1024


def test_soak_at_a_steady_rate(
    database_url, settings, model_dir, sessions, site_key, services, tmp_path
):
    if not database_url.startswith("postgresql"):
        pytest.skip("the soak runs on PostgreSQL, as production does")
    soak = settings_for_tests(database_url, model_dir, pending_resend_after=30)
    worker = services(worker_args(soak, f"soak-{uuid.uuid4().hex[:6]}@localhost"), soak, "worker")
    services(beat_args(tmp_path), soak, "beat")
    port = free_port()
    with (tmp_path / "gunicorn.log").open("ab") as log:
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "moderation.wsgi:app",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
            ],
            env=worker_environment(soak),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _answers(url), timeout=30)
        statuses, memory = _steady_stream(url, site_key, web.pid, worker.process.pid)
    finally:
        web.terminate()
        web.wait(timeout=30)
    assert wait_until(lambda: counts(sessions)["pending"] == 0, timeout=300)
    assert_each_decided_once(sessions)
    final = counts(sessions)
    warm = len(memory) // 5
    early = statistics.fmean(m[1] + m[2] for m in memory[warm : 2 * warm])
    late = statistics.fmean(m[1] + m[2] for m in memory[-warm:])
    report(
        f"soak {SOAK_SECONDS}s at {RATE}/s",
        sent=len(statuses),
        accepted=statuses.count(202),
        decided=final["all"] - final["pending"],
        lost=statuses.count(202) - final["all"],
        errors=len(statuses) - statuses.count(202),
        rss_early_mib=round(early),
        rss_late_mib=round(late),
    )
    assert statuses.count(202) == len(statuses) == final["all"]
    assert late < early * 1.10 + 30, f"memory grew from {early:.0f} to {late:.0f} MiB"


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).ok
    except requests.RequestException:
        return False


def _steady_stream(url: str, key: str, web_pid: int, worker_pid: int):
    headers = {"Authorization": f"Bearer {key}"}
    session = requests.Session()
    statuses: list[int] = []
    memory: list[tuple[float, float, float]] = []
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < SOAK_SECONDS:
        time.sleep(max(0.0, started + len(statuses) / RATE - time.monotonic()))
        response = session.post(
            f"{url}/api/v1/comments", json=body(len(statuses)), headers=headers, timeout=10
        )
        statuses.append(response.status_code)
        if len(statuses) % (RATE * 10) == 0:
            memory.append((elapsed, tree_rss_mib(web_pid), tree_rss_mib(worker_pid)))
    return statuses, memory
