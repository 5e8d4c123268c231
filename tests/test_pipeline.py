"""The whole pipeline on real parts: HTTP -> database -> Redis -> Celery worker -> Detoxify."""

from __future__ import annotations

import json
import shutil
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from moderation.db import utcnow
from moderation.models import AuditEvent, Comment, CommentScore, Status
from moderation.policy import LABELS
from moderation.tasks_client import SWEEP_PENDING, TaskQueue
from tests.conftest import ping_worker
from tests.support import WorkerProcess, serving, settings_for_tests, wait_until

pytestmark = pytest.mark.e2e

CLEAN = [
    "Thank you for this thoughtful and well researched article.",
    "I think the council made the right call on the new bike lanes.",
    "Great reporting, I learned a lot about the housing market here.",
    "My grandmother lived through the same flood in 1953, what memories.",
    "Does anyone know when the new library opens on weekends?",
    "I respectfully disagree; the data on tax cuts points the other way.",
    "Congratulations to the local team on a fantastic season.",
    "The photos of the coastline in this piece are beautiful.",
    "Interesting point about interest rates, I had not considered that.",
    "Could the paper follow up on what happens to the old hospital site?",
    "This recipe worked perfectly for our family dinner, thanks.",
    "The school board meeting is on Thursday if anyone wants to attend.",
    "Well written and balanced, a pleasure to read on a Sunday morning.",
    "I was at the concert last night and the orchestra was wonderful.",
    "Good to see more investment in public transport in rural areas.",
    "The author makes a fair case, although I would like more sources.",
    "Our street had the same problem with potholes last winter.",
    "Happy to see the museum extending its opening hours this summer.",
    "This is a useful summary of a complicated budget debate.",
    "I appreciate that the article included voices from both sides.",
    "What a lovely story about the volunteers at the food bank.",
    "The weather forecast for the marathon looks promising.",
    "Thanks for explaining the new recycling rules so clearly.",
    "I hope the bridge repairs finish before the holiday traffic.",
    "Nice to read some good news for a change.",
]
ABUSIVE = [
    "You are a complete idiot and nobody wants to hear from you.",
    "Shut up, you pathetic moron.",
    "What a stupid, worthless piece of garbage writer.",
    "Anyone who believes this is a brain-dead fool.",
    "You disgusting pig, crawl back under your rock.",
    "I hope someone beats you senseless, you scum.",
    "This author is a lying idiot and a total loser.",
    "Go to hell, you ignorant clown.",
    "You're too dumb to read, you absolute imbecile.",
    "Fuck off, nobody cares about your idiotic opinion.",
    "What a moronic, hateful little troll you are.",
    "You stupid bastard, get lost.",
    "People like you are vermin and should be wiped out.",
    "Only a retarded idiot would write this crap.",
    "You are a filthy disgusting liar and a coward.",
    "I will find you and make you pay, you piece of shit.",
    "Pathetic losers like you make me sick.",
    "This is the dumbest garbage I have ever read, you fool.",
    "You ugly stupid moron, shut your mouth.",
    "Idiots like the author should be fired and shamed.",
    "Get out of here, you worthless scumbag.",
    "You're a brainless cretin and a disgrace.",
    "What an arrogant jerk, you are a joke.",
    "Screw you and your idiotic friends.",
    "You people are animals and deserve nothing.",
]


