"""Author standing and reports through the site API and the moderation API: sanctions,
author rules, the per-author rate limit, dismissing reports, and who may see what."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from moderation.db import unit_of_work
from moderation.models import AuditEvent, AuthorSanction, Comment, Report, Site, Status
from moderation.services.integration import update_rules
from moderation.services.reports import report_comment
from tests.moderation_support import moderator_accounts, seed_comment, status_of
from tests.support import wait_until

SITE, OTHER = "example-news", "other-news"


@pytest.fixture
def accounts(sessions):
    yield from moderator_accounts(sessions)


@pytest.fixture
def moderator(accounts, sessions):
    """A moderator of SITE (which exists, with one comment) and the token header."""
    seed_comment(sessions, SITE, "A first, clean comment.", author="reader-seed")
    account = accounts.moderator(SITE)
    return {"Authorization": f"Bearer {accounts.token(account)}"}


@pytest.fixture
def site_auth(sessions, moderator):
    """SITE's secret key, rotated so the test knows it."""
    from moderation.services.sites import rotate_api_key

    with unit_of_work(sessions) as session:
        site = session.scalars(select(Site).where(Site.name == SITE)).one()
        return {"Authorization": f"Bearer {rotate_api_key(session, site)}"}


def set_rules(sessions, name: str = SITE, **rules) -> None:
    with unit_of_work(sessions) as session:
        site = session.scalars(select(Site).where(Site.name == name)).one()
        update_rules(session, site, **rules)


def post(client, auth, author: str, text: str | None = None):
    body = {
        "article_id": "budget-2026",
        "author_id": author,
        "author_name": "Ann",
        "text": text or f"A thought on the budget, number {uuid.uuid4().hex[:6]}.",
    }
    return client.post("/api/v1/comments", json=body, headers=auth)


def sanction(client, moderator, author: str, site: str = SITE, **body):
    return client.post(
        f"/api/v1/moderation/authors/{site}/{author}/sanctions", json=body, headers=moderator
    )


def count(sessions, model, *where) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


# ------------------------------------------------------------------ sanctions at the door


def test_a_banned_author_is_refused_until_the_ban_is_lifted(client, sessions, moderator, site_auth):
    author = f"reader-{uuid.uuid4().hex[:8]}"
    assert post(client, site_auth, author).status_code == 202
    banned = sanction(client, moderator, author, kind="ban", reason="threats against a reader")
    assert banned.status_code == 201, banned.text
    assert banned.json["sanction"]["in_force"] is True
    before = count(sessions, Comment)
    refused = post(client, site_auth, author)
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "author_banned"
    assert count(sessions, Comment) == before
    lifted = client.post(
        f"/api/v1/moderation/sanctions/{banned.json['sanction']['id']}/lift",
        json={"reason": "appeal accepted"},
        headers=moderator,
    )
    assert lifted.status_code == 200
    assert lifted.json["in_force"] is False
    assert lifted.json["lift_reason"] == "appeal accepted"
    assert post(client, site_auth, author).status_code == 202


def test_a_suspended_author_is_refused_and_told_until_when(client, moderator, site_auth):
    author = f"reader-{uuid.uuid4().hex[:8]}"
    post(client, site_auth, author)
    until = in_an_hour()
    assert (
        sanction(
            client, moderator, author, kind="suspend", reason="spam", ends_at=until
        ).status_code
        == 201
    )
    refused = post(client, site_auth, author)
    assert refused.status_code == 403
    error = refused.json["error"]
    assert error["code"] == "author_suspended"
    assert datetime.fromisoformat(error["until"]) == datetime.fromisoformat(until)


def test_a_warning_does_not_stop_the_site_api(client, moderator, site_auth):
    # The site API has no reader to show the warning to; the widget asks for acknowledgement.
    author = f"reader-{uuid.uuid4().hex[:8]}"
    post(client, site_auth, author)
    assert (
        sanction(client, moderator, author, kind="warn", reason="Keep it civil.").status_code == 201
    )
    assert post(client, site_auth, author).status_code == 202


