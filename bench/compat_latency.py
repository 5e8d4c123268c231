"""`make compat-latency`: how long each compatible API takes to answer, through its real client.

Perspective (Google's `google-api-python-client`, built from our discovery document), OpenAI
(the `openai` SDK) and Coral (signed `requests` posts, as Coral sends them) each get the same
comment texts, one request at a time, interleaved so that a change in the machine's load
falls on every protocol alike. Each request waits for a worker to score the text, so the
figures are the sync path's latency: gunicorn, Redis, a Celery worker with the model, and
for Coral the stored comment in PostgreSQL.

Prints one table and writes bench/results/compat_latency.json.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import html
import itertools
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import httplib2
import openai
import redis
import requests
from googleapiclient import discovery
from googleapiclient.errors import HttpError

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
from moderation.config import Settings, default_model_dir
from moderation.db import make_engine, make_session_factory, unit_of_work
from moderation.services.coral import configure_coral
from moderation.services.sites import site_for_api_key
from moderation.tasks_client import sync_queue

RESULTS = Path(__file__).parent / "results" / "compat_latency.json"
DISCOVERY = "/$discovery/rest?version={apiVersion}"
# Every attribute the offline model scores, as a site moving from Perspective would ask.
PERSPECTIVE_ATTRIBUTES = (
    "TOXICITY",
    "SEVERE_TOXICITY",
    "IDENTITY_ATTACK",
    "INSULT",
    "PROFANITY",
    "THREAT",
)
CLIENT_TIMEOUT_S = 30
# Loading the model on a busy machine takes a minute or two.
WARM_UP_LIMIT_S = 600
NO_ANSWER = 0

# One request with this text; returns the HTTP status (NO_ANSWER when none came).
Call = Callable[[str], int]


@dataclass(frozen=True)
class Protocol:
    """One compatible API and the client that calls it."""

    name: str
    client: str
    call: Call


@contextmanager
def perspective_call(url: str, key: str) -> Iterator[Call]:
    """``comments().analyze(...).execute()`` of Google's client, built from our discovery."""
    service = discovery.build(
        "commentanalyzer",
        "v1alpha1",
        developerKey=key,
        discoveryServiceUrl=url + DISCOVERY,
        static_discovery=False,
        cache_discovery=False,
        http=httplib2.Http(timeout=CLIENT_TIMEOUT_S),
    )
    comments = service.comments()
    requested = {name: {} for name in PERSPECTIVE_ATTRIBUTES}

    def call(text: str) -> int:
        body = {"comment": {"text": text}, "requestedAttributes": requested}
        try:
            comments.analyze(body=body).execute()
        except HttpError as error:
            return error.resp.status
        except OSError:
            return NO_ANSWER
        return 200

    with service:
        yield call


@contextmanager
def openai_call(url: str, key: str) -> Iterator[Call]:
    """``moderations.create(input=...)`` of the OpenAI SDK, without its retries."""
    client = openai.OpenAI(
        api_key=key, base_url=f"{url}/v1", max_retries=0, timeout=CLIENT_TIMEOUT_S
    )

    def call(text: str) -> int:
        try:
            client.moderations.create(input=text)
        except openai.APIStatusError as error:
            return error.status_code
        except openai.APIConnectionError:
            return NO_ANSWER
        return 200

    with client:
        yield call


@contextmanager
def coral_call(url: str, site_name: str, secret: str) -> Iterator[Call]:
    """What Coral's External Moderation Phase posts: a body signed with the phase's secret."""
    endpoint = f"{url}/coral/sites/{site_name}/moderation"
    session = requests.Session()
    sequence = itertools.count()

    def call(text: str) -> int:
        body = json.dumps(coral_request(text, next(sequence))).encode()
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-Coral-Signature": f"sha256={digest}", "Content-Type": "application/json"}
        try:
            answer = session.post(endpoint, data=body, headers=headers, timeout=CLIENT_TIMEOUT_S)
        except requests.RequestException:
            return NO_ANSWER
        return answer.status_code

    with session:
        yield call


def coral_request(text: str, n: int) -> dict:
    """An External Moderation Request for a new comment; Coral sends the body as HTML."""
    return {
        "action": "NEW",
        "comment": {"body": f"<p>{html.escape(text)}</p>", "parentID": None},
        "author": {"id": f"reader-{n % 97}", "role": "COMMENTER"},
        "story": {"id": f"story-{n % 13}", "url": f"https://news.example/stories/{n % 13}"},
        "site": {"id": "bench-site"},
        "tenantID": "bench-tenant",
        "tenantDomain": "news.example",
    }


def timed(call: Call, text: str) -> tuple[int, float]:
    """The status of one request and how long it took, in milliseconds."""
    started = time.perf_counter()
    status = call(text)
    return status, (time.perf_counter() - started) * 1000


def in_time(status: int, ms: float, sync_timeout: float) -> bool:
    """A 2xx that a worker answered; Coral's 204 after the full wait means nobody did."""
    return 200 <= status < 300 and ms < sync_timeout * 1000


def warm_up(protocols: list[Protocol], texts: list[str], streak: int, settings: Settings) -> None:
    """Until each protocol answers ``streak`` times in a row in time: the model has loaded.

    The worker's processes load the model in the background when they start, which takes
    longer than the web's wait; requests before then time out and are retried here.
    """
    deadline = time.monotonic() + WARM_UP_LIMIT_S
    for protocol in protocols:
        sent = in_a_row = 0
        while in_a_row < streak:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{protocol.name}: not answering in time after warm-up")
            status, ms = timed(protocol.call, texts[sent % len(texts)])
            in_a_row = in_a_row + 1 if in_time(status, ms, settings.sync_timeout) else 0
            sent += 1
        _step(f"{protocol.name} warm after {sent} request(s)")


