"""Database and Redis round trips, and where the time goes, per accepted comment.

Posts comments to ``POST /api/v1/comments`` through the app in this process (Flask's test
client, PostgreSQL, the Redis at BENCH_BROKER_URL) and counts, per request, every statement,
``BEGIN``, commit and connection ping sent to the database and every command (or pipeline)
sent to Redis, by instrumenting SQLAlchemy's events and redis-py's connection. Also splits
each request's time into database, Redis, task sending and everything else.

    python -m bench.round_trips [--requests 300] [--list]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis.connection
from sqlalchemy import event

from bench.stack import bench_settings, fresh_postgres, new_site_key
from bench.workload import comment_texts


@dataclass
class Tally:
    """What one request sent, and how long it waited on each."""

    db: list[str] = field(default_factory=list)
    redis: list[str] = field(default_factory=list)
    db_s: float = 0.0
    redis_s: float = 0.0
    send_s: float = 0.0


class Probe:
    """Counts round trips of one engine and of every redis-py connection in this process."""

    def __init__(self, engine) -> None:
        self.tally = Tally()
        self._names: list[str] = []
        self._started: dict[int, float] = {}
        self._listen(engine)
        self._patch_redis()

    def _listen(self, engine) -> None:
        ping = engine.dialect.do_ping

        def counted_ping(dbapi_connection):
            self.tally.db.append("ping (a connection idle a while)")
            return ping(dbapi_connection)

        engine.dialect.do_ping = counted_ping

        @event.listens_for(engine, "begin")
        def _begin(_conn) -> None:
            self.tally.db.append("BEGIN")

        @event.listens_for(engine, "commit")
        def _commit(_conn) -> None:
            self.tally.db.append("COMMIT")

        @event.listens_for(engine, "rollback")
        def _rollback(_conn) -> None:
            self.tally.db.append("ROLLBACK")

        @event.listens_for(engine, "before_cursor_execute")
        def _before(_conn, _cursor, statement, *_args) -> None:
            self.tally.db.append(" ".join(statement.split()[:6]))
            self._started[id(statement)] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _after(_conn, _cursor, statement, *_args) -> None:
            started = self._started.pop(id(statement), None)
            if started is not None:
                self.tally.db_s += time.perf_counter() - started

    def _patch_redis(self) -> None:
        probe = self
        connection = redis.connection.AbstractConnection
        serializer = redis.connection.PythonRespSerializer
        pack, send, read = serializer.pack, connection.send_packed_command, connection.read_response

        def pack_command(packer, *args):
            name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
            probe._names.append(name.split()[0].upper())
            return pack(packer, *args)

        def send_packed_command(conn, command, check_health=True):
            started = time.perf_counter()
            names, probe._names = probe._names, []
            probe.tally.redis.append("+".join(_squeeze(names)) or "?")
            try:
                return send(conn, command, check_health)
            finally:
                probe.tally.redis_s += time.perf_counter() - started

        def read_response(conn, *args, **kwargs):
            started = time.perf_counter()
            try:
                return read(conn, *args, **kwargs)
            finally:
                probe.tally.redis_s += time.perf_counter() - started

        serializer.pack = pack_command

        def restore() -> None:
            serializer.pack = pack
            connection.send_packed_command, connection.read_response = send, read

        self.close = restore
        connection.send_packed_command = send_packed_command
        connection.read_response = read_response

    @contextmanager
    def request(self) -> Iterator[Tally]:
        """Count what happens inside the block."""
        self.tally = Tally()
        yield self.tally


def _squeeze(names: list[str]) -> list[str]:
    counts = Counter(names)
    return [f"{name}x{counts[name]}" if counts[name] > 1 else name for name in dict.fromkeys(names)]


def _time_sends(app, probe: Probe) -> None:
    from moderation.app_state import EXTENSION_KEY

    tasks = app.extensions[EXTENSION_KEY].tasks
    for name in ("send_for_scoring", "enqueue_for_scoring"):
        original = getattr(tasks, name, None)
        if original is None:
            continue

        def timed(*args, _original=original, **kwargs):
            started, waited = time.perf_counter(), probe.tally.redis_s
            try:
                return _original(*args, **kwargs)
            finally:
                # Python-side cost only: its wait on Redis is counted as Redis.
                elapsed = time.perf_counter() - started
                probe.tally.send_s += elapsed - (probe.tally.redis_s - waited)

        setattr(tasks, name, timed)


def measure(requests: int) -> dict:
    """Post ``requests`` comments; the round trips of the last one and mean costs of all."""

    texts, _ = comment_texts(requests + 20)
    logging.disable(logging.INFO)
    try:
        return _measure(texts)
    finally:
        logging.disable(logging.NOTSET)


def _measure(texts: list[str]) -> dict:
    from moderation import create_app
    from moderation.app_state import EXTENSION_KEY

    with fresh_postgres() as database_url:
        settings = bench_settings(database_url)
        key = new_site_key(settings)
        app = create_app(settings)
        probe = Probe(app.extensions[EXTENSION_KEY].engine)
        _time_sends(app, probe)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        run = uuid.uuid4().hex[:6]
        tallies, walls = [], []
        for i, text in enumerate(texts):
            body = {
                "article_id": f"article-{i % 20}",
                "author_id": f"{run}-{i}",
                "author_name": "Reader",
                "text": text,
            }
            with probe.request() as tally:
                started = time.perf_counter()
                answer = client.post("/api/v1/comments", json=body, headers=headers)
                wall = time.perf_counter() - started
            if answer.status_code != 202:
                raise RuntimeError(f"{answer.status_code}: {answer.get_data(as_text=True)}")
            if i >= 20:  # after warm-up: connections open, caches filled
                tallies.append(tally)
                walls.append(wall)
        _drain_buffers(app)
        probe.close()
        app.extensions[EXTENSION_KEY].tasks.close()
        app.extensions[EXTENSION_KEY].engine.dispose()
    last = tallies[-1]
    wall_ms = statistics.fmean(walls) * 1000
    db_ms = statistics.fmean(t.db_s for t in tallies) * 1000
    redis_ms = statistics.fmean(t.redis_s for t in tallies) * 1000
    send_ms = statistics.fmean(t.send_s for t in tallies) * 1000
    return {
        "requests": len(tallies),
        "db_round_trips": statistics.fmean(len(t.db) for t in tallies),
        "redis_round_trips": statistics.fmean(len(t.redis) for t in tallies),
        "db_statements_last": last.db,
        "redis_commands_last": last.redis,
        "ms_per_request": wall_ms,
        "ms_database": db_ms,
        "ms_redis": redis_ms,
        "ms_task_send": send_ms,
        "ms_other": wall_ms - db_ms - redis_ms - send_ms,
    }


def _drain_buffers(app) -> None:
    from moderation.app_state import EXTENSION_KEY

    flush = getattr(app.extensions[EXTENSION_KEY].tasks, "flush", None)
    if flush is not None:
        flush()


def print_report(figures: dict, listing: bool) -> None:
    """The counts, the split of a request's time and, with ``listing``, every round trip."""
    print(
        f"per accepted comment (mean of {figures['requests']}): "
        f"{figures['db_round_trips']:.1f} database and "
        f"{figures['redis_round_trips']:.1f} Redis round trips; "
        f"{figures['ms_per_request']:.2f} ms in process = database "
        f"{figures['ms_database']:.2f} + Redis {figures['ms_redis']:.2f} "
        f"+ building the task message {figures['ms_task_send']:.2f} "
        f"+ other {figures['ms_other']:.2f}"
    )
    if listing:
        print("database:", *figures["db_statements_last"], sep="\n  ")
        print("redis:", *figures["redis_commands_last"], sep="\n  ")


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--list", action="store_true", help="print each round trip")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.requests)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_report(figures, args.list)


if __name__ == "__main__":
    main()