def test_a_pre_moderated_author_s_comments_are_all_held(client, sessions, moderator, site_auth):
    author = f"reader-{uuid.uuid4().hex[:8]}"
    post(client, site_auth, author)
    assert (
        sanction(client, moderator, author, kind="premoderate", reason="new troll").status_code
        == 201
    )
    answer = post(client, site_auth, author)
    assert answer.status_code == 202
    assert status_of(sessions, answer.json["id"]) == Status.HELD
    detail = client.get(f"/api/v1/comments/{answer.json['id']}", headers=site_auth).json
    assert [reason["code"] for reason in detail["decision"]["reasons"]] == ["author_premoderated"]


def test_a_ban_can_reject_the_author_s_published_comments(client, sessions, moderator):
    author = f"reader-{uuid.uuid4().hex[:8]}"
    published = [
        seed_comment(sessions, SITE, f"Fine comment {n}.", author=author) for n in range(2)
    ]
    other = seed_comment(sessions, SITE, "Someone else's comment.", author="someone-else")
    answer = sanction(
        client,
        moderator,
        author,
        kind="ban",
        reason="harassment",
        reject_published=True,
        reject_reason="abusive",
    )
    assert answer.status_code == 201
    assert {row["id"] for row in answer.json["rejected"]} == set(published)
    assert all(status_of(sessions, public_id) == Status.REJECTED for public_id in published)
    assert status_of(sessions, other) == Status.APPROVED
    audited = count(
        sessions,
        AuditEvent,
        AuditEvent.reason == "abusive",
        AuditEvent.to_status == Status.REJECTED,
    )
    assert audited == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "exile", "reason": "x"}, "kind"),
        ({"kind": "ban", "reason": "  "}, "reason"),
        ({"kind": "suspend", "reason": "spam"}, "ends_at"),
        ({"kind": "suspend", "reason": "spam", "ends_at": "2020-01-01T00:00:00+00:00"}, "ends_at"),
        ({"kind": "suspend", "reason": "spam", "ends_at": "2099-01-01T00:00:00"}, "ends_at"),
        ({"kind": "warn", "reason": "civil", "ends_at": "2099-01-01T00:00:00+00:00"}, "ends_at"),
        (
            {
                "kind": "suspend",
                "reason": "x",
                "ends_at": "2099-01-01T00:00:00Z",
                "reject_published": True,
            },
            "reject_published",
        ),
        ({"kind": "ban", "reason": "x", "reject_published": "yes"}, "reject_published"),
    ],
)
def test_a_bad_sanction_is_a_422_naming_the_field_and_writes_nothing(
    client, sessions, moderator, body, field
):
    answer = sanction(client, moderator, "reader-seed", **body)
    assert answer.status_code == 422, answer.text
    assert answer.json["error"]["field"] == field
    assert count(sessions, AuthorSanction) == 0


def test_lifting_twice_is_a_409(client, moderator):
    made = sanction(client, moderator, "reader-seed", kind="premoderate", reason="watch")
    url = f"/api/v1/moderation/sanctions/{made.json['sanction']['id']}/lift"
    assert client.post(url, json={"reason": "ok"}, headers=moderator).status_code == 200
    again = client.post(url, json={"reason": "ok"}, headers=moderator)
    assert again.status_code == 409
    assert again.json["error"]["code"] == "already_lifted"


def test_the_author_view_counts_outcomes_and_lists_sanctions(client, sessions, moderator):
    author = f"reader-{uuid.uuid4().hex[:8]}"
    seed_comment(sessions, SITE, "A calm comment.", author=author)
    held = seed_comment(sessions, SITE, "You idiot, read it again.", author=author)
    published = seed_comment(sessions, SITE, "Another calm one.", author=author)
    report(sessions, published, "reader-x", "spam")
    sanction(client, moderator, author, kind="warn", reason="Mind your language.")
    standing = client.get(f"/api/v1/moderation/authors/{SITE}/{author}", headers=moderator)
    assert standing.status_code == 200
    body = standing.json
    assert body["counts"] == {"published": 2, "held": 1, "rejected": 0, "pending": 0, "reported": 1}
    assert held in [comment["id"] for comment in body["recent"]]
    assert [(s["kind"], s["reason"]) for s in body["sanctions"]] == [
        ("warn", "Mind your language.")
    ]