def post_comment(url: str, key: str, text: str, article: str = "e2e/article") -> str:
    response = requests.post(
        f"{url}/api/v1/comments",
        json={"article_id": article, "author_id": "reader", "author_name": "R", "text": text},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    return response.json()["id"]


def undecided(sessions) -> int:
    with sessions() as session:
        return len(
            session.scalars(select(Comment.id).where(Comment.status == Status.PENDING)).all()
        )


def test_fifty_comments_are_decided_by_the_real_worker(
    worker, live_server, site_key, sessions, model_dir
):
    started = time.monotonic()
    ids = {
        post_comment(live_server.url, site_key, text): text in ABUSIVE for text in CLEAN + ABUSIVE
    }
    assert wait_until(lambda: undecided(sessions) == 0, timeout=180), "comments left pending"
    elapsed = time.monotonic() - started
    with sessions() as session:
        comments = session.scalars(select(Comment)).all()
        scores = session.scalars(select(CommentScore)).all()
        events = session.scalars(select(AuditEvent)).all()
    flagged = {c.public_id: c.status != Status.APPROVED for c in comments}
    abusive_rate = sum(flagged[i] for i, bad in ids.items() if bad) / len(ABUSIVE)
    clean_rate = sum(flagged[i] for i, bad in ids.items() if not bad) / len(CLEAN)
    print(
        f"\n50 comments decided in {elapsed:.1f}s ({50 / elapsed:.1f} decisions/s, "
        f"model load included); held: abusive {abusive_rate:.0%}, clean {clean_rate:.0%}"
    )
    assert abusive_rate >= 0.7
    assert clean_rate <= 0.2
    assert len(scores) == 50 * len(LABELS)
    meta = json.loads((model_dir / "meta.json").read_text())
    assert {(s.model_name, s.model_version) for s in scores} == {(meta["name"], meta["version"])}
    assert len(events) == 50 and {e.actor_type for e in events} == {"system"}


def test_the_decision_is_readable_over_the_api(worker, live_server, site_key, sessions):
    comment_id = post_comment(live_server.url, site_key, ABUSIVE[0])
    headers = {"Authorization": f"Bearer {site_key}"}

    def decided() -> dict | None:
        body = requests.get(
            f"{live_server.url}/api/v1/comments/{comment_id}", headers=headers, timeout=10
        ).json()
        return body if body["status"] != "pending" else None

    assert wait_until(lambda: decided() is not None, timeout=60)
    body = decided()
    assert body["status"] == "held"
    assert set(body["scores"]) == set(LABELS)
    assert body["decision"]["reasons"][0]["message"].startswith(
        body["decision"]["reasons"][0]["label"]
    )
    assert body["model"]["name"] and body["model"]["version"]


def test_a_held_comment_s_sentences_are_explained_by_the_worker_after_its_decision(
    worker, live_server, site_key, sessions
):
    text = f"{CLEAN[0]} {ABUSIVE[0]}"
    comment_id = post_comment(live_server.url, site_key, text)

    def stored() -> Comment | None:
        with sessions() as session:
            comment = session.scalars(select(Comment).where(Comment.public_id == comment_id)).one()
            return comment if comment.sentence_scores is not None else None

    # The explanation task, from the explanation queue, fills in which sentence drove it.
    assert wait_until(lambda: stored() is not None, timeout=120)
    comment = stored()
    assert comment.status == Status.HELD
    spans = [text[s["begin"] : s["end"]] for s in comment.sentence_scores]
    assert spans == [CLEAN[0], ABUSIVE[0]]
    clean, abusive = (s["scores"]["toxicity"] for s in comment.sentence_scores)
    assert abusive > 0.5 > clean


def test_a_comment_accepted_while_the_broker_is_down_is_swept_up(
    worker, settings, site_key, sessions, broker
):
    unreachable = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    with serving(unreachable) as server:
        started = time.monotonic()
        comment_id = post_comment(server.url, site_key, CLEAN[0])
        assert time.monotonic() - started < 5
    # Accepted and committed, but no message reached the real broker: only the sweeper can.
    assert undecided(sessions) == 1
    assert broker.llen(settings.task_queue) == 0
    with sessions() as session:
        session.execute(update(Comment).values(created_at=utcnow() - timedelta(hours=1)))
        session.commit()
    TaskQueue(settings).celery.send_task(
        SWEEP_PENDING, queue=settings.task_queue, ignore_result=True
    )
    assert wait_until(lambda: undecided(sessions) == 0, timeout=60)
    with sessions() as session:
        comment = session.scalars(select(Comment).where(Comment.public_id == comment_id)).one()
    assert comment.status == Status.APPROVED


def test_a_model_that_cannot_load_holds_comments_as_scoring_failed(
    database_url, site_key, sessions, tmp_path, model_dir
):
    # Every file is in place, so the worker starts; the MiniLM checkpoint is damaged, so the
    # model fails when the first batch loads it.
    broken = tmp_path / "broken-model"
    shutil.copytree(model_dir, broken, ignore=shutil.ignore_patterns("model.ckpt"))
    (broken / "minilm" / "model.ckpt").write_bytes(b"not a checkpoint")
    settings = settings_for_tests(database_url, broken)
    process = WorkerProcess(settings, tmp_path / "worker.log")
    process.start(ping_worker(settings))
    try:
        with serving(settings) as server:
            post_comment(server.url, site_key, CLEAN[1])
            assert wait_until(lambda: undecided(sessions) == 0, timeout=60)
    finally:
        process.stop()
    with sessions() as session:
        comment = session.scalars(select(Comment)).one()
        event = session.scalars(select(AuditEvent)).one()
    assert comment.status == Status.HELD
    assert comment.reasons == [
        {
            "code": "scoring_failed",
            "label": None,
            "score": None,
            "threshold": None,
            "message": "scoring failed",
        }
    ]
    assert event.reason == "scoring_failed"
    assert "retry" in process.log_path.read_text().lower()


def test_a_comment_reaching_an_idle_worker_is_scored_at_once_not_at_the_flush_interval(
    database_url, site_key, sessions, tmp_path, model_dir
):
    # The buffer's timer would flush only after 10 s: the idle pool process takes it at once.
    settings = settings_for_tests(database_url, model_dir, scoring_batch_wait=10.0)
    process = WorkerProcess(settings, tmp_path / "worker.log")
    process.start(ping_worker(settings))
    try:
        queue = TaskQueue(settings)
        try:
            queue.score_now(["warming up"], timeout=300)  # the pool process loads the model
        finally:
            queue.close()
        with serving(settings) as server:
            for text in CLEAN[:3]:
                post_comment(server.url, site_key, text)
                assert wait_until(lambda: undecided(sessions) == 0, timeout=8)
    finally:
        process.stop()
    with sessions() as session:
        assert {c.status for c in session.scalars(select(Comment))} == {Status.APPROVED}
