"""The cheap ingest path: site and article copies, one message for many comments, the
per-author windows asked in one round trip."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import timedelta

import pytest
from limits import parse_many
from sqlalchemy import event, select

from moderation.db import unit_of_work, utcnow
from moderation.limits import AUTHOR_SCOPE, limiter
from moderation.models import Article, AuthorSanction, Comment, Status
from moderation.services.integration import AuthorHistory, author_history
from moderation.services.sites import create_site, rotate_api_key, site_by_name
from moderation.tasks_client import (
    COMMENT_REQUESTS,
    SCORE_COMMENTS,
    DirectPublisher,
    SendBuffer,
    TaskQueue,
)
from tests.support import MODEL_PATH, app_with, settings_for_tests, wait_until


def body(i: int = 0, article: str = "a1", **extra) -> dict:
    return {
        "article_id": article,
        "author_id": f"u{i}",
        "author_name": "U",
        "text": f"t{i}",
    } | extra


def new_site(sessions) -> tuple[str, str]:
    name = f"site-{uuid.uuid4().hex[:8]}"
    with unit_of_work(sessions) as session:
        return name, create_site(session, name)[1]


def statements_on(engine, table: str) -> list[str]:
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if f"FROM {table}" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    return seen


def test_a_known_key_and_article_are_not_read_again(client, sessions):
    _name, key = new_site(sessions)
    auth = {"Authorization": f"Bearer {key}"}
    # The first creates the article, the second reads it (a row only a transaction that
    # may roll back wrote is never kept).
    for i in range(2):
        assert client.post("/api/v1/comments", json=body(i), headers=auth).status_code == 202
    engine = client.application.extensions["moderation"].engine
    sites, articles = statements_on(engine, "sites"), statements_on(engine, "articles")
    for i in range(2, 4):
        assert client.post("/api/v1/comments", json=body(i), headers=auth).status_code == 202
    assert (sites, articles) == ([], [])
    with sessions() as session:
        assert len(session.scalars(select(Comment)).all()) == 4


def test_a_rotated_key_stops_working_at_once(client, sessions):
    name, old = new_site(sessions)
    assert client.post("/api/v1/comments", json=body(0), headers=_bearer(old)).status_code == 202
    with unit_of_work(sessions) as session:
        new = rotate_api_key(session, site_by_name(session, name))
    assert client.post("/api/v1/comments", json=body(1), headers=_bearer(old)).status_code == 401
    assert client.post("/api/v1/comments", json=body(2), headers=_bearer(new)).status_code == 202


def test_closing_a_known_article_refuses_its_next_comment(client, sessions):
    _name, key = new_site(sessions)
    assert client.post("/api/v1/comments", json=body(0), headers=_bearer(key)).status_code == 202
    assert client.post("/api/v1/comments", json=body(1), headers=_bearer(key)).status_code == 202
    closed = client.patch(
        "/api/v1/articles/a1/settings", json={"closed": True}, headers=_bearer(key)
    )
    assert closed.status_code == 200
    refused = client.post("/api/v1/comments", json=body(2), headers=_bearer(key))
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "article_closed")


def test_a_new_title_is_stored_for_a_known_article(client, sessions):
    _name, key = new_site(sessions)
    for i, title in enumerate(["First", "First", "Second"]):
        answer = client.post(
            "/api/v1/comments", json=body(i, article_title=title), headers=_bearer(key)
        )
        assert answer.status_code == 202
    with sessions() as session:
        assert session.scalars(select(Article.title)).one() == "Second"


def test_ids_that_arrive_during_a_send_go_together_in_the_next_message():
    sent: list[list[int]] = []
    first_send_started, release_first_send = threading.Event(), threading.Event()

    def send(ids, _requests):
        sent.append(list(ids))
        if len(sent) == 1:
            first_send_started.set()
            assert release_first_send.wait(10)
        return True

    buffer = SendBuffer(send, size=32)
    first = threading.Thread(target=buffer.add, args=([1],))
    first.start()
    assert first_send_started.wait(10)
    # A send is under way: these return at once, their ids held for the next message.
    for ids in ([2], [3, 4]):
        adder = threading.Thread(target=buffer.add, args=(ids,))
        adder.start()
        adder.join(10)
        assert not adder.is_alive()
    assert sent == [[1]]
    release_first_send.set()
    first.join(10)
    assert sent == [[1], [2, 3, 4]]


def test_no_id_is_left_behind_when_many_threads_add_at_once():
    sent: list[int] = []
    lock = threading.Lock()

    def send(ids, _requests):
        with lock:
            sent.extend(ids)
        return True

    buffer = SendBuffer(send, size=4)
    expected = list(range(8 * 250))

    def adder(start: int) -> None:
        for i in range(start, start + 250):
            buffer.add([i])

    threads = [threading.Thread(target=adder, args=(n * 250,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # No flush: every id must go on its own, from whichever thread was sending.
    assert wait_until(lambda: sorted(sent) == expected, timeout=10, interval=0.01)


def test_an_id_added_as_the_sender_finds_nothing_left_is_still_sent():
    # The worst moment for an id to arrive: the sending thread has found nothing left to
    # send and is about to stand down. Every id added must still be sent, by the sender
    # or by the thread that added it.
    sent: list[int] = []
    added: list[int] = [1]
    buffer = SendBuffer(lambda ids, _requests: sent.extend(ids) or True, size=32)
    adders: set[threading.Thread] = set()
    found_nothing_at: dict[threading.Thread, int] = {}

    def add_from_another_thread(comment_id: int) -> None:
        added.append(comment_id)
        adder = threading.Thread(target=buffer.add, args=([comment_id],))
        adders.add(adder)
        adder.start()
        adder.join(10)

    class RacingCondition(threading.Condition):
        def __enter__(self):
            me = threading.current_thread()
            if me not in adders and buffer._sending and not buffer._ids:
                # The same thread takes the lock again with nothing sent since it last
                # found nothing: it is standing down. Add an id right then, once.
                if found_nothing_at.get(me) == len(sent) and len(added) == 1:
                    add_from_another_thread(2)
                found_nothing_at[me] = len(sent)
            return super().__enter__()

    buffer._idle = RacingCondition()
    buffer.add([1])
    assert wait_until(lambda: sorted(sent) == sorted(added), timeout=5, interval=0.01)


def test_a_request_sends_for_others_a_bounded_number_of_times():
    sent: list[tuple[list[int], str]] = []
    first_send_started, release_first_send = threading.Event(), threading.Event()

    def send(ids, _requests):
        sent.append((list(ids), threading.current_thread().name))
        if len(sent) == 1:
            first_send_started.set()
            assert release_first_send.wait(10)
        return True

    buffer = SendBuffer(send, size=1)
    caller = threading.Thread(target=buffer.add, args=([1],), name="request")
    caller.start()
    assert first_send_started.wait(10)
    for i in range(2, 6):
        buffer.add([i])  # a send is under way: queued, returns at once
    release_first_send.set()
    caller.join(10)
    assert wait_until(lambda: len(sent) == 5, timeout=10, interval=0.01)
    assert [ids for ids, _ in sent] == [[1], [2], [3], [4], [5]]
    senders = [name for _, name in sent]
    assert senders[: SendBuffer.ROUNDS_PER_CALLER] == ["request"] * SendBuffer.ROUNDS_PER_CALLER
    assert set(senders[SendBuffer.ROUNDS_PER_CALLER :]) == {"scoring-sender"}


def test_no_message_carries_more_than_its_size():
    sent: list[list[int]] = []
    buffer = SendBuffer(lambda ids, _requests: sent.append(list(ids)) or True, size=2)
    buffer.add([1, 2, 3])
    assert sent == [[1, 2], [3]]


def test_a_message_that_raises_does_not_stop_later_sends():
    sent: list[list[int]] = []

    def send(ids, _requests):
        if ids == [1]:
            raise ConnectionError("broker gone")
        sent.append(list(ids))
        return True

    buffer = SendBuffer(send, size=32)
    with pytest.raises(ConnectionError):
        buffer.add([1])
    buffer.add([2])
    assert sent == [[2]]


def test_each_comment_is_on_the_broker_before_the_answer(database_url, broker, sessions):
    # A single request at a time (a sync web worker) never waits for anyone: its id is sent
    # before its answer, as one message.
    with app_with(database_url, broker) as app:
        queue = app.extensions["moderation"].settings.task_queue
        with unit_of_work(app.extensions["moderation"].sessions) as session:
            key = create_site(session, f"s-{uuid.uuid4().hex[:8]}")[1]
        web = app.test_client()
        for i in range(2):
            answer = web.post("/api/v1/comments", json=body(i), headers=_bearer(key))
            assert answer.status_code == 202
            assert broker.llen(queue) == i + 1
        raw = broker.lrange(queue, 0, -1)[-1]  # the oldest: LPUSH puts the newest first
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        assert message["headers"]["task"] == "moderation.score_comments"
        with sessions() as session:
            first = session.scalars(select(Comment.id).order_by(Comment.id)).first()
        assert args == [[first]]


def test_a_refused_comment_takes_no_entry_in_the_longer_window(database_url, broker, sessions):
    with app_with(database_url, broker, ratelimit_author="2/minute;5/hour") as app:
        with unit_of_work(app.extensions["moderation"].sessions) as session:
            site, key = create_site(session, f"s-{uuid.uuid4().hex[:8]}")
            site_id = site.id
        web, author = app.test_client(), f"author-{uuid.uuid4().hex[:6]}"
        answers = [
            web.post("/api/v1/comments", json=body(i, author_id=author), headers=_bearer(key))
            for i in range(3)
        ]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert int(answers[2].headers["Retry-After"]) >= 1
        with app.app_context():
            from hashlib import sha256

            who = f"{site_id}:{sha256(author.encode()).hexdigest()[:32]}"
            hour = parse_many("5/hour")[0]
            remaining = limiter.limiter.get_window_stats(hour, AUTHOR_SCOPE, who).remaining
        assert remaining == 3  # two comments stored, the refused one not counted


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_author_s_standing_and_recent_texts_are_one_query(client, sessions):
    _name, key = new_site(sessions)
    auth = _bearer(key)
    assert client.post("/api/v1/comments", json=body(0), headers=auth).status_code == 202
    engine = client.application.extensions["moderation"].engine
    reads = statements_on(engine, "")
    assert (
        client.post("/api/v1/comments", json=body(0, text="again"), headers=auth).status_code == 202
    )
    touching = [s for s in reads if "author_sanctions" in s or "FROM comments" in s]
    assert len(touching) == 1


def test_author_history_reads_sanctions_not_lifted_and_the_latest_texts_first(sessions):
    name, _key = new_site(sessions)
    other_name, _other_key = new_site(sessions)
    now = utcnow()
    with unit_of_work(sessions) as session:
        site, other = site_by_name(session, name), site_by_name(session, other_name)
        article = Article(site_id=site.id, external_id="a1")
        session.add(article)
        session.flush()
        for minutes, author, text in [
            (1, "u1", "newest"),
            (5, "u1", "older"),
            (90, "u1", "old"),
            (1, "u2", "someone else"),
        ]:
            session.add(
                Comment(
                    site_id=site.id,
                    article_id=article.id,
                    author_id=author,
                    author_name="U",
                    text=text,
                    status=Status.PENDING,
                    created_at=now - timedelta(minutes=minutes),
                )
            )
        lifted = dict(kind="ban", reason="r", created_by="m@example.org", lifted_at=now)
        session.add(AuthorSanction(site_id=site.id, author_id="u1", **lifted))
        session.add(
            AuthorSanction(
                site_id=other.id, author_id="u1", kind="ban", reason="r", created_by="m@example.org"
            )
        )
        session.add(
            AuthorSanction(
                site_id=site.id, author_id="u3", kind="warn", reason="r", created_by="m@example.org"
            )
        )
    with sessions() as session:
        site = site_by_name(session, name)
        assert author_history(session, site, "u1", 3600) == AuthorHistory(
            sanctioned=False, recent_texts=["newest", "older"]
        )
        assert author_history(session, site, "u3", 3600) == AuthorHistory(True, [])
        assert author_history(session, site, "u3", 0) == AuthorHistory(True, [])
        assert author_history(session, site, "u1", 0) == AuthorHistory(False, [])


def test_a_direct_scoring_message_is_what_kombu_would_have_put_on_the_queue(database_url, broker):
    settings = settings_for_tests(database_url, MODEL_PATH)
    queue = TaskQueue(settings)
    try:
        queue.celery.send_task(
            SCORE_COMMENTS,
            args=[[7, 8]],
            queue=settings.task_queue,
            retry=False,
            ignore_result=True,
            headers={COMMENT_REQUESTS: {"7": "r1"}},
        )
        assert queue.send_for_scoring([7, 8], {7: "r1"})
        by_kombu, direct = (
            json.loads(raw) for raw in broker.lrange(settings.task_queue, 0, -1)[::-1]
        )
    finally:
        broker.delete(settings.task_queue)
        queue.close()
    assert _without_ids(direct) == _without_ids(by_kombu)
    assert base64.b64decode(direct["body"]) == base64.b64decode(by_kombu["body"])
    assert direct["headers"]["id"] == direct["properties"]["correlation_id"]
    assert direct["properties"]["delivery_tag"] != by_kombu["properties"]["delivery_tag"]


def _without_ids(envelope: dict) -> dict:
    headers = {k: v for k, v in envelope["headers"].items() if k not in ("id", "root_id")}
    properties = {
        k: v
        for k, v in envelope["properties"].items()
        if k not in ("correlation_id", "delivery_tag")
    }
    return envelope | {"headers": headers, "properties": properties}


def test_only_a_plain_redis_broker_takes_messages_directly():
    assert DirectPublisher.serves("redis://127.0.0.1:6379/0")
    assert DirectPublisher.serves("rediss://broker.example:6380/0")
    assert not DirectPublisher.serves("sentinel://127.0.0.1:26379")
    assert not DirectPublisher.serves("amqp://guest@127.0.0.1//")