# ------------------------------------------------------------------ isolation


def test_another_site_s_authors_and_sanctions_are_404(client, sessions, accounts, moderator):
    seed_comment(sessions, OTHER, "Over on the other site.", author="their-reader")
    theirs = accounts.moderator(OTHER)
    their_token = {"Authorization": f"Bearer {accounts.token(theirs)}"}
    made = sanction(client, their_token, "their-reader", site=OTHER, kind="premoderate", reason="x")
    assert made.status_code == 201
    assert (
        client.get(
            f"/api/v1/moderation/authors/{OTHER}/their-reader", headers=moderator
        ).status_code
        == 404
    )
    assert (
        sanction(client, moderator, "their-reader", site=OTHER, kind="ban", reason="x").status_code
        == 404
    )
    lift = f"/api/v1/moderation/sanctions/{made.json['sanction']['id']}/lift"
    assert client.post(lift, json={"reason": "x"}, headers=moderator).status_code == 404
    # An author id of the other site under this site's name is simply unknown here.
    assert sanction(client, moderator, "their-reader", kind="ban", reason="x").status_code == 404
    assert count(sessions, AuthorSanction) == 1


# ------------------------------------------------------------------ author rules


def test_a_new_commenter_is_held_until_a_comment_is_approved(
    client, sessions, moderator, site_auth
):
    set_rules(sessions, new_commenter_holds=2)
    author = f"reader-{uuid.uuid4().hex[:8]}"
    first = post(client, site_auth, author).json["id"]
    assert status_of(sessions, first) == Status.HELD
    approved = client.post(
        f"/api/v1/moderation/comments/{first}/approve", json={}, headers=moderator
    )
    assert approved.status_code == 200
    second = post(client, site_auth, author).json["id"]
    assert status_of(sessions, second) == Status.PENDING  # on to the model


def test_the_same_text_from_several_authors_is_held(client, sessions, moderator, site_auth):
    set_rules(sessions, coordinated_authors=3)
    text = f"Vote NO on the budget, share this everywhere {uuid.uuid4().hex[:4]}!"
    ids = [
        post(client, site_auth, f"bot-{n}-{uuid.uuid4().hex[:6]}", text).json["id"]
        for n in range(3)
    ]
    assert [status_of(sessions, public_id) for public_id in ids] == [
        Status.PENDING,
        Status.PENDING,
        Status.HELD,
    ]
    # Case and spacing do not make it another text.
    fourth = post(client, site_auth, "bot-4", "  " + text.upper()).json["id"]
    assert status_of(sessions, fourth) == Status.HELD


def test_an_author_with_many_recent_rejections_is_held(client, sessions, moderator, site_auth):
    set_rules(sessions, history_reject_percent=50, history_min_decisions=2)
    author = f"reader-{uuid.uuid4().hex[:8]}"
    for n in range(2):
        public_id = seed_comment(sessions, SITE, f"You idiot number {n}", author=author)
        rejected = client.post(
            f"/api/v1/moderation/comments/{public_id}/reject",
            json={"reason": "abusive"},
            headers=moderator,
        )
        assert rejected.status_code == 200
    answer = post(client, site_auth, author)
    assert status_of(sessions, answer.json["id"]) == Status.HELD
    fresh = post(client, site_auth, f"reader-{uuid.uuid4().hex[:8]}")
    assert status_of(sessions, fresh.json["id"]) == Status.PENDING


# ------------------------------------------------------------------ per-author rate limit


def test_one_author_cannot_flood_the_site_api(client, sessions, moderator, site_auth):
    set_rules(sessions, author_rate_limit="3/minute")
    author = f"reader-{uuid.uuid4().hex[:8]}"
    answers = [post(client, site_auth, author) for _ in range(5)]
    assert [answer.status_code for answer in answers] == [202, 202, 202, 429, 429]
    refused = answers[3]
    assert refused.json["error"]["code"] == "author_rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert count(sessions, Comment, Comment.author_id == author) == 3
    # Another author of the same site is not held back.
    assert post(client, site_auth, f"reader-{uuid.uuid4().hex[:8]}").status_code == 202