def measure(protocols: list[Protocol], texts: list[str], sync_timeout: float) -> dict[str, dict]:
    """Each text sent once through each protocol, one request at a time."""
    answers: dict[str, list[tuple[int, float]]] = {p.name: [] for p in protocols}
    for text in texts:
        for protocol in protocols:
            answers[protocol.name].append(timed(protocol.call, text))
    return {
        p.name: {"client": p.client} | figures(answers[p.name], sync_timeout) for p in protocols
    }


def figures(answers: list[tuple[int, float]], sync_timeout: float) -> dict:
    """Latency percentiles over every answer, with the non-2xx and the timed-out counted."""
    ms = sorted(elapsed for _, elapsed in answers)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    statuses = Counter(str(status) for status, _ in answers)
    return {
        "n": len(ms),
        "p50_ms": cuts[49],
        "p99_ms": cuts[98],
        "mean_ms": statistics.fmean(ms),
        "max_ms": ms[-1],
        "errors": sum(1 for status, _ in answers if not 200 <= status < 300),
        "timeouts": sum(1 for _, elapsed in answers if elapsed >= sync_timeout * 1000),
        "statuses": dict(sorted(statuses.items())),
    }


def coral_site(settings: Settings, key: str, secret: str) -> str:
    """Give the key's site a Coral signing secret; returns the site's name."""
    engine = make_engine(settings.database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        site = site_for_api_key(session, key)
        assert site is not None
        configure_coral(session, site, secret)
        name = site.name
    engine.dispose()
    return name


@contextmanager
def clients(url: str, key: str, site_name: str, secret: str) -> Iterator[list[Protocol]]:
    """The three protocols' clients, once the web answers (Google's reads our discovery)."""
    wait_for_http(f"{url}/healthz")
    with ExitStack() as stack:
        opened = stack.enter_context
        yield [
            Protocol(
                "perspective",
                f"google-api-python-client {version('google-api-python-client')}",
                opened(perspective_call(url, key)),
            ),
            Protocol("openai", f"openai {version('openai')}", opened(openai_call(url, key))),
            Protocol(
                "coral",
                f"requests {version('requests')} + HMAC",
                opened(coral_call(url, site_name, secret)),
            ),
        ]


def main() -> None:
    """Start the stack, warm it up, measure, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=os.environ.get("MODERATION_MODEL", default_model_dir()))
    parser.add_argument("--requests", type=int, default=100, help="per protocol (default 100)")
    parser.add_argument(
        "--warmup", type=int, default=5, help="answers in time in a row before measuring"
    )
    args = parser.parse_args()
    texts, source = comment_texts(args.warmup * 4 + args.requests)
    warmup_texts, measured_texts = texts[: args.warmup * 4], texts[args.warmup * 4 :]
    logs = Path(tempfile.mkdtemp(prefix="bench-compat-"))
    with fresh_postgres() as database_url:
        settings = bench_settings(database_url, model=args.model)
        key = new_site_key(settings)
        secret = secrets.token_hex(24)
        site_name = coral_site(settings, key, secret)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = environment(settings)
        try:
            with (
                running(gunicorn_command(port), env, logs / "gunicorn.log"),
                running(worker_command(settings, CORES), env, logs / "worker.log"),
                clients(url, key, site_name, secret) as protocols,
            ):
                _step("warm-up")
                warm_up(protocols, warmup_texts, args.warmup, settings)
                _step(f"{args.requests} sequential requests per protocol")
                measured = measure(protocols, measured_texts, settings.sync_timeout)
        finally:
            _drop_queues(settings)
    results = {
        "machine": machine(),
        "texts": source,
        "requests": args.requests,
        "sync_timeout_s": settings.sync_timeout,
        "gunicorn_workers": 2,
        "worker_processes": CORES,
        "protocols": measured,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nJSON: {RESULTS}   logs: {logs}")


def _drop_queues(settings: Settings) -> None:
    """Drop what this run left in the broker (Coral's timed-out comments, unread requests)."""
    redis.Redis.from_url(settings.broker_url).delete(settings.task_queue, sync_queue(settings))


def _step(name: str) -> None:
    print(f"... {name}", file=sys.stderr, flush=True)


def print_table(r: dict) -> None:
    """The figures as one table."""
    header = ("protocol", "client", "n", "p50 ms", "p99 ms", "mean", "max", "errors", "timeouts")
    rows = [header] + [
        (
            name,
            p["client"],
            str(p["n"]),
            f"{p['p50_ms']:.1f}",
            f"{p['p99_ms']:.1f}",
            f"{p['mean_ms']:.1f}",
            f"{p['max_ms']:.1f}",
            str(p["errors"]),
            str(p["timeouts"]),
        )
        for name, p in r["protocols"].items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    rule = tuple("-" * width for width in widths)
    print()
    for row in [rows[0], rule, *rows[1:]]:
        # Names left-aligned, figures right-aligned.
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in pairs]
        print("  ".join(cells))
    m = r["machine"]
    print(
        f"\nsequential, one request at a time; the web waits {r['sync_timeout_s']:g} s for a "
        f"worker (a timeout is a 503, or a 204 for Coral)\n"
        f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}; texts: {r['texts']}"
    )


if __name__ == "__main__":
    main()
