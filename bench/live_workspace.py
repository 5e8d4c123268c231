"""What the live queue costs: open workspaces polling /moderate/updates through the real app.

Seeds a scratch database (a fresh PostgreSQL one by default) with 10,000 comments, serves the
app under gunicorn, signs in five moderators' workspaces and lets each poll as the page does
(every 5 s), first on a quiet site, then while comments are held and reported (one held
comment a second, one report every two seconds); then polls flat out to find the ceiling.
Prints requests/s, ms per poll, the server's CPU per poll, and the SQL statements one poll runs:

    python -m bench.live_workspace                     # PostgreSQL, 10,000 comments
    python -m bench.live_workspace --backend sqlite --seconds 10
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from bench.moderation_queue import scratch_database, seed, signed_in
from bench.stack import (
    ROOT,
    bench_settings,
    environment,
    free_port,
    gunicorn_command,
    running,
    wait_for_http,
)
from moderation.db import make_engine, make_session_factory, unit_of_work
from moderation.models import Comment, Site, Status
from moderation.policy import LABELS
from moderation.schemas import CommentSubmission
from moderation.services.comments import submit_comment
from moderation.services.decisions import store_decisions
from moderation.services.reports import report_comment

# The queues the five workspaces keep open (admins see every site).
WORKSPACES = ("", "queue=reported", "", "order=newest", "queue=reported")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Polls:
    """What the polls of one phase measured."""

    times_ms: list[float] = field(default_factory=list)
    cards: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, ms: float, cards: int, ok: bool) -> None:
        with self.lock:
            self.times_ms.append(ms)
            self.cards += cards
            self.errors += 0 if ok else 1


class Workspace:
    """One signed-in moderator's open queue page, polling as moderation.js does."""

    def __init__(self, base: str, query: str):
        self.base = base
        self.http, _ = signed_in(base, "admin@example.test")
        page = self.http.get(f"{base}/moderate?{query}", timeout=60)
        page.raise_for_status()
        self.poll_url = _poll_url(page.text)

    def poll(self, polls: Polls) -> None:
        """One poll; the next one starts from the watermark it returns, as the page's does."""
        began = time.perf_counter()
        answer = self.http.get(
            self.base + self.poll_url, headers={"HX-Request": "true"}, timeout=60
        )
        polls.add(
            (time.perf_counter() - began) * 1000,
            answer.text.count("<article"),
            answer.status_code == 200,
        )
        if answer.status_code == 200:
            self.poll_url = _poll_url(answer.text)


def _poll_url(html: str) -> str:
    found = re.search(r'id="live" hidden hx-get="([^"]+)"', html)
    if found is None:
        raise RuntimeError("no live poller on the page")
    return found.group(1).replace("&amp;", "&")


# ------------------------------------------------------------------------------ activity


class Activity(threading.Thread):
    """Readers and the model at work: a held comment a second, a report every two seconds."""

    def __init__(self, database_url: str):
        super().__init__(daemon=True)
        self.engine = make_engine(database_url)
        self.sessions = make_session_factory(self.engine)
        self.stop = threading.Event()
        self.rng = random.Random(7)
        self.written = {"held": 0, "reports": 0}
        self.failed: BaseException | None = None
        if self.engine.dialect.name == "postgresql":
            _advance_sequences(self.engine)

    def run(self) -> None:
        tick = 0
        try:
            while not self.stop.wait(1.0):
                self._held_comment(tick)
                if tick % 2 == 0:
                    self._report(tick)
                tick += 1
        except BaseException as exc:  # reported by close(): figures without activity are wrong
            self.failed = exc

    def _held_comment(self, tick: int) -> None:
        with unit_of_work(self.sessions) as session:
            site = session.scalars(select(Site).order_by(Site.id)).first()
            data = CommentSubmission(
                article_id=f"live-{tick % 5}",
                article_title="Live story",
                author_id=f"live-reader-{tick}",
                author_name="Live Reader",
                text=f"You are an idiot, number {tick}.",
            )
            comment = submit_comment(session, site, data).comment
            store_decisions(session, {comment.id: dict.fromkeys(LABELS, 0.93)}, _BenchScorer())
        self.written["held"] += 1

    def _report(self, tick: int) -> None:
        with unit_of_work(self.sessions) as session:
            query = select(Comment).where(Comment.status == Status.APPROVED)
            comment = session.scalars(query.offset(self.rng.randrange(500)).limit(1)).one()
            site = session.get(Site, comment.site_id)
            report_comment(session, site, comment.public_id, f"bench-reader-{tick}", "spam")
        self.written["reports"] += 1

    def close(self) -> None:
        self.stop.set()
        self.join()
        self.engine.dispose()
        if self.failed is not None:
            raise RuntimeError("the activity thread failed") from self.failed


def _advance_sequences(engine: Any) -> None:
    """The seed wrote explicit ids; new rows take theirs after them."""
    with engine.begin() as connection:
        for table in ("comments", "comment_scores", "audit_events"):
            connection.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )


class _BenchScorer:
    model_name = "bench-fixed"
    model_version = "1"


