"""Moderator use cases on each database: transitions, audit, concurrency, queues, accounts."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, update

from moderation.db import unit_of_work
from moderation.models import AuditEvent, Comment, Moderator, ModeratorToken, Status
from moderation.services.moderation import (
    AuditFilter,
    CursorError,
    ModerationError,
    Order,
    QueueFilter,
    Result,
    audit_page,
    cards_for,
    comment_for_moderator,
    comment_version,
    moderate,
    moderate_many,
    queue_counts,
    queue_page,
)
from moderation.services.moderators import (
    authenticate,
    moderator_for_token,
    revoke_token,
    visible_site_ids,
)
from tests.moderation_support import (
    ABUSIVE,
    PASSWORD,
    moderator_accounts,
    seed_comment,
    status_of,
)

SITE = "example-news"


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


def _moderator(session, account) -> Moderator:
    return session.get(Moderator, account.id)


def _comment(session, public_id: str) -> Comment:
    return session.scalars(select(Comment).where(Comment.public_id == public_id)).one()


def _events(sessions, public_id: str) -> list[AuditEvent]:
    with sessions() as session:
        query = (
            select(AuditEvent)
            .join(Comment, AuditEvent.comment_id == Comment.id)
            .where(Comment.public_id == public_id)
            .order_by(AuditEvent.id)
        )
        return list(session.scalars(query))


def test_approving_changes_status_and_writes_a_moderator_audit_event(sessions, accounts):
    account = accounts.moderator(SITE)
    held = seed_comment(sessions, SITE, ABUSIVE)
    assert status_of(sessions, held) == Status.HELD
    with unit_of_work(sessions) as session:
        outcome = moderate(
            session, _comment(session, held), _moderator(session, account), "approved"
        )
    assert outcome.result is Result.APPLIED and outcome.from_status == Status.HELD
    assert status_of(sessions, held) == Status.APPROVED
    event = _events(sessions, held)[-1]
    assert (event.actor_type, event.actor_id) == ("moderator", account.email)
    assert (event.from_status, event.to_status, event.reason) == ("held", "approved", "approved")
    assert event.detail["moderator_id"] == account.id


def test_status_and_audit_are_one_transaction(sessions, accounts):
    account = accounts.moderator(SITE)
    held = seed_comment(sessions, SITE, ABUSIVE)
    before = len(_events(sessions, held))
    with sessions() as session:
        moderate(session, _comment(session, held), _moderator(session, account), "rejected", "spam")
        session.rollback()
    assert status_of(sessions, held) == Status.HELD
    assert len(_events(sessions, held)) == before


def test_reject_needs_a_known_reason_and_keeps_the_note(sessions, accounts):
    account = accounts.moderator(SITE)
    held = seed_comment(sessions, SITE, ABUSIVE)
    with unit_of_work(sessions) as session:
        comment, moderator = _comment(session, held), _moderator(session, account)
        for reason in (None, "rude"):
            with pytest.raises(ModerationError) as refused:
                moderate(session, comment, moderator, "rejected", reason)
            assert refused.value.field == "reason"
        with pytest.raises(ModerationError):
            moderate(session, comment, moderator, "pending")
        outcome = moderate(session, comment, moderator, "rejected", "abusive", "  repeat offender ")
    assert outcome.result is Result.APPLIED
    event = _events(sessions, held)[-1]
    assert (event.reason, event.detail["note"]) == ("abusive", "repeat offender")


def test_approving_an_approved_comment_is_a_no_op_that_says_so(sessions, accounts):
    account = accounts.moderator(SITE)
    published = seed_comment(sessions, SITE, "A thoughtful comment.")
    before = len(_events(sessions, published))
    with unit_of_work(sessions) as session:
        comment = _comment(session, published)
        outcome = moderate(
            session,
            comment,
            _moderator(session, account),
            "approved",
            expected_version=comment_version(comment),
        )
    assert outcome.result is Result.UNCHANGED
    assert "already approved" in outcome.message
    assert len(_events(sessions, published)) == before


def test_a_stale_version_loses_and_the_audit_shows_both_attempts(sessions, accounts):
    first, second = accounts.moderator(SITE), accounts.moderator(SITE)
    held = seed_comment(sessions, SITE, ABUSIVE)
    with sessions() as session:
        seen = comment_version(_comment(session, held))
    with unit_of_work(sessions) as session:
        won = moderate(
            session,
            _comment(session, held),
            _moderator(session, first),
            "approved",
            expected_version=seen,
        )
    with unit_of_work(sessions) as session:
        lost = moderate(
            session,
            _comment(session, held),
            _moderator(session, second),
            "rejected",
            "spam",
            expected_version=seen,
        )
    assert (won.result, lost.result) == (Result.APPLIED, Result.CONFLICT)
    assert first.email in lost.message
    assert status_of(sessions, held) == Status.APPROVED
    applied, attempt = _events(sessions, held)[-2:]
    assert (applied.actor_id, applied.to_status) == (first.email, "approved")
    assert (attempt.actor_id, attempt.reason) == (second.email, "conflict")
    assert (attempt.from_status, attempt.to_status) == ("approved", "approved")
    assert attempt.detail["attempted"] == "rejected"


def test_two_moderators_at_the_same_moment_one_wins(sessions, accounts):
    """Real concurrent transactions: one compare-and-set UPDATE matches, the other is told."""
    pair = [accounts.moderator(SITE), accounts.moderator(SITE)]
    held = seed_comment(sessions, SITE, ABUSIVE)
    with sessions() as session:
        seen = comment_version(_comment(session, held))
    start, results = threading.Event(), {}

    def act(account, target, reason):
        start.wait()
        with unit_of_work(sessions) as session:
            outcome = moderate(
                session,
                _comment(session, held),
                _moderator(session, account),
                target,
                reason,
                expected_version=seen,
            )
            results[account.email] = outcome.result

    threads = [
        threading.Thread(target=act, args=(pair[0], "approved", None)),
        threading.Thread(target=act, args=(pair[1], "rejected", "offensive")),
    ]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results.values()) == [Result.APPLIED, Result.CONFLICT]
    winner = next(email for email, result in results.items() if result is Result.APPLIED)
    events = [e for e in _events(sessions, held) if e.actor_type == "moderator"]
    assert len(events) == 2
    assert {e.actor_id for e in events} == {a.email for a in pair}
    assert next(e for e in events if e.reason != "conflict").actor_id == winner


def test_a_moderators_own_repeat_is_not_a_conflict(sessions, accounts):
    account = accounts.moderator(SITE)
    held = seed_comment(sessions, SITE, ABUSIVE)
    with sessions() as session:
        seen = comment_version(_comment(session, held))
    outcomes = []
    for _ in range(2):
        with unit_of_work(sessions) as session:
            comment, moderator = _comment(session, held), _moderator(session, account)
            outcomes.append(
                moderate(session, comment, moderator, "approved", expected_version=seen)
            )
    assert [o.result for o in outcomes] == [Result.APPLIED, Result.UNCHANGED]


def test_a_decision_can_be_reversed(sessions, accounts):
    account = accounts.moderator(SITE)
    published = seed_comment(sessions, SITE, "Perfectly polite.")
    with unit_of_work(sessions) as session:
        comment, moderator = _comment(session, published), _moderator(session, account)
        outcome = moderate(session, comment, moderator, "rejected", "off_topic", "wrong thread")
    assert outcome.result is Result.APPLIED
    event = _events(sessions, published)[-1]
    assert (event.from_status, event.to_status, event.detail["reversal"]) == (
        "approved",
        "rejected",
        True,
    )


def test_bulk_moderation_applies_to_each_comment(sessions, accounts):
    account = accounts.moderator(SITE)
    held = [seed_comment(sessions, SITE, f"{ABUSIVE} #{n}") for n in range(3)]
    with unit_of_work(sessions) as session:
        targets = [(_comment(session, public_id), None) for public_id in held]
        outcomes = moderate_many(session, _moderator(session, account), targets, "approved")
        with pytest.raises(ModerationError):
            moderate_many(session, _moderator(session, account), targets * 34, "approved")
    assert [o.result for o in outcomes] == [Result.APPLIED] * 3
    assert {status_of(sessions, public_id) for public_id in held} == {Status.APPROVED}


def test_queues_count_filter_and_page_with_a_keyset_cursor(sessions, accounts):
    held = [seed_comment(sessions, SITE, f"{ABUSIVE} #{n}") for n in range(5)]
    seed_comment(sessions, SITE, "Clear and fair, thank you.")
    other_article = seed_comment(sessions, SITE, "Idiot, 100% wrong", article="sport")
    with sessions() as session:
        counts = queue_counts(session, None, QueueFilter())
        assert counts == {"held": 6, "reported": 0, "approved": 1, "rejected": 0, "all": 7}
        seen, cursor = [], None
        while True:
            page = queue_page(session, None, QueueFilter(), cursor, limit=2)
            seen += [comment.public_id for comment in page.comments]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == [*held, other_article]
        newest = queue_page(session, None, QueueFilter(order=Order.NEWEST), limit=1).comments
        assert newest[0].public_id == other_article
        found = queue_page(session, None, QueueFilter(search="100%"))
        assert [c.public_id for c in found.comments] == [other_article]
        found = queue_page(session, None, QueueFilter(search="IDIOT, 1"))
        assert [c.public_id for c in found.comments] == [other_article]
        article_id = _comment(session, other_article).article_id
        by_article = queue_counts(session, None, QueueFilter(article_id=article_id))
        assert by_article["all"] == 1
        with pytest.raises(CursorError):
            queue_page(session, None, QueueFilter(order=Order.SCORE), cursor)


def test_highest_score_first_pages_through_equal_and_missing_scores(sessions):
    ids = [seed_comment(sessions, SITE, f"{ABUSIVE} #{n}") for n in range(5)]
    scores = [0.7, None, 0.9, 0.7, 0.8]
    with unit_of_work(sessions) as session:
        for public_id, score in zip(ids, scores, strict=True):
            session.execute(
                update(Comment).where(Comment.public_id == public_id).values(top_score=score)
            )
    order = QueueFilter(order=Order.SCORE)
    with sessions() as session:
        seen, cursor = [], None
        while True:
            page = queue_page(session, None, order, cursor, limit=2)
            seen += [comment.public_id for comment in page.comments]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert seen == [ids[2], ids[4], ids[3], ids[0], ids[1]]


def test_a_moderator_sees_only_assigned_sites_and_an_admin_sees_all(sessions, accounts):
    ours = seed_comment(sessions, SITE, ABUSIVE)
    theirs = seed_comment(sessions, "other-news", ABUSIVE)
    local, admin = accounts.moderator(SITE), accounts.moderator(admin=True)
    with sessions() as session:
        scope = visible_site_ids(session, _moderator(session, local))
        assert visible_site_ids(session, _moderator(session, admin)) is None
        page = queue_page(session, scope, QueueFilter())
        assert [c.public_id for c in page.comments] == [ours]
        assert queue_counts(session, scope, QueueFilter())["held"] == 1
        assert comment_for_moderator(session, scope, theirs) is None
        assert len(queue_page(session, None, QueueFilter()).comments) == 2
        rows, _ = audit_page(session, scope, AuditFilter())
        assert {row.comment_public_id for row in rows} == {ours}


def test_a_card_has_scores_thresholds_reasons_and_the_authors_record(sessions, accounts):
    account = accounts.moderator(SITE)
    held = seed_comment(sessions, SITE, ABUSIVE, author="reader-9")
    seed_comment(sessions, SITE, "Fine words.", author="reader-9")
    rejected = seed_comment(sessions, SITE, f"{ABUSIVE} again", author="reader-9")
    with unit_of_work(sessions) as session:
        moderate(
            session, _comment(session, rejected), _moderator(session, account), "rejected", "spam"
        )
    with sessions() as session:
        card = cards_for(session, [_comment(session, held)])[0]
    assert (card.approved_by_author, card.rejected_by_author) == (1, 1)
    assert [bar.label for bar in card.scores][:2] == ["toxicity", "severe_toxicity"]
    toxicity = card.scores[0]
    assert (toxicity.score, toxicity.hold_at, toxicity.crossed) == (0.97, 0.5, "hold")
    assert "toxicity 0.97 >= hold at 0.50" in card.reasons
    assert card.site_name == SITE
    assert [event.reason for event in card.history] == ["scored"]


def test_the_audit_log_filters_by_who_and_what(sessions, accounts):
    account = accounts.moderator(SITE)
    held = seed_comment(sessions, SITE, ABUSIVE)
    with unit_of_work(sessions) as session:
        moderate(session, _comment(session, held), _moderator(session, account), "rejected", "spam")
    with sessions() as session:
        mine, _ = audit_page(session, None, AuditFilter(actor=account.email.upper()))
        system, _ = audit_page(session, None, AuditFilter(actor="system"))
        rejected, _ = audit_page(session, None, AuditFilter(to_status="rejected", reason="spam"))
    assert [(r.event.actor_id, r.event.to_status) for r in mine] == [(account.email, "rejected")]
    assert [r.event.reason for r in system] == ["scored"]
    assert [r.comment_public_id for r in rejected] == [held]


def test_passwords_are_argon2_hashes_and_tokens_are_stored_hashed(sessions, accounts):
    account = accounts.moderator(SITE)
    token = accounts.token(account)
    with unit_of_work(sessions) as session:
        moderator = _moderator(session, account)
        assert moderator.password_hash.startswith("$argon2id$")
        assert PASSWORD not in moderator.password_hash
        assert authenticate(session, account.email.upper(), PASSWORD).id == account.id
        assert authenticate(session, account.email, PASSWORD + "x") is None
        assert authenticate(session, "nobody@example.test", PASSWORD) is None
        stored = session.scalars(select(ModeratorToken)).one()
        assert token not in (stored.token_hash, stored.token_prefix)
        assert moderator_for_token(session, token).id == account.id
        revoke_token(session, stored)
        assert moderator_for_token(session, token) is None
        moderator.active = False
        assert authenticate(session, account.email, PASSWORD) is None
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ModeratorToken)) == 1
