"""Page load time of the moderator queue with 100,000 comments in the table.

Seeds a scratch database (SQLite by default, or a fresh PostgreSQL one) with comments of
three sites, every label's score, automatic decisions and moderators' decisions, then serves
the app under gunicorn and times the queue pages over HTTP as a signed-in moderator:

    python -m bench.moderation_queue                       # SQLite, 100,000 comments
    python -m bench.moderation_queue --backend postgresql  # a fresh database, dropped after
    python -m bench.moderation_queue --screenshot docs/moderation-queue.png
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import insert, select

from bench.stack import (
    ROOT,
    bench_settings,
    environment,
    free_port,
    fresh_postgres,
    gunicorn_command,
    running,
    wait_for_http,
)
from moderation.db import make_engine, make_session_factory, unit_of_work, utcnow
from moderation.migrate import upgrade_database
from moderation.models import Article, AuditEvent, Comment, CommentScore, Site, Status
from moderation.policy import LABELS, SitePolicy, decide
from moderation.services.moderation import REJECT_REASONS
from moderation.services.moderators import create_moderator
from moderation.services.sites import create_site

SEED_CSV = ROOT / "moderation" / "scoring" / "seed_comments.csv"
PASSWORD = "bench-password-123"  # a scratch database's account
SITES = ("daily-courier", "metro-gazette", "valley-times")
CHUNK = 5000


# ------------------------------------------------------------------------------- seeding


def seed_texts() -> tuple[list[tuple[str, set[str]]], list[tuple[str, set[str]]]]:
    """Clean and toxic texts of the seed set, each with the labels it carries."""
    clean, toxic = [], []
    with SEED_CSV.open(newline="") as handle:
        for row in csv.DictReader(handle):
            labels = {label for label in LABELS[1:] if row.get(label) == "1"}
            if row["label_toxic"] == "1":
                toxic.append((row["text"], labels | {"toxicity"}))
            else:
                clean.append((row["text"], set()))
    return clean, toxic


def fake_scores(rng: random.Random, labels: set[str]) -> dict[str, float]:
    """Per-label scores that look like the model's: high where the text carries the label."""
    return {
        label: round(rng.uniform(0.55, 0.99) if label in labels else rng.betavariate(1, 25), 4)
        for label in LABELS
    }


def seed(database_url: str, rows: int, rng: random.Random) -> dict[str, int]:
    """Fill the database with ``rows`` comments and their scores and audit trail."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        site_ids = [create_site(session, name)[0].id for name in SITES]
        admin = create_moderator(session, "admin@example.test", PASSWORD, is_admin=True)
        site = session.get(Site, site_ids[0])
        create_moderator(session, "moderator@example.test", PASSWORD, sites=[site])
        admin_email = admin.email
    articles = _seed_articles(engine, site_ids, rng)
    counts = _seed_comments(engine, rows, articles, admin_email, rng)
    analyze(engine)
    engine.dispose()
    return counts


def analyze(engine: Any) -> None:
    """Planner statistics, as autovacuum (or SQLite's optimize) has them on a live database."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        statement = "ANALYZE" if engine.dialect.name == "sqlite" else "VACUUM ANALYZE"
        connection.exec_driver_sql(statement)


def _seed_articles(engine: Any, site_ids: list[int], rng: random.Random) -> list[tuple[int, int]]:
    titles = ["Budget", "Transport", "Schools", "Housing", "Climate", "Football", "Elections"]
    values = [
        {
            "site_id": site_id,
            "external_id": f"story-{number}",
            "title": f"{rng.choice(titles)}: what changes in 2026 (part {number})",
            "url": f"https://news.example/{site_id}/story-{number}",
            "closed": False,
            "premoderate": False,
            "created_at": utcnow(),
        }
        for site_id in site_ids
        for number in range(700)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Article), values)
        return [tuple(row) for row in connection.execute(select(Article.id, Article.site_id))]


def _seed_comments(
    engine: Any, rows: int, articles: list[tuple[int, int]], moderator: str, rng: random.Random
) -> dict[str, int]:
    clean, toxic = seed_texts()
    policy = SitePolicy()
    start = utcnow() - timedelta(days=30)
    step = timedelta(days=30) / rows
    counts: dict[str, int] = {}
    next_id = 1
    for first in range(0, rows, CHUNK):
        batch = []
        for offset in range(min(CHUNK, rows - first)):
            text, labels = rng.choice(toxic if rng.random() < 0.22 else clean)
            batch.append(_comment(next_id, text, labels, articles, start + step * (first + offset)))
            next_id += 1
        _insert_batch(engine, batch, policy, moderator, rng, counts)
    return counts