# ------------------------------------------------------------------------------- phases


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of gunicorn's master and its workers so far."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if entry.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def at_cadence(spaces: list[Workspace], seconds: float, interval: float, pid: int) -> dict:
    """Each workspace polls every ``interval`` s, its first poll staggered, as pages open."""
    polls, stop = Polls(), threading.Event()

    def loop(space: Workspace, offset: float) -> None:
        if stop.wait(offset):
            return
        while not stop.is_set():
            began = time.monotonic()
            space.poll(polls)
            stop.wait(max(0.0, interval - (time.monotonic() - began)))

    return _run(spaces, seconds, pid, polls, stop, loop, interval)


def flat_out(spaces: list[Workspace], seconds: float, pid: int) -> dict:
    """Each workspace polls again as soon as its last poll answered: the ceiling."""
    polls, stop = Polls(), threading.Event()

    def loop(space: Workspace, _offset: float) -> None:
        while not stop.is_set():
            space.poll(polls)

    return _run(spaces, seconds, pid, polls, stop, loop, 0)


def _run(spaces, seconds, pid, polls, stop, loop, interval) -> dict:
    cpu_before, began = server_cpu_seconds(pid), time.perf_counter()
    offsets = [interval * n / len(spaces) for n in range(len(spaces))]
    threads = [
        threading.Thread(target=loop, args=pair) for pair in zip(spaces, offsets, strict=True)
    ]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    cpu = server_cpu_seconds(pid) - cpu_before
    times = sorted(polls.times_ms)
    return {
        "polls": len(times),
        "requests_per_s": len(times) / elapsed,
        "median_ms": statistics.median(times),
        "p95_ms": times[int(0.95 * (len(times) - 1))],
        "max_ms": times[-1],
        "server_cpu_ms_per_poll": 1000 * cpu / max(1, len(times)),
        "server_cpu_share_of_one_core": cpu / elapsed,
        "cards_delivered": polls.cards,
        "errors": polls.errors,
    }


def statements_per_poll(settings: Any) -> dict[str, int]:
    """The SQL statements one quiet poll and one busy poll run, counted in-process."""
    from moderation import create_app

    app = create_app(settings)
    logging.getLogger("moderation").setLevel(logging.WARNING)  # the figures, not request logs
    engine = app.extensions["moderation"].engine
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    client = app.test_client()
    login = client.get("/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login).group(1)
    form = {"email": "admin@example.test", "password": "bench-password-123", "csrf_token": token}
    client.post("/login", data=form)
    url = _poll_url(client.get("/moderate").text)
    seen.clear()
    client.get(url, headers={"HX-Request": "true"})
    quiet = len(seen)
    engine.dispose()
    return {"quiet poll (no change)": quiet}


# ---------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--workspaces", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args()
    with scratch_database(args.backend) as url:
        counts = seed(url, args.rows, random.Random(2026))
        print(f"seeded {args.rows:,} comments on {args.backend}: {counts}")
        settings = bench_settings(url, env="production", secret_key="bench-" + "x" * 40)
        statements = statements_per_poll(settings)
        env = environment(settings, MODERATION_SESSION_COOKIE_SECURE="false")
        env["MODERATION_RATELIMIT_ENABLED"] = "false"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = Path(tempfile.gettempdir()) / "moderation-bench-live.log"
        with running(gunicorn_command(port, workers=1), env, log) as server:
            wait_for_http(f"{base}/healthz")
            spaces = [
                Workspace(base, WORKSPACES[n % len(WORKSPACES)]) for n in range(args.workspaces)
            ]
            results = {
                "quiet, every 5 s": at_cadence(spaces, args.seconds, args.interval, server.pid)
            }
            activity = Activity(url)
            activity.start()
            try:
                results["busy, every 5 s"] = at_cadence(
                    spaces, args.seconds, args.interval, server.pid
                )
                results["busy, flat out (ceiling)"] = flat_out(spaces, args.seconds / 2, server.pid)
            finally:
                activity.close()
    report(args, statements, results, activity.written)


def report(args, statements: dict[str, int], results: dict[str, dict], written: dict) -> None:
    """Print the figures and keep them under bench/results/."""
    print(
        f"\n{args.workspaces} open workspaces on {args.rows:,} comments ({args.backend}), "
        f"gunicorn 1 sync worker, {os.cpu_count()} cores; busy phases wrote {written}"
    )
    print(f"SQL statements per poll: {statements}")
    columns = ("req/s", "median ms", "p95 ms", "max ms", "CPU ms/poll", "CPU share", "cards")
    widths = (6, 9, 7, 7, 11, 9, 6)
    print(f"{'phase':26} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    for name, row in results.items():
        print(
            f"{name:26} {row['requests_per_s']:6.1f} {row['median_ms']:9.1f} {row['p95_ms']:7.1f} "
            f"{row['max_ms']:7.1f} {row['server_cpu_ms_per_poll']:11.1f} "
            f"{100 * row['server_cpu_share_of_one_core']:8.1f}% {row['cards_delivered']:6d}"
        )
    out = ROOT / "bench" / "results" / f"live_workspace_{args.backend}.json"
    out.parent.mkdir(exist_ok=True)
    payload = {"args": vars(args), "statements": statements, "written": written, "phases": results}
    out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
