"""`make bench`: the real stack's throughput and latency against the model's own ceiling.

Prints one table and writes bench/results/latest.json. Runs on PostgreSQL and the Redis
at BENCH_BROKER_URL (default 127.0.0.1:6379/4); takes about five minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
import requests
from celery import Celery
from sqlalchemy import select

from bench.drain import drain_rate
from bench.round_trips import measure as round_trips
from bench.stack import (
    bench_settings,
    environment,
    free_port,
    fresh_postgres,
    gunicorn_command,
    new_site_key,
    pending_count,
    running,
    wait_for_http,
    worker_command,
)
from bench.workload import comment_texts
from moderation.config import default_model_dir
from moderation.db import make_engine, make_session_factory
from moderation.models import Comment

RESULTS = Path(__file__).parent / "results" / "latest.json"
CORES = os.cpu_count() or 1


def ceiling(model: str, texts: list[str], quantize: str | None = None) -> float:
    """Best batched scoring by the workers' scorer in one process using every core: comments/s."""
    from moderation.scoring import scorer_for_model

    scorer = scorer_for_model(model, quantize=quantize, num_threads=CORES)
    scorer.score_batch(texts[:64])
    best = 0.0
    for _ in range(3):
        started = time.monotonic()
        scorer.score_batch(texts)
        best = max(best, len(texts) / (time.monotonic() - started))
    return best


def int8_drift(model: str, texts: list[str]) -> float:
    """Mean absolute difference of every label's score, int8 against fp32."""
    from moderation.scoring import scorer_for_model

    fp32 = scorer_for_model(model, num_threads=CORES).score_batch(texts)
    int8 = scorer_for_model(model, quantize="int8", num_threads=CORES).score_batch(texts)
    diffs = [abs(a[label] - b[label]) for a, b in zip(fp32, int8, strict=True) for label in a]
    return statistics.fmean(diffs)


def ingest(url: str, key: str, texts: list[str], seconds: int, connections: int) -> dict:
    """wrk posting comments to gunicorn: requests/s, p50/p99 ms, errors."""
    bodies = [
        json.dumps(
            {
                "article_id": f"ingest-{i % 20}",
                # Each request a new author (set in the script): the per-author limit and the
                # repeat-post rule would otherwise answer many of them with 429 or decide them.
                "author_id": "AUTHOR",
                "author_name": "Reader",
                "text": text,
            }
        )
        for i, text in enumerate(texts[:200])
    ]
    script = _wrk_script(bodies, key)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            handle.name,
            f"{url}/api/v1/comments",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(handle.name)
    return _parse_wrk(output)


def _wrk_script(bodies: list[str], key: str) -> str:
    lua_bodies = ",\n".join("[==[" + body + "]==]" for body in bodies)
    return f"""
local bodies = {{ {lua_bodies} }}
local i = 0
local prefix = "a"
init = function(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
  prefix = "a" .. math.random(1, 1000000000)
end
request = function()
  i = i + 1
  local body = string.gsub(bodies[(i % #bodies) + 1], "AUTHOR", prefix .. "-" .. i, 1)
  return wrk.format("POST", nil, {{
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer {key}",
  }}, body)
end
"""


def _parse_wrk(output: str) -> dict:
    figures = {"errors": 0}
    for line in output.splitlines():
        parts = line.split()
        if line.strip().startswith("50%"):
            figures["p50_ms"] = _ms(parts[1])
        elif line.strip().startswith("99%"):
            figures["p99_ms"] = _ms(parts[1])
        elif line.startswith("Requests/sec"):
            figures["per_s"] = float(parts[1])
        elif "Non-2xx" in line or line.strip().startswith("Socket errors"):
            figures["errors"] += sum(int(p.strip(",")) for p in parts if p.strip(",").isdigit())
    return figures


def _ms(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float(value)


def latency_at_rate(
    url: str, key: str, texts: list[str], settings, rate: float, seconds: int
) -> dict:
    """Submit-to-decision latency while comments arrive at a fixed rate."""
    headers = {"Authorization": f"Bearer {key}"}
    session = requests.Session()
    # Warm up first: each worker process loads the model on its first batch.
    for i in range(40):
        body = {"article_id": "warmup", "author_id": f"w{i}", "author_name": "W", "text": texts[i]}
        session.post(f"{url}/api/v1/comments", json=body, headers=headers, timeout=10)
    _wait(lambda: pending_count(settings) == 0, 300)
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < seconds:
        due = started + sent / rate
        time.sleep(max(0.0, due - time.monotonic()))
        body = {
            "article_id": "latency",
            "author_id": f"u{sent}",
            "author_name": "R",
            "text": texts[sent % len(texts)],
        }
        session.post(f"{url}/api/v1/comments", json=body, headers=headers, timeout=10)
        sent += 1
    deadline = time.monotonic() + 120
    while pending_count(settings) and time.monotonic() < deadline:
        time.sleep(0.2)
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as db:
        rows = db.execute(
            select(Comment.created_at, Comment.decided_at).where(Comment.author_name == "R")
        ).all()
    engine.dispose()
    waits = sorted((d - c).total_seconds() * 1000 for c, d in rows if d is not None)
    return {
        "sent": sent,
        "decided": len(waits),
        "p50_ms": _pct(waits, 50),
        "p99_ms": _pct(waits, 99),
    }


def _pct(values: list[float], pct: int) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(pct / 100 * (len(values) - 1)))]


