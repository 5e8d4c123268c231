"""Worker heartbeats, kept in Redis where every API process can read their age.

Each worker's main process writes one record every time Celery sends its own event
heartbeat (every 2 s, task events on) and deletes it on a clean shutdown; a worker that
hangs or dies simply stops writing, so the age of its record is the truth about it.
The worker's pool processes add the model they loaded, which only they know, how many
comments they scored, and when they are ready: a worker is ready for synchronous scoring
only once a pool process has loaded its model and scored a warm-up batch with it. Until
then it is alive but "loading model", and requests someone waits for are not sent to it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import redis

from moderation.ops.store import OpsStore

# Records of workers silent for longer than this are dropped when read.
FORGET_AFTER_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Heartbeat:
    """The last sign of life of one worker."""

    worker: str
    at: float
    pid: int | None = None
    active: int | None = None
    processed: int | None = None
    scored: int = 0
    model_name: str | None = None
    model_version: str | None = None
    ready: bool = False

    def age(self, now: float | None = None) -> float:
        """Seconds since this heartbeat."""
        return max(0.0, (now or time.time()) - self.at)

    @property
    def model(self) -> str | None:
        """``name version`` of the model a pool process loaded, if any has."""
        if not self.model_name:
            return None
        return f"{self.model_name} {self.model_version or ''}".strip()


class Heartbeats:
    """Read and write the heartbeat records of one deployment."""

    def __init__(self, store: OpsStore):
        self.store = store
        self._workers = store.key("workers")
        self._models = store.key("models")
        self._scored = store.key("scored")
        self._cards = store.key("model_cards")
        self._ready = store.key("ready")

    def beat(self, worker: str, *, active: int, processed: int, ready: bool = False) -> bool:
        """Record that this worker is alive now, and still ready when a pool process warmed
        up (so readiness survives a Redis that restarted empty); best effort."""
        now = time.time()
        record = {"at": now, "pid": os.getpid(), "active": active, "processed": processed}

        def write(pipe: Any) -> None:
            pipe.hset(self._workers, worker, json.dumps(record))
            if ready:
                pipe.hsetnx(self._ready, worker, json.dumps({"at": now, "pid": os.getpid()}))

        return self.store.write(write)

    def forget(self, worker: str) -> bool:
        """Remove a worker that is shutting down cleanly."""
        return self.store.write(partial(self._forget, [worker]))

    def _forget(self, workers: list[str], pipe: Any) -> None:
        for key in (self._workers, self._models, self._scored, self._cards, self._ready):
            pipe.hdel(key, *workers)

    def mark_ready(self, worker: str, *, name: str, version: str) -> bool:
        """A pool process of this worker loaded this model and scored a warm-up batch."""
        now = time.time()
        ready = json.dumps({"at": now, "pid": os.getpid()})
        model = json.dumps({"name": name, "version": version, "at": now})

        def write(pipe: Any) -> None:
            pipe.hset(self._models, worker, model)
            pipe.hset(self._ready, worker, ready)

        return self.store.write(write)

    def mark_loading(self, worker: str) -> bool:
        """A (re)starting worker: not ready until a pool process says so again."""
        return self.store.write(lambda pipe: pipe.hdel(self._ready, worker))

    def describe_model(self, worker: str, card: dict[str, Any]) -> bool:
        """Record the model a worker runs, its thresholds and recorded quality; best effort."""
        record = {**card, "at": time.time()}
        return self.store.write(lambda pipe: pipe.hset(self._cards, worker, json.dumps(record)))

    def model_card(self) -> dict[str, Any] | None:
        """The model described most recently by a worker that is still beating, if any."""
        try:
            cards = self.store.client.hgetall(self._cards)
            alive = set(self.store.client.hkeys(self._workers))
        except redis.RedisError:
            return None
        found = []
        for worker, raw in cards.items():
            try:
                card = json.loads(raw)
            except ValueError:
                continue
            if worker in alive:
                found.append(card)
        return max(found, key=lambda card: card.get("at", 0), default=None)

    def queue_scored(
        self, pipe: Any, *, worker: str | None, name: str, version: str, comments: int
    ) -> None:
        """Queue, on a pipeline carrying other writes, what a pool process scored and with what.

        Celery counts no celery-batches call as processed, so the worker counts comments.
        """
        record = {"name": name, "version": version, "at": time.time()}
        field = worker or f"{socket.gethostname()}:{os.getpid()}"
        pipe.hset(self._models, field, json.dumps(record))
        pipe.hincrby(self._scored, field, comments)

    def all(self, now: float | None = None) -> list[Heartbeat]:
        """Every worker heard from within a day, newest first; raises if Redis does not answer."""
        now = now or time.time()
        pipe = self.store.client.pipeline(transaction=False)
        for key in (self._workers, self._models, self._scored):
            pipe.hgetall(key)
        pipe.hkeys(self._ready)
        workers, models, scored, ready = pipe.execute()
        beats, stale = [], []
        for raw_name, raw in workers.items():
            name = raw_name.decode()
            beat = _parse(name, raw, models.get(raw_name), scored.get(raw_name))
            if beat is not None and raw_name in ready:
                beat = replace(beat, ready=True)
            if beat is None or now - beat.at > FORGET_AFTER_SECONDS:
                stale.append(name)
            else:
                beats.append(beat)
        if stale:
            self.store.write(partial(self._forget, stale))
        return sorted(beats, key=lambda beat: -beat.at)


def any_alive(store: OpsStore, max_age: float) -> bool:
    """True when some worker beat within ``max_age`` seconds, or when Redis cannot tell.

    One HVALS of a few small records; a Redis error counts as alive, so that the caller's
    own attempt finds and reports the outage.
    """
    try:
        records = store.client.hvals(store.key("workers"))
    except redis.RedisError:
        return True
    now = time.time()
    for raw in records:
        try:
            if now - float(json.loads(raw)["at"]) <= max_age:
                return True
        except (ValueError, KeyError, TypeError):
            continue
    return False


def any_ready(store: OpsStore, max_age: float) -> bool:
    """True when some worker beat within ``max_age`` seconds and has warmed its model, or
    when Redis cannot tell (the caller's own attempt then finds and reports the outage)."""
    try:
        pipe = store.client.pipeline(transaction=False)
        pipe.hgetall(store.key("workers"))
        pipe.hkeys(store.key("ready"))
        records, ready = pipe.execute()
    except redis.RedisError:
        return True
    now = time.time()
    for name in set(records) & set(ready):
        try:
            if now - float(json.loads(records[name])["at"]) <= max_age:
                return True
        except (ValueError, KeyError, TypeError):
            continue
    return False


def _parse(
    worker: str, raw: bytes, raw_model: bytes | None, raw_scored: bytes | None
) -> Heartbeat | None:
    try:
        record = json.loads(raw)
        model = json.loads(raw_model) if raw_model else {}
        return Heartbeat(
            worker=worker,
            at=float(record["at"]),
            pid=record.get("pid"),
            active=record.get("active"),
            processed=record.get("processed"),
            scored=int(raw_scored or 0),
            model_name=model.get("name"),
            model_version=model.get("version"),
        )
    except (ValueError, KeyError, TypeError):
        return None
