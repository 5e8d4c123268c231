"""Deciding comments: the worker-side use cases on each database backend."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from moderation.db import unit_of_work, utcnow
from moderation.models import Article, AuditEvent, Comment, CommentScore, Site, Status
from moderation.policy import LABELS, SitePolicy
from moderation.schemas import CommentSubmission
from moderation.services.comments import submit_comment
from moderation.services.decisions import (
    mark_scoring_failed,
    score_and_decide,
    stale_pending_ids,
    store_decisions,
)
from moderation.services.sites import create_site
from tests.fakes import BrokenScorer, KeywordScorer


def add_comments(sessions, *texts, policy=None, article="a-1") -> list[int]:
    with unit_of_work(sessions) as session:
        site = session.scalars(select(Site)).one_or_none() or create_site(session, "s", policy)[0]
        ids = []
        for i, text in enumerate(texts):
            data = CommentSubmission(
                article_id=article, author_id=f"u{i}", author_name="U", text=text
            )
            ids.append(submit_comment(session, site, data).comment.id)
        session.flush()
        return ids


def statuses(sessions) -> dict[str, str]:
    with sessions() as session:
        return dict(session.execute(select(Comment.text, Comment.status)).all())


def audit_count(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


def test_a_batch_is_scored_in_one_call_and_each_comment_decided(sessions):
    ids = add_comments(sessions, "Nice piece.", "You idiot.")
    scorer = KeywordScorer()
    assert score_and_decide(sessions, ids, scorer) == 2
    assert scorer.batches == [["Nice piece.", "You idiot."]]
    assert statuses(sessions) == {"Nice piece.": Status.APPROVED, "You idiot.": Status.HELD}
    with sessions() as session:
        held = session.scalars(select(Comment).where(Comment.status == Status.HELD)).one()
        assert held.reasons[0]["message"] == "toxicity 0.97 >= hold at 0.50"
        assert held.top_score == pytest.approx(0.97)
        assert held.decided_at is not None and held.decided_at.tzinfo is not None


def test_every_label_is_stored_with_the_model_also_for_passing_comments(sessions):
    ids = add_comments(sessions, "Nice piece.")
    score_and_decide(sessions, ids, KeywordScorer())
    with sessions() as session:
        rows = session.scalars(select(CommentScore)).all()
    assert sorted(r.label for r in rows) == sorted(LABELS)
    assert {(r.model_name, r.model_version) for r in rows} == {("keyword-fake", "1")}


def test_each_decision_writes_one_system_audit_event(sessions):
    ids = add_comments(sessions, "You idiot.")
    score_and_decide(sessions, ids, KeywordScorer())
    with sessions() as session:
        event = session.scalars(select(AuditEvent)).one()
    assert (event.actor_type, event.from_status, event.to_status, event.reason) == (
        "system",
        "pending",
        "held",
        "scored",
    )
    assert event.detail["reasons"][0]["label"] == "toxicity"


def test_scoring_again_is_a_no_op(sessions):
    ids = add_comments(sessions, "Nice piece.", "You idiot.")
    score_and_decide(sessions, ids, KeywordScorer())
    scorer = KeywordScorer()
    assert score_and_decide(sessions, ids, scorer) == 0
    assert scorer.batches == []
    assert audit_count(sessions) == 2


def test_a_decision_stored_meanwhile_wins_over_a_late_one(sessions):
    (comment_id,) = add_comments(sessions, "You idiot.")
    with unit_of_work(sessions) as session:
        assert store_decisions(session, {comment_id: dict.fromkeys(LABELS, 0.0)}, KeywordScorer())
    with unit_of_work(sessions) as session:
        assert (
            store_decisions(session, {comment_id: dict.fromkeys(LABELS, 1.0)}, KeywordScorer()) == 0
        )
    assert statuses(sessions) == {"You idiot.": Status.APPROVED}
    assert audit_count(sessions) == 1


def test_premoderated_articles_hold_clean_comments(sessions):
    ids = add_comments(sessions, "Nice piece.")
    with unit_of_work(sessions) as session:
        session.scalars(select(Article)).one().premoderate = True
    score_and_decide(sessions, ids, KeywordScorer())
    assert statuses(sessions) == {"Nice piece.": Status.HELD}


def test_scoring_failure_holds_with_its_reason(sessions):
    ids = add_comments(sessions, "Nice piece.")
    with pytest.raises(RuntimeError):
        score_and_decide(sessions, ids, BrokenScorer())
    assert statuses(sessions) == {"Nice piece.": Status.PENDING}
    with unit_of_work(sessions) as session:
        assert mark_scoring_failed(session, ids, "RuntimeError('model file is missing')") == 1
    with sessions() as session:
        comment = session.scalars(select(Comment)).one()
        event = session.scalars(select(AuditEvent)).one()
    assert (comment.status, comment.reasons[0]["code"]) == (Status.HELD, "scoring_failed")
    assert event.reason == "scoring_failed" and "model file is missing" in event.detail["error"]


def test_a_fail_open_site_publishes_unscored_comments(sessions):
    ids = add_comments(sessions, "Nice piece.", policy=SitePolicy(fail_open=True))
    with unit_of_work(sessions) as session:
        mark_scoring_failed(session, ids, "boom")
    assert statuses(sessions) == {"Nice piece.": Status.APPROVED}


def test_stale_pending_comments_are_picked_once_per_period(sessions):
    old, _new = add_comments(sessions, "old one", "new one")
    with unit_of_work(sessions) as session:
        session.get(Comment, old).created_at = utcnow() - timedelta(minutes=10)
    with unit_of_work(sessions) as session:
        assert stale_pending_ids(session, timedelta(minutes=2)) == [old]
    with unit_of_work(sessions) as session:
        assert stale_pending_ids(session, timedelta(minutes=2)) == []
    with unit_of_work(sessions) as session:
        session.get(Comment, old).resent_at = utcnow() - timedelta(minutes=5)
    with unit_of_work(sessions) as session:
        assert stale_pending_ids(session, timedelta(minutes=2)) == [old]