def _comment(
    comment_id: int, text: str, labels: set[str], articles: list[tuple[int, int]], at: Any
) -> dict[str, Any]:
    rng = random.Random(comment_id)
    article_id, site_id = articles[int(rng.paretovariate(1.2) * 7) % len(articles)]
    author = int(rng.paretovariate(1.1) * 50) % 20000
    return {
        "id": comment_id,
        "public_id": f"cmt_bench{comment_id:08d}",
        "site_id": site_id,
        "article_id": article_id,
        "author_id": f"reader-{author}",
        "author_name": f"Reader {author}",
        "text": text,
        "created_at": at,
        "labels": labels,
    }


def _insert_batch(
    engine: Any,
    batch: list[dict[str, Any]],
    policy: SitePolicy,
    moderator: str,
    rng: random.Random,
    counts: dict[str, int],
) -> None:
    comments, scores, audit = [], [], []
    for row in batch:
        labels, at = row.pop("labels"), row["created_at"]
        values = fake_scores(rng, labels)
        decision = decide(values, policy)
        status, reasons = decision.outcome, [reason.as_dict() for reason in decision.reasons]
        decided = at + timedelta(seconds=1)
        audit.append(_event(row, "system", None, Status.PENDING, status, "scored", decided))
        if status == Status.HELD and rng.random() < 0.55:
            final = Status.REJECTED if rng.random() < 0.7 else Status.APPROVED
            reason = rng.choice(list(REJECT_REASONS)) if final == Status.REJECTED else "approved"
            decided = at + timedelta(minutes=rng.randint(2, 600))
            audit.append(_event(row, "moderator", moderator, status, final, reason, decided))
            status = final
        counts[str(status)] = counts.get(str(status), 0) + 1
        comments.append(
            row
            | {
                "status": status,
                "reasons": reasons,
                "top_score": max(values.values()),
                "updated_at": decided,
                "decided_at": decided,
            }
        )
        scores += [_score(row, label, value, at) for label, value in values.items()]
    with engine.begin() as connection:
        connection.execute(insert(Comment), comments)
        connection.execute(insert(CommentScore), scores)
        connection.execute(insert(AuditEvent), audit)


def _score(row: dict[str, Any], label: str, value: float, at: Any) -> dict[str, Any]:
    return {
        "comment_id": row["id"],
        "label": label,
        "score": value,
        "model_name": "minilm-seed",
        "model_version": "1",
        "created_at": at,
    }


def _event(
    row: dict[str, Any], actor: str, actor_id: str | None, old: str, new: str, why: str, at: Any
) -> dict[str, Any]:
    return {
        "site_id": row["site_id"],
        "comment_id": row["id"],
        "actor_type": actor,
        "actor_id": actor_id,
        "from_status": old,
        "to_status": new,
        "reason": why,
        "detail": {},
        "created_at": at,
    }


# -------------------------------------------------------------------------------- timing