# ------------------------------------------------------------------ reports


def report(sessions, public_id: str, reporter: str, reason: str = "offensive") -> bool:
    with unit_of_work(sessions) as session:
        site = session.scalars(select(Site).where(Site.name == SITE)).one()
        return report_comment(session, site, public_id, reporter, reason).held


def test_dismissed_reports_no_longer_count(client, sessions, moderator):
    set_rules(sessions, report_threshold=2)
    public_id = seed_comment(sessions, SITE, "An opinion some dislike.", author="reader-9")
    assert report(sessions, public_id, "r1") is False
    assert report(sessions, public_id, "r2") is True
    queue = client.get("/api/v1/moderation/queue?queue=reported", headers=moderator).json
    assert queue["counts"]["reported"] == 1
    [card] = queue["comments"]
    assert card["status"] == Status.HELD
    assert sorted(r["reason"] for r in card["reports"]) == ["offensive", "offensive"]
    assert card["decision"]["reasons"][0]["code"] == "reported"
    dismissed = client.post(
        f"/api/v1/moderation/comments/{public_id}/dismiss-reports",
        json={"version": card["version"]},
        headers=moderator,
    )
    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json["comment"]["status"] == Status.APPROVED
    assert count(sessions, Report, Report.closed_at.is_(None)) == 0
    # A new report starts a new count: one is below the threshold of two.
    assert report(sessions, public_id, "r3") is False
    assert status_of(sessions, public_id) == Status.APPROVED


def test_dismissing_reports_of_a_published_comment_keeps_it_published(client, sessions, moderator):
    public_id = seed_comment(sessions, SITE, "A fair comment.", author="reader-9")
    report(sessions, public_id, "r1", "spam")
    answer = client.post(
        f"/api/v1/moderation/comments/{public_id}/dismiss-reports", headers=moderator
    )
    assert answer.status_code == 200
    assert answer.json["result"] == "applied"
    assert status_of(sessions, public_id) == Status.APPROVED
    assert count(sessions, AuditEvent, AuditEvent.reason == "reports_dismissed") == 1
    again = client.post(
        f"/api/v1/moderation/comments/{public_id}/dismiss-reports", headers=moderator
    )
    assert again.json["result"] == "unchanged"


def test_rejecting_a_reported_comment_upholds_its_reports(client, sessions, moderator):
    public_id = seed_comment(sessions, SITE, "A fair comment.", author="reader-9")
    report(sessions, public_id, "r1", "illegal")
    assert status_of(sessions, public_id) == Status.HELD
    answer = client.post(
        f"/api/v1/moderation/comments/{public_id}/reject",
        json={"reason": "offensive"},
        headers=moderator,
    )
    assert answer.status_code == 200
    with sessions() as session:
        [closed] = session.scalars(select(Report)).all()
    assert closed.resolution == "rejected"
    assert (
        client.get("/api/v1/moderation/queue?queue=reported", headers=moderator).json["comments"]
        == []
    )


def test_a_stale_dismissal_is_a_409(client, sessions, moderator):
    public_id = seed_comment(sessions, SITE, "A fair comment.", author="reader-9")
    report(sessions, public_id, "r1", "spam")
    answer = client.post(
        f"/api/v1/moderation/comments/{public_id}/dismiss-reports",
        json={"version": "12345"},
        headers=moderator,
    )
    assert answer.status_code == 409
    assert count(sessions, Report, Report.closed_at.is_(None)) == 1


