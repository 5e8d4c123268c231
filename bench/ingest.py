"""Ingest alone, with where its CPU goes: wrk posting comments to gunicorn, no workers.

Starts gunicorn (``--workers``, default 2) on a fresh PostgreSQL database and the Redis at
BENCH_BROKER_URL, runs wrk for ``--seconds`` and prints requests/s, p50/p99 and the CPU time
each part of the box spent per accepted comment (the web processes, PostgreSQL, Redis, wrk),
read from ``/proc`` before and after the run. Everything shares the same cores, so the
per-request CPU is what limits requests/s.

    python -m bench.ingest [--seconds 15] [--connections 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.pipeline import ingest
from bench.stack import (
    bench_settings,
    environment,
    free_port,
    fresh_postgres,
    gunicorn_command,
    new_site_key,
    running,
    wait_for_http,
)
from bench.workload import comment_texts

TICKS = os.sysconf("SC_CLK_TCK")
# /proc/<pid>/comm of each part; gunicorn's processes are Python's.
PARTS = {"postgres": "postgresql", "redis-server": "redis"}


def cpu_seconds(web_pids: set[int]) -> dict[str, float]:
    """CPU seconds (user + system) so far of each part's processes, by part."""
    totals: dict[str, float] = defaultdict(float)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime and stime are fields 14 and 15 of stat(5); ``fields`` starts at field 3.
        used = (int(fields[11]) + int(fields[12])) / TICKS
        pid, parent = int(entry.name), int(fields[1])
        if pid in web_pids or parent in web_pids:
            totals["web"] += used
        elif comm in PARTS:
            totals[PARTS[comm]] += used
    return dict(totals)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(seconds: int, connections: int, workers: int) -> dict:
    """One wrk run against gunicorn; rates, latencies and CPU ms per request by part."""
    texts, _ = comment_texts(400)
    logs = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    with fresh_postgres() as database_url:
        settings = bench_settings(database_url)
        key = new_site_key(settings)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = gunicorn_command(port, workers=workers)
        with running(command, environment(settings), logs / "gunicorn.log") as web:
            wait_for_http(f"{url}/healthz")
            # A short warm-up: connections open, caches filled, code paths imported.
            ingest(url, key, texts, 2, connections)
            before = cpu_seconds({web.pid})
            wrk_before = _children_cpu()
            figures = ingest(url, key, texts, seconds, connections)
            after = cpu_seconds({web.pid})
            # wrk has exited and been waited for: its time is in this process's children's.
            after["wrk"] = _children_cpu() - wrk_before
    requests = figures["per_s"] * seconds
    cpu_ms = {
        part: round((used - before.get(part, 0.0)) * 1000 / requests, 2)
        for part, used in after.items()
    }
    return figures | {
        "workers": workers,
        "connections": connections,
        "cpu_ms_per_request": cpu_ms,
        "cpu_ms_per_request_total": round(sum(cpu_ms.values()), 2),
        "cores": os.cpu_count(),
    }


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.seconds, args.connections, args.workers)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"ingest: {figures['per_s']:.0f} req/s, p50 {figures['p50_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms, {figures['errors']} errors "
        f"(gunicorn {args.workers} workers, wrk {args.connections} connections, "
        f"{figures['cores']} cores)"
    )
    parts = ", ".join(f"{part} {ms:.2f}" for part, ms in figures["cpu_ms_per_request"].items())
    print(f"CPU ms per request: {parts}; total {figures['cpu_ms_per_request_total']:.2f}")


if __name__ == "__main__":
    main()