def naive_rate(model: str, texts: list[str], log: Path) -> float:
    """The naive peer's comments/s on the same texts (after its model has loaded)."""
    broker = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/4")
    counter = f"bench-naive-{uuid.uuid4().hex[:6]}"
    queue = "celery"
    env = {
        **os.environ,
        "BENCH_NAIVE_BROKER_URL": broker,
        "BENCH_NAIVE_MODEL": detoxify_dir(model),
        "BENCH_NAIVE_COUNTER": counter,
        "PYTHONPATH": str(Path(__file__).parent.parent),
    }
    client = redis.Redis.from_url(broker)
    client.delete(queue, counter)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.naive_worker",
        "worker",
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
    ]
    producer = Celery("naive-producer", broker=broker, set_as_current=False)
    producer.conf.update(task_serializer="json")

    def send(text: str) -> None:
        producer.send_task("bench.naive_score", args=[text], queue=queue, ignore_result=True)

    with running(command, env, log):
        for text in texts[:20]:
            send(text)
        _wait(lambda: int(client.get(counter) or 0) >= 20, 300)
        backlog = texts[20:]
        # The clock runs from the first send: the peer scores while the rest are sent.
        started = time.monotonic()
        for text in backlog:
            send(text)
        _wait(lambda: int(client.get(counter) or 0) >= 20 + len(backlog), 1200)
        elapsed = time.monotonic() - started
    client.delete(queue, counter)
    return len(backlog) / elapsed


def detoxify_dir(model: str) -> str:
    """The Detoxify checkpoint the naive peer loads: the combined model's MiniLM signal."""
    from moderation.scoring.ensemble import MINILM_DIR, is_ensemble_dir

    return str(Path(model) / MINILM_DIR) if is_ensemble_dir(model) else model


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.05)


def machine() -> dict:
    """What the figures were measured on."""
    model_name = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    import torch

    return {
        "cpu": model_name,
        "cores": CORES,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "system": platform.platform(),
    }