def signed_in(base: str, email: str) -> tuple[requests.Session, str]:
    """A browser-like session signed in as this moderator, and its CSRF token."""
    http = requests.Session()
    login = http.get(f"{base}/login", timeout=30)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login.text)
    if token is None:
        raise RuntimeError("no CSRF token on the login page")
    form = {"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
    answer = http.post(f"{base}/login", data=form, timeout=30)
    page_token = re.search(r'name="csrf_token" value="([^"]+)"', answer.text)
    if answer.status_code != 200 or page_token is None:
        raise RuntimeError(f"login failed: {answer.status_code}")
    return http, page_token.group(1)


def timed(http: requests.Session, url: str, repeat: int) -> dict[str, float]:
    """Median and worst of ``repeat`` loads after one warm-up, in milliseconds."""
    http.get(url, timeout=60).raise_for_status()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = http.get(url, timeout=60)
        times.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
    return {"median_ms": statistics.median(times), "max_ms": max(times)}


def deep_cursor_url(http: requests.Session, base: str, pages: int) -> str:
    """The URL of a queue page ``pages`` pages deep, followed cursor by cursor."""
    url = f"{base}/moderate?queue=approved"
    for _ in range(pages):
        html = http.get(url, timeout=60).text
        found = re.search(r'id="more"[^>]*hx-get="([^"]+)"', html)
        if found is None:
            break
        url = base + found.group(1).replace("&amp;", "&")
    return url


def scenarios(base: str) -> dict[str, str]:
    """The pages timed, by name."""
    return {
        "held, oldest first (admin, all sites)": f"{base}/moderate",
        "held, highest score first": f"{base}/moderate?order=score",
        "approved, newest first": f"{base}/moderate?queue=approved&order=newest",
        "all, oldest first": f"{base}/moderate?queue=all",
        "held, text search 'idiot'": f"{base}/moderate?q=idiot",
        "held, one article": f"{base}/moderate?article=1&queue=all",
        "audit log": f"{base}/audit",
    }


def measure(base: str, repeat: int) -> dict[str, Any]:
    """Time every scenario, a deep page, a one-site moderator and one approval."""
    admin, token = signed_in(base, "admin@example.test")
    results = {name: timed(admin, url, repeat) for name, url in scenarios(base).items()}
    deep = deep_cursor_url(admin, base, 50)
    results["approved, 50 pages deep (keyset)"] = timed(admin, deep, repeat)
    moderator, _ = signed_in(base, "moderator@example.test")
    results["held, one-site moderator"] = timed(moderator, f"{base}/moderate", repeat)
    results["approve one comment (htmx POST)"] = time_approvals(admin, token, base, repeat)
    return results


def time_approvals(http: requests.Session, token: str, base: str, repeat: int) -> dict[str, float]:
    """Approve held comments one by one, as the keyboard does."""
    html = http.get(f"{base}/moderate", timeout=60).text
    cards = re.findall(r'data-id="([^"]+)"', html)
    versions = re.findall(r'name="version" value="([^"]+)"', html)[::2]
    headers = {"HX-Request": "true", "HX-Current-URL": f"{base}/moderate", "X-CSRFToken": token}
    times = []
    for public_id, version in list(zip(cards, versions, strict=False))[:repeat]:
        began = time.perf_counter()
        response = http.post(
            f"{base}/moderate/comments/{public_id}/approve",
            data={"version": version},
            headers=headers,
            timeout=60,
        )
        times.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
    return {"median_ms": statistics.median(times), "max_ms": max(times)}


# ---------------------------------------------------------------------------------- main


@contextmanager
def scratch_database(backend: str) -> Iterator[str]:
    """A migrated, empty database of the backend, removed afterwards."""
    if backend == "postgresql":
        with fresh_postgres() as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="moderation-bench-") as folder:
        url = f"sqlite:///{folder}/bench.sqlite3"
        upgrade_database(url)
        yield url


def screenshot(base: str, path: Path) -> None:
    """The held queue as a moderator sees it, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"{base}/login")
        page.fill("input[name=email]", "admin@example.test")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#cards .card")
        page.keyboard.press("x")  # the first selected for a bulk action, the second current
        page.screenshot(path=str(path))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--screenshot", type=Path, help="Also save a PNG of the held queue.")
    args = parser.parse_args()
    rng = random.Random(2026)
    with scratch_database(args.backend) as url:
        began = time.perf_counter()
        counts = seed(url, args.rows, rng)
        seeded_s = time.perf_counter() - began
        print(f"seeded {args.rows:,} comments on {args.backend} in {seeded_s:.1f}s: {counts}")
        settings = bench_settings(url, env="production", secret_key="bench-" + "x" * 40)
        env = environment(settings, MODERATION_SESSION_COOKIE_SECURE="false")
        env["MODERATION_RATELIMIT_ENABLED"] = "false"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = Path(tempfile.gettempdir()) / "moderation-bench-gunicorn.log"
        with running(gunicorn_command(port, workers=1), env, log):
            wait_for_http(f"{base}/healthz")
            results = measure(base, args.repeat)
            if args.screenshot:
                screenshot(base, args.screenshot)
    report(args, counts, results)


def report(args: argparse.Namespace, counts: dict[str, int], results: dict[str, Any]) -> None:
    """Print the figures and keep them under bench/results/."""
    print(f"\nqueue page load over HTTP, {args.rows:,} comments, {args.backend}, gunicorn 1 worker")
    print(f"{'page':45} {'median ms':>10} {'max ms':>8}")
    for name, figures in results.items():
        print(f"{name:45} {figures['median_ms']:10.1f} {figures['max_ms']:8.1f}")
    out = ROOT / "bench" / "results" / f"moderation_queue_{args.backend}.json"
    out.parent.mkdir(exist_ok=True)
    payload = {"rows": args.rows, "backend": args.backend, "statuses": counts, "pages": results}
    out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