def test_rejecting_as_illegal_content_needs_the_legal_ground_and_an_explanation(
    client, sessions, moderator
):
    public_id = seed_comment(sessions, SITE, "A comment someone finds unlawful.", author="r-9")
    url = f"/api/v1/moderation/comments/{public_id}/reject"
    bare = client.post(url, json={"reason": "illegal_content"}, headers=moderator)
    assert bare.status_code == 422
    assert bare.json["error"]["field"] in ("legal_ground", "note")
    assert status_of(sessions, public_id) == Status.APPROVED
    full = {
        "reason": "illegal_content",
        "legal_ground": "Section 130 StGB (incitement to hatred)",
        "note": "Calls for violence against a named group.",
    }
    answer = client.post(url, json=full, headers=moderator)
    assert answer.status_code == 200, answer.text
    assert status_of(sessions, public_id) == Status.REJECTED


# ------------------------------------------------------------------ concurrency (PostgreSQL)


def waiting_on_a_lock(sessions) -> bool:
    """Whether another connection of this database waits for a row lock now."""
    with sessions() as session:
        query = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(session.execute(text(query)).scalar())


def in_thread(work) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    return thread, result


def test_concurrent_reports_are_counted_one_after_another(database_url, sessions, moderator):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's writers take turns: no two reports run at once there")
    set_rules(sessions, report_threshold=2)
    public_id = seed_comment(sessions, SITE, "An opinion some dislike.", author="reader-9")
    first = sessions()
    site = first.scalars(select(Site).where(Site.name == SITE)).one()
    assert report_comment(first, site, public_id, "r1", "spam").held is False

    def second_report() -> bool:
        with unit_of_work(sessions) as session:
            other = session.scalars(select(Site).where(Site.name == SITE)).one()
            return report_comment(session, other, public_id, "r2", "spam").held

    thread, result = in_thread(second_report)
    # Without the row lock the second report counts alone (the first is not committed)
    # and the comment stays published with two open reports.
    assert wait_until(lambda: waiting_on_a_lock(sessions), timeout=10)
    first.commit()
    first.close()
    thread.join(timeout=10)
    assert result == [True]
    assert status_of(sessions, public_id) == Status.HELD


def test_a_report_that_holds_the_comment_during_a_dismissal_makes_it_a_conflict(
    database_url, client, sessions, moderator
):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's writers take turns: no two writes run at once there")
    set_rules(sessions, report_threshold=2)
    public_id = seed_comment(sessions, SITE, "An opinion some dislike.", author="reader-9")
    report(sessions, public_id, "r1")
    seen = client.get(f"/api/v1/moderation/comments/{public_id}", headers=moderator).json
    # The second report holds the comment and keeps its row locked while the moderator,
    # who saw it published with one report, dismisses.
    holder = sessions()
    site = holder.scalars(select(Site).where(Site.name == SITE)).one()
    assert report_comment(holder, site, public_id, "r2", "abusive").held is True
    url = f"/api/v1/moderation/comments/{public_id}/dismiss-reports"
    thread, result = in_thread(
        lambda: client.post(url, json={"version": seen["version"]}, headers=moderator).status_code
    )
    assert wait_until(lambda: waiting_on_a_lock(sessions), timeout=10)
    holder.commit()
    holder.close()
    thread.join(timeout=10)
    assert result == [409]
    assert status_of(sessions, public_id) == Status.HELD
    assert count(sessions, Report, Report.closed_at.is_(None)) == 2


def test_a_replayed_post_and_a_refused_one_do_not_use_up_the_author_s_limit(
    client, sessions, moderator, site_auth
):
    set_rules(sessions, author_rate_limit="2/minute", min_length=5)
    author = f"reader-{uuid.uuid4().hex[:8]}"
    replay = site_auth | {"Idempotency-Key": f"k-{uuid.uuid4().hex[:8]}"}
    body = {"article_id": "a-1", "author_id": author, "author_name": "Ann", "text": "A thought."}
    for _ in range(3):
        answer = client.post("/api/v1/comments", json=body, headers=replay)
        assert answer.status_code == 202
    assert (
        client.post("/api/v1/comments", json=body | {"text": "no"}, headers=site_auth).status_code
        == 422
    )
    assert post(client, site_auth, author).status_code == 202  # the second comment stored
    assert post(client, site_auth, author).status_code == 429
