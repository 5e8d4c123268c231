"""The author rules and the report threshold, as pure functions."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from moderation.models import Status
from moderation.rules import AuthorContext, RuleContext, SiteRules, evaluate
from moderation.services.reports import summary, threshold_reached


def verdict(author: AuthorContext, **rules):
    return evaluate(RuleContext(text="A fair point.", author=author), SiteRules(**rules))


def codes(result) -> list[str]:
    return [reason.code for reason in result.decision.reasons] if result.decision else []


def test_author_rules_are_off_by_default():
    busy = AuthorContext(recent_decided=10, recent_rejected=10, same_text_authors=9)
    assert verdict(busy).decision is None


def test_a_pre_moderated_author_is_held():
    result = verdict(AuthorContext(premoderated=True))
    assert result.decision.outcome == Status.HELD
    assert codes(result) == ["author_premoderated"]


@pytest.mark.parametrize(
    ("earlier", "approved", "held"),
    [(0, 0, True), (1, 0, True), (2, 0, False), (1, 1, False), (5, 0, False)],
)
def test_new_commenters_are_held_until_one_comment_is_approved(earlier, approved, held):
    author = AuthorContext(earlier_comments=earlier, approved_comments=approved)
    result = verdict(author, new_commenter_holds=2)
    assert ("new_commenter" in codes(result)) is held


@pytest.mark.parametrize(
    ("decided", "rejected", "held"),
    [(4, 4, False), (5, 2, False), (5, 3, True), (10, 6, True), (10, 5, False)],
)
def test_recent_history_holds_from_the_share_of_rejections(decided, rejected, held):
    author = AuthorContext(recent_decided=decided, recent_rejected=rejected)
    result = verdict(author, history_reject_percent=60, history_min_decisions=5)
    assert ("recent_history" in codes(result)) is held
    if held:
        assert "rejected" in result.decision.reasons[0].message


@pytest.mark.parametrize(("others", "held"), [(0, False), (1, False), (2, True), (5, True)])
def test_the_same_text_from_several_authors_is_held(others, held):
    result = verdict(AuthorContext(same_text_authors=others), coordinated_authors=3)
    assert ("coordinated_text" in codes(result)) is held


def test_every_author_rule_that_matched_is_a_reason_in_plain_words():
    author = AuthorContext(premoderated=True, same_text_authors=4)
    result = verdict(author, coordinated_authors=2, new_commenter_holds=1)
    assert codes(result) == ["author_premoderated", "new_commenter", "coordinated_text"]
    messages = [reason.message for reason in result.decision.reasons]
    assert messages[2] == "the same text from 5 different authors within an hour -> hold"


@pytest.mark.parametrize(
    "settings",
    [
        {"coordinated_authors": 1},
        {"author_rate_limit": "lots"},
        {"report_threshold": 0},
        {"history_reject_percent": 101},
    ],
)
def test_nonsense_settings_are_refused(settings):
    with pytest.raises(ValidationError):
        SiteRules(**settings)


@pytest.mark.parametrize(
    ("reasons", "reached"),
    [
        ([], False),
        (["spam", "offensive"], False),
        (["spam", "offensive", "spam"], True),
        (["illegal"], True),
        (["other", "illegal"], True),
    ],
)
def test_the_report_threshold_counts_all_reports_and_illegal_ones_apart(reasons, reached):
    assert threshold_reached(reasons, threshold=3, illegal_threshold=1) is reached


def test_a_higher_illegal_threshold_needs_that_many_illegal_reports():
    assert not threshold_reached(["illegal"], threshold=3, illegal_threshold=2)
    assert threshold_reached(["illegal", "illegal"], threshold=3, illegal_threshold=2)


def test_the_report_summary_counts_reasons():
    assert summary(["spam", "offensive", "spam"]) == "3 reader reports: spam 2, offensive 1"
    assert summary(["illegal"]) == "1 reader report: illegal content 1"


def test_of_several_suspensions_the_one_that_ends_last_is_told():
    from datetime import UTC, datetime, timedelta

    from moderation.models import AuthorSanction
    from moderation.services.authors import posting_refusal

    now = datetime.now(UTC)
    long = AuthorSanction(kind="suspend", ends_at=now + timedelta(days=7), created_at=now)
    short = AuthorSanction(kind="suspend", ends_at=now + timedelta(days=1), created_at=now)
    for order in ([long, short], [short, long]):
        refusal = posting_refusal(order, warnings_block=False)
        assert refusal.code == "author_suspended"
        assert refusal.until == long.ends_at
    ban = AuthorSanction(kind="ban", ends_at=None, created_at=now)
    assert posting_refusal([short, ban], warnings_block=False).code == "author_banned"