def main() -> None:
    """Run every measurement, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=os.environ.get("MODERATION_MODEL", default_model_dir()))
    parser.add_argument("--comments", type=int, default=800)
    parser.add_argument("--ingest-seconds", type=int, default=15)
    parser.add_argument("--latency-seconds", type=int, default=30)
    args = parser.parse_args()
    texts, source = comment_texts(args.comments)
    logs = Path(tempfile.mkdtemp(prefix="bench-"))
    results: dict = {"machine": machine(), "texts": source, "comments": len(texts)}
    results["load_average_at_start"] = _load_average()
    _step("round trips per accepted comment (in process)")
    results["ingest_round_trips"] = round_trips(200)
    _step("ceiling (fp32, one process)")
    results["ceiling_per_s"] = ceiling(args.model, texts)
    _step("ceiling (int8)")
    results["int8_per_s"] = ceiling(args.model, texts, "int8")
    results["int8_speedup"] = results["int8_per_s"] / results["ceiling_per_s"]
    results["int8_mean_abs_drift"] = int8_drift(args.model, texts[:400])
    with fresh_postgres() as database_url:
        settings = bench_settings(database_url, model=args.model)
        key = new_site_key(settings)
        _step("end to end, one worker with 2 processes (the default)")
        results["end_to_end_per_s"] = drain_rate(
            settings, key, texts, processes=CORES, log=logs / "worker.log"
        )
        _step("end to end, 32 ids per message (the send buffer under load, the sweeper)")
        results["end_to_end_32_ids_per_s"] = drain_rate(
            settings, key, texts, processes=CORES, log=logs / "worker32.log", ids_per_message=32
        )
        _step("end to end, one worker process")
        single = {"MODERATION_MODEL_THREADS": "1"}
        results["one_worker_per_s"] = drain_rate(
            settings, key, texts, processes=1, log=logs / "worker1.log", extra_env=single
        )
        _step("end to end, two worker processes on the same broker")
        results["two_workers_per_s"] = _two_workers(settings, key, texts, logs)
        _step("end to end, one worker with 4 processes (1 torch thread each)")
        results["four_processes_per_s"] = drain_rate(
            settings, key, texts, processes=4, log=logs / "worker4.log", extra_env=single
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with running(gunicorn_command(port), environment(settings), logs / "gunicorn.log"):
            wait_for_http(f"{url}/healthz")
            _step("ingest (wrk, no workers)")
            figures = ingest(url, key, texts, args.ingest_seconds, connections=16)
            results |= {
                "ingest_per_s": figures["per_s"],
                "ingest_p50_ms": figures["p50_ms"],
                "ingest_p99_ms": figures["p99_ms"],
                "ingest_errors": figures["errors"],
            }
            _purge(settings)
            _step("latency at 20 comments/s")
            with running(
                worker_command(settings, CORES), environment(settings), logs / "worker-latency.log"
            ):
                latency = latency_at_rate(url, key, texts, settings, 20, args.latency_seconds)
            results |= {
                "latency_p50_ms": latency["p50_ms"],
                "latency_p99_ms": latency["p99_ms"],
                "latency_sent": latency["sent"],
                "latency_decided": latency["decided"],
            }
    _step("naive peer")
    results["naive_per_s"] = naive_rate(args.model, texts[:300], logs / "naive.log")
    results["end_to_end_vs_ceiling"] = results["end_to_end_per_s"] / results["ceiling_per_s"]
    results["end_to_end_vs_naive"] = results["end_to_end_per_s"] / results["naive_per_s"]
    results["load_average_at_end"] = _load_average()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nJSON: {RESULTS}   logs: {logs}")


def _two_workers(settings, key, texts, logs: Path) -> float:
    env = environment(settings, MODERATION_MODEL_THREADS="1")
    with running(worker_command(settings, 1), env, logs / "worker-b.log"):
        return drain_rate(
            settings,
            key,
            texts,
            processes=1,
            log=logs / "worker-a.log",
            extra_env={"MODERATION_MODEL_THREADS": "1"},
            warm_processes=2,
        )


def _load_average() -> float:
    """The one-minute load average: other work on the machine makes figures meaningless."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def _purge(settings) -> None:
    """Drop the ingest run's comments and their queued tasks."""
    redis.Redis.from_url(settings.broker_url).delete(settings.task_queue)
    engine = make_engine(settings.database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM comments")
    engine.dispose()


def _step(name: str) -> None:
    print(f"... {name}", file=sys.stderr, flush=True)


def print_table(r: dict) -> None:
    """The figures as one table."""
    trips = r["ingest_round_trips"]
    rows = [
        (
            "ingest round trips per accepted comment (sequential)",
            f"{trips['db_round_trips']:.1f} database, {trips['redis_round_trips']:.1f} Redis; "
            f"{trips['ms_per_request']:.2f} ms in process (db {trips['ms_database']:.2f}, "
            f"redis {trips['ms_redis']:.2f}, task message {trips['ms_task_send']:.2f}, "
            f"other {trips['ms_other']:.2f})",
        ),
        (
            "ingest: POST /api/v1/comments (wrk, 16 conns, gunicorn 2 workers)",
            f"{r['ingest_per_s']:.0f} req/s, p50 {r['ingest_p50_ms']:.1f} ms, "
            f"p99 {r['ingest_p99_ms']:.1f} ms, errors {r['ingest_errors']}",
        ),
        ("end to end: decisions/s, 1 worker x 2 processes", f"{r['end_to_end_per_s']:.1f}"),
        ("end to end: the same, 32 ids per message", f"{r['end_to_end_32_ids_per_s']:.1f}"),
        ("end to end: 1 worker process", f"{r['one_worker_per_s']:.1f}"),
        ("end to end: 2 worker processes, same broker", f"{r['two_workers_per_s']:.1f}"),
        ("end to end: 1 worker x 4 processes (1 thread)", f"{r['four_processes_per_s']:.1f}"),
        (
            "submit-to-decision at 20/s: p50 / p99",
            f"{r['latency_p50_ms']:.0f} ms / {r['latency_p99_ms']:.0f} ms "
            f"({r['latency_decided']}/{r['latency_sent']} decided)",
        ),
        ("ceiling: best batched predict, one process (fp32)", f"{r['ceiling_per_s']:.1f}/s"),
        (
            "ceiling with int8",
            f"{r['int8_per_s']:.1f}/s (x{r['int8_speedup']:.2f}, "
            f"mean abs drift {r['int8_mean_abs_drift']:.4f})",
        ),
        ("naive peer: task per comment, stock predict", f"{r['naive_per_s']:.1f}/s"),
        ("end to end / ceiling", f"{r['end_to_end_vs_ceiling']:.2f}"),
        ("end to end / naive", f"{r['end_to_end_vs_naive']:.2f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"\n{'measure'.ljust(width)}  figure\n{'-' * width}  {'-' * 40}")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    m = r["machine"]
    print(f"\nmachine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}; texts: {r['texts']}")
    print(f"load average: {r['load_average_at_start']} at start, {r['load_average_at_end']} at end")


if __name__ == "__main__":
    main()
