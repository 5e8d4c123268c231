"""Coral's external moderation phase under a steady load, against Coral's 200 ms budget.

Coral's request exactly as Coral builds it (``JSON.stringify(request, null, 2)``, HTML body,
one signature per active secret, comma-joined) is posted at a steady rate (10 a second by
default) through gunicorn, Redis, a Celery worker with the model, and PostgreSQL, each with
Coral's own 200 ms client timeout. Reports p50/p99 of the answers and the share of requests
with no answer within 200 ms, then checks that every comment was kept with what Coral was
told. Writes bench/results/compat_latency_coral.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from sqlalchemy import select

from bench.compat_latency import coral_site
from bench.pipeline import CORES, machine
from bench.stack import (
    bench_settings,
    environment,
    free_port,
    fresh_postgres,
    gunicorn_command,
    new_site_key,
    running,
    wait_for_http,
    worker_command,
)
from bench.workload import comment_texts
from moderation.config import default_model_dir
from moderation.db import make_engine, make_session_factory
from moderation.models import Comment
from moderation.services.coral import sign

RESULTS = Path(__file__).parent / "results" / "compat_latency_coral.json"
BUDGET_S = 0.2
TOLD = {"REJECTED": "rejected", "SYSTEM_WITHHELD": "held"}


def coral_body(text: str, n: int) -> bytes:
    """Coral's ExternalModerationRequest for a new comment, serialised as Coral does."""
    request = {
        "action": "NEW",
        "comment": {"body": f"<p>{text}</p>", "parentID": None},
        "author": {"id": f"bench-author-{n % 50}", "role": "COMMENTER"},
        "story": {"id": f"bench-story-{n % 10}", "url": f"https://news.example/story/{n % 10}"},
        "site": {"id": "bench-site"},
        "tenantID": "bench-tenant",
        "tenantDomain": "news.example",
    }
    return json.dumps(request, indent=2, ensure_ascii=False).encode()


def ask(endpoint: str, secret_keys: list[str], text: str, n: int) -> tuple[str, float, str]:
    """(text, seconds to the answer or inf, what Coral was told)."""
    body = coral_body(text, n)
    headers = {"Content-Type": "application/json", "X-Coral-Signature": sign(secret_keys, body)}
    started = time.perf_counter()
    try:
        answer = requests.post(endpoint, data=body, headers=headers, timeout=BUDGET_S)
    except requests.RequestException:
        return text, float("inf"), "approved"  # Coral skips the phase and publishes
    elapsed = time.perf_counter() - started
    told = (
        TOLD.get(answer.json().get("status"), "approved")
        if answer.status_code == 200
        else "approved"
    )
    return text, elapsed, told


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=os.environ.get("MODERATION_MODEL", default_model_dir()))
    parser.add_argument("--rate", type=float, default=10.0, help="requests a second")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    texts, source = comment_texts(args.requests)
    texts = [f"{text} [{n}]" for n, text in enumerate(texts)]
    logs = Path(tempfile.mkdtemp(prefix="bench-coral-"))
    with fresh_postgres() as database_url:
        settings = bench_settings(database_url, model=args.model)
        key = new_site_key(settings)
        old, new = secrets.token_hex(24), secrets.token_hex(24)
        site_name = coral_site(settings, key, old)
        coral_site(settings, key, new)  # rotated: Coral signs with both
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        endpoint = f"{url}/coral/sites/{site_name}/moderation"
        env = environment(settings)
        with (
            running(gunicorn_command(port), env, logs / "gunicorn.log"),
            running(worker_command(settings, CORES), env, logs / "worker.log"),
        ):
            wait_for_http(f"{url}/healthz")
            deadline = time.monotonic() + 600
            while requests.get(f"{url}/healthz/workers", timeout=5).status_code != 200:
                assert time.monotonic() < deadline, "no worker loaded its model"
                time.sleep(0.5)
            for n in range(20):  # warm the web processes' connections
                ask(endpoint, [new, old], f"warm-up {n}", n)
            with ThreadPoolExecutor(max_workers=16) as pool:
                futures, started = [], time.monotonic()
                for n, text in enumerate(texts):
                    while time.monotonic() < started + n / args.rate:
                        time.sleep(0.001)
                    futures.append(pool.submit(ask, endpoint, [new, old], text, n))
                answers = [future.result() for future in futures]
            engine = make_engine(settings.database_url)
            sessions = make_session_factory(engine)
            expected = {f"{text}": told for text, _elapsed, told in answers}
            deadline = time.monotonic() + 120
            while True:
                with sessions() as session:
                    kept = dict(session.execute(select(Comment.text, Comment.status)).all())
                kept = {text: status for text, status in kept.items() if text in expected}
                if len(kept) == len(expected) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            engine.dispose()
    elapsed = [e for _t, e, _told in answers]
    answered = [e for e in elapsed if e != float("inf")]
    disagreements = sum(1 for text, status in kept.items() if expected[text] != status)
    results = {
        "machine": machine(),
        "texts": source,
        "requests": len(answers),
        "rate_per_s": args.rate,
        "worker_processes": CORES,
        "p50_ms": round(percentile(elapsed, 0.5) * 1000, 1),
        "p99_ms": round(percentile(elapsed, 0.99) * 1000, 1) if answered else None,
        "max_answered_ms": round(max(answered) * 1000, 1) if answered else None,
        "over_200_ms_share": round(sum(1 for e in elapsed if e >= BUDGET_S) / len(elapsed), 4),
        "told": {
            o: sum(1 for *_x, t in answers if t == o) for o in ("approved", "held", "rejected")
        },
        "kept": len(kept),
        "kept_disagreeing_with_coral": disagreements,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
