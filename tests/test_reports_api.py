"""The widget's API for reports and the reader's standing, on each database backend: reader
reports and the threshold that holds a comment, warnings, suspensions and bans at the widget,
a reader's own comments' outcomes, bad input, tenant isolation and rate limits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from moderation.api.public import reader_author_id
from moderation.db import unit_of_work
from moderation.models import (
    AuditEvent,
    AuthorSanction,
    Comment,
    Report,
    Site,
    Status,
    WebhookDelivery,
)
from moderation.services.authors import sanction_author
from moderation.services.moderation import moderate
from moderation.services.moderators import create_moderator
from moderation.services.webhooks import configure_webhook
from tests.moderation_support import seed_comment
from tests.support import WIDGET_ORIGIN, app_with, make_site

ORIGIN = WIDGET_ORIGIN
ARTICLE = "politics/2026/budget"
GENEROUS = {
    "ratelimit_public_ip": "1000/minute",
    "ratelimit_public_author": "1000/minute",
    "ratelimit_public_site": "1000/minute",
    "ratelimit_public_read": "1000/minute",
    "ratelimit_report_reader": "1000/minute",
    "ratelimit_report_ip": "1000/minute",
}


@pytest.fixture(scope="module")
def report_app(database_url, broker):
    with app_with(database_url, broker, **GENEROUS) as app:
        yield app


@pytest.fixture
def web(report_app, sessions):
    return report_app.test_client()


@pytest.fixture
def site(sessions):
    return make_site(sessions, "site-a", banned_words=["idiot"], suspect_words=["scam"])


@pytest.fixture
def other(sessions):
    return make_site(sessions, "site-b")


def token() -> str:
    """A reader token no other test used (rate-limit counters are shared in Redis)."""
    return uuid.uuid4().hex


def published(sessions, site_name: str = "site-a", text: str | None = None) -> str:
    """A published comment's public id."""
    text = text or f"A fair point about the budget, {uuid.uuid4().hex[:6]}."
    comment_id = seed_comment(sessions, site_name, text, article=ARTICLE)
    assert status_of(sessions, comment_id) == Status.APPROVED
    return comment_id


def report(web, site, comment_id: str, reader: str | None = None, **body):
    headers = {"Origin": body.pop("origin", ORIGIN)} | body.pop("headers", {})
    payload = {"reader_token": reader or token(), "reason": "offensive"} | body
    url = f"/api/v1/public/{site.publishable}/comments/{comment_id}/reports"
    return web.post(url, json=payload, headers=headers)


def widget_post(web, site, reader: str, text: str = "Clear and fair, thank you."):
    url = f"/api/v1/public/{site.publishable}/articles/{ARTICLE}/comments"
    body = {"author_name": "Ann", "text": text, "reader_token": reader}
    return web.post(url, json=body, headers={"Origin": ORIGIN})


def standing(web, site, reader: str | None, **headers):
    sent = {"Origin": ORIGIN} | ({"Reader-Token": reader} if reader is not None else {}) | headers
    return web.get(f"/api/v1/public/{site.publishable}/me", headers=sent)


def acknowledge(web, site, reader: str, origin: str = ORIGIN):
    url = f"/api/v1/public/{site.publishable}/me/acknowledge"
    return web.post(url, json={"reader_token": reader}, headers={"Origin": origin})


def read_comment(web, site, comment_id: str, reader: str | None = None):
    headers = {"Origin": ORIGIN} | ({"Reader-Token": reader} if reader else {})
    return web.get(f"/api/v1/public/{site.publishable}/comments/{comment_id}", headers=headers)


def status_of(sessions, public_id: str) -> str:
    with sessions() as session:
        return session.scalars(select(Comment.status).where(Comment.public_id == public_id)).one()


def count(sessions, model, *where) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def site_row(session, name: str = "site-a") -> Site:
    return session.scalars(select(Site).where(Site.name == name)).one()


def sanction(sessions, reader: str, kind: str, ends_at=None, name="site-a", reason="be civil"):
    """A moderator's sanction on the widget reader with this token (who has a comment)."""
    with sessions() as session:
        author = reader_author_id(site_row(session, name), reader)
    if count(sessions, Comment, Comment.author_id == author) == 0:
        seed_comment(sessions, name, "An earlier comment of mine.", author=author)
    with unit_of_work(sessions) as session:
        moderator = create_moderator(
            session, f"mod-{uuid.uuid4().hex[:8]}@example.test", "a long test password"
        )
        made = sanction_author(
            session, site_row(session, name), author, moderator, kind, reason, ends_at=ends_at
        )
        return made.sanction.public_id


def in_a_day() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


# --- Reports ---------------------------------------------------------------------------------


def test_a_reader_reports_a_published_comment(web, sessions, site):
    comment_id, reader = published(sessions), token()
    answer = report(web, site, comment_id, reader, reason="spam")
    assert answer.status_code == 201, answer.text
    body = answer.get_json()
    assert set(body) == {"id", "comment_id", "reason", "created_at"}
    assert body["comment_id"] == comment_id and body["reason"] == "spam"
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    with sessions() as session:
        stored = session.scalars(select(Report)).one()
        assert stored.public_id == body["id"]
        assert stored.reporter_id == reader_author_id(site_row(session), reader)
        assert (stored.reason, stored.text) == ("spam", None)
        assert datetime.fromisoformat(body["created_at"]) == stored.created_at
    # One report stays below the threshold: still published.
    assert status_of(sessions, comment_id) == Status.APPROVED


def test_other_needs_a_text_which_is_stored(web, sessions, site):
    comment_id = published(sessions)
    refused = report(web, site, comment_id, reason="other")
    assert refused.status_code == 422
    assert refused.get_json()["error"]["field"] == "text"
    text = "It names a private person's home address."
    assert report(web, site, comment_id, reason="other", text=text).status_code == 201
    with sessions() as session:
        assert session.scalars(select(Report.text)).one() == text


def test_a_second_report_by_the_same_reader_is_409_with_the_first_time(web, sessions, site):
    comment_id, reader = published(sessions), token()
    first = report(web, site, comment_id, reader).get_json()
    again = report(web, site, comment_id, reader, reason="spam")
    assert again.status_code == 409
    error = again.get_json()["error"]
    assert error["code"] == "already_reported"
    assert datetime.fromisoformat(error["reported_at"]) == datetime.fromisoformat(
        first["created_at"]
    )
    assert count(sessions, Report) == 1


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"reason": "rude"}, 422, "invalid", "reason"),
        ({"reason": 3}, 422, "invalid", "reason"),
        ({"reason": "other", "text": "   "}, 422, "invalid", "text"),
        ({"text": "x" * 501}, 422, "text_too_long", "text"),
        ({"reader_token": None}, 422, "invalid", "reader_token"),
        ({"reader_token": "short"}, 422, "invalid", "reader_token"),
        ({"text": "nul\x00byte"}, 422, "invalid", "text"),
    ],
)
def test_bad_reports_are_422_and_write_nothing(web, sessions, site, body, status, code, field):
    comment_id = published(sessions)
    answer = report(web, site, comment_id, **body)
    assert answer.status_code == status, answer.text
    error = answer.get_json()["error"]
    assert (error["code"], error.get("field")) == (code, field)
    assert count(sessions, Report) == 0


def test_a_report_without_a_token_is_422(web, sessions, site):
    comment_id = published(sessions)
    url = f"/api/v1/public/{site.publishable}/comments/{comment_id}/reports"
    answer = web.post(url, json={"reason": "spam"}, headers={"Origin": ORIGIN})
    assert answer.status_code == 422
    assert answer.get_json()["error"] == {
        "code": "missing_field",
        "message": "reader_token: Field required",
        "field": "reader_token",
    }
    assert count(sessions, Report) == 0


def test_a_text_of_500_characters_is_taken(web, sessions, site):
    assert report(web, site, published(sessions), text="y" * 500).status_code == 201


def test_unknown_unpublished_and_other_sites_comments_are_404(web, sessions, site, other):
    held = seed_comment(sessions, "site-a", "This is a scam.", article=ARTICLE)
    assert status_of(sessions, held) == Status.HELD
    rejected = seed_comment(sessions, "site-a", "You idiot.", article=ARTICLE)
    assert status_of(sessions, rejected) == Status.REJECTED
    elsewhere = published(sessions, "site-b")
    for comment_id in ("cmt_nope", held, rejected, elsewhere):
        answer = report(web, site, comment_id)
        assert answer.status_code == 404, comment_id
        assert answer.get_json()["error"]["code"] == "not_found"
    # The other site's own key reports its comment.
    assert report(web, other, elsewhere).status_code == 201
    assert count(sessions, Report) == 1


def test_reports_need_an_allowed_origin_and_the_publishable_key(web, sessions, site):
    comment_id = published(sessions)
    assert report(web, site, comment_id, origin="https://evil.example").status_code == 403
    url = f"/api/v1/public/{site.publishable}/comments/{comment_id}/reports"
    no_origin = web.post(url, json={"reader_token": token(), "reason": "spam"})
    assert no_origin.status_code == 403
    assert no_origin.get_json()["error"]["code"] == "origin_not_allowed"
    secret = web.post(
        url.replace(site.publishable, site.key),
        json={"reader_token": token(), "reason": "spam"},
        headers={"Origin": ORIGIN},
    )
    assert secret.status_code == 400
    assert count(sessions, Report) == 0


def test_three_reports_hold_the_comment_with_an_audit_row_and_a_webhook_event(web, sessions, site):
    with unit_of_work(sessions) as session:
        configure_webhook(session, site_row(session), "http://127.0.0.1:9/hooks")
    comment_id = published(sessions)
    for reason in ("offensive", "spam"):
        assert report(web, site, comment_id, reason=reason).status_code == 201
    assert status_of(sessions, comment_id) == Status.APPROVED
    assert count(sessions, WebhookDelivery, WebhookDelivery.event_type == "comment.reported") == 0

    assert report(web, site, comment_id, reason="offensive").status_code == 201
    assert status_of(sessions, comment_id) == Status.HELD
    with sessions() as session:
        comment = session.scalars(select(Comment).where(Comment.public_id == comment_id)).one()
        assert comment.reasons[0]["code"] == "reported"
        assert comment.reasons[0]["message"] == ("3 reader reports: offensive 2, spam 1 -> hold")
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.comment_id == comment.id).order_by(AuditEvent.id)
        ).all()[-1]
        transition = (audit.actor_type, audit.from_status, audit.to_status, audit.reason)
        assert transition == ("system", "approved", "held", "reported")
        event = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event_type == "comment.reported")
        ).one()
        assert event.payload["data"]["comment"]["id"] == comment_id
        assert event.payload["data"]["transition"]["reason"] == "reported"
    # Held now: no longer reportable.
    assert report(web, site, comment_id).status_code == 404


def test_one_report_of_illegal_content_holds_the_comment(web, sessions, site):
    comment_id = published(sessions)
    assert report(web, site, comment_id, reason="illegal").status_code == 201
    assert status_of(sessions, comment_id) == Status.HELD
    assert count(sessions, AuditEvent, AuditEvent.reason == "reported") == 1


def test_the_cors_preflight_allows_the_reader_token_header(web, site):
    answer = web.options(
        f"/api/v1/public/{site.publishable}/me",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "reader-token",
        },
    )
    assert answer.status_code == 204
    assert "Reader-Token" in answer.headers["Access-Control-Allow-Headers"]
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN


# --- The reader's standing -------------------------------------------------------------------


def test_a_reader_in_good_standing(web, site):
    answer = standing(web, site, token())
    assert answer.status_code == 200
    assert answer.get_json() == {"warning": None, "suspended_until": None, "banned": False}
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN


@pytest.mark.parametrize(
    ("value", "code"), [(None, "missing_field"), ("short", "invalid"), ("a" * 20 + "!", "invalid")]
)
def test_standing_needs_a_well_formed_reader_token(web, site, value, code):
    answer = standing(web, site, value)
    assert answer.status_code == 422
    assert answer.get_json()["error"]["code"] == code
    assert answer.get_json()["error"]["field"] == "Reader-Token"


def test_standing_from_another_origin_is_403(web, site):
    answer = standing(web, site, token(), Origin="https://evil.example")
    assert answer.status_code == 403


def test_a_warned_reader_must_acknowledge_before_posting(web, sessions, site):
    reader = token()
    warning_id = sanction(sessions, reader, "warn", reason="Please keep it about the budget.")
    found = standing(web, site, reader).get_json()
    assert found["warning"]["id"] == warning_id
    assert found["warning"]["message"] == "Please keep it about the budget."
    assert (found["suspended_until"], found["banned"]) == (None, False)

    before = count(sessions, Comment)
    refused = widget_post(web, site, reader)
    assert refused.status_code == 403
    error = refused.get_json()["error"]
    assert error["code"] == "warning_unacknowledged"
    assert error["warning"] == "Please keep it about the budget."
    assert count(sessions, Comment) == before

    assert acknowledge(web, site, reader, origin="https://evil.example").status_code == 403
    done = acknowledge(web, site, reader)
    assert done.status_code == 200
    assert done.get_json() == {"acknowledged": 1}
    with sessions() as session:
        stored = session.scalars(select(AuthorSanction)).one()
        assert stored.acknowledged_at is not None
    assert standing(web, site, reader).get_json()["warning"] is None
    assert widget_post(web, site, reader).status_code == 202
    assert acknowledge(web, site, reader).get_json() == {"acknowledged": 0}


def test_acknowledging_needs_a_token(web, site):
    url = f"/api/v1/public/{site.publishable}/me/acknowledge"
    answer = web.post(url, json={}, headers={"Origin": ORIGIN})
    assert answer.status_code == 422
    assert answer.get_json()["error"]["field"] == "reader_token"


def test_a_suspended_reader_is_told_until_when_and_refused(web, sessions, site):
    reader, until = token(), in_a_day()
    sanction(sessions, reader, "suspend", ends_at=until)
    found = standing(web, site, reader).get_json()
    assert datetime.fromisoformat(found["suspended_until"]) == until
    assert found["banned"] is False
    before = count(sessions, Comment)
    refused = widget_post(web, site, reader)
    assert refused.status_code == 403
    error = refused.get_json()["error"]
    assert error["code"] == "author_suspended"
    assert datetime.fromisoformat(error["until"]) == until
    assert count(sessions, Comment) == before


def test_a_banned_reader_is_refused(web, sessions, site):
    reader = token()
    sanction(sessions, reader, "ban")
    assert standing(web, site, reader).get_json() == {
        "warning": None,
        "suspended_until": None,
        "banned": True,
    }
    refused = widget_post(web, site, reader)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "author_banned"
    assert refused.get_json()["error"]["until"] is None


def test_a_sanction_on_one_site_is_not_seen_on_another(web, sessions, site, other):
    reader = token()
    sanction(sessions, reader, "ban", name="site-b")
    assert standing(web, other, reader).get_json()["banned"] is True
    assert standing(web, site, reader).get_json()["banned"] is False
    assert widget_post(web, site, reader).status_code == 202
    # Acknowledging on one site leaves the other's warning in force.
    sanction(sessions, reader, "warn", name="site-b", reason="Mind your tone.")
    assert acknowledge(web, site, reader).get_json() == {"acknowledged": 0}
    assert standing(web, other, reader).get_json()["warning"]["message"] == "Mind your tone."


# --- A reader's own comments -----------------------------------------------------------------


def test_the_author_sees_why_a_rule_rejected_their_comment(web, sessions, site):
    reader = token()
    posted = widget_post(web, site, reader, text="What an idiot.")
    assert posted.status_code == 202
    body = posted.get_json()
    assert body["status"] == "rejected"
    assert body["outcome"] == {
        "status": "rejected",
        "reason_code": "banned_word",
        "reason": "it contains a word this site does not allow",
    }
    again = read_comment(web, site, body["id"], reader).get_json()
    assert again["outcome"] == body["outcome"]


def test_the_author_sees_a_moderators_reject_reason_and_nobody_else_does(web, sessions, site):
    reader = token()
    comment_id = widget_post(web, site, reader).get_json()["id"]
    waiting = read_comment(web, site, comment_id, reader).get_json()
    assert waiting["outcome"] == {
        "status": "pending",
        "reason_code": None,
        "reason": "awaiting moderation",
    }
    with unit_of_work(sessions) as session:
        moderator = create_moderator(session, "mod-outcome@example.test", "a long test password")
        comment = session.scalars(select(Comment).where(Comment.public_id == comment_id)).one()
        moderate(session, comment, moderator, Status.REJECTED, "off_topic", "about sport")
    own = read_comment(web, site, comment_id, reader).get_json()
    assert own["outcome"] == {
        "status": "rejected",
        "reason_code": "off_topic",
        "reason": "a moderator found it off-topic",
    }
    assert "about sport" not in str(own)
    for stranger in (None, token()):
        answer = read_comment(web, site, comment_id, stranger)
        assert answer.status_code == 200
        assert "outcome" not in answer.get_json()
        assert answer.get_json()["status"] == "rejected"


def test_a_published_comment_has_no_reason(web, sessions, site):
    reader = token()
    with unit_of_work(sessions) as session:
        author = reader_author_id(site_row(session), reader)
    comment_id = seed_comment(sessions, "site-a", "A kind word.", article=ARTICLE, author=author)
    answer = read_comment(web, site, comment_id, reader).get_json()
    assert answer["outcome"] == {"status": "approved", "reason_code": None, "reason": None}


def test_a_malformed_reader_token_on_a_comment_is_422(web, sessions, site):
    comment_id = published(sessions)
    answer = read_comment(web, site, comment_id, "bad token!")
    assert answer.status_code == 422
    assert answer.get_json()["error"]["field"] == "Reader-Token"


def test_another_sites_key_cannot_read_a_comment_even_with_its_authors_token(
    web, sessions, site, other
):
    reader = token()
    comment_id = widget_post(web, site, reader).get_json()["id"]
    assert read_comment(web, other, comment_id, reader).status_code == 404
    assert read_comment(web, site, comment_id, reader).status_code == 200


# --- Rate limits -----------------------------------------------------------------------------


def assert_429(response):
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    error = response.get_json()["error"]
    assert error["code"] == "too_many_requests"
    assert error["message"] == "too many reports in a short time; try again later"


def test_reports_are_limited_per_reader(database_url, broker, sessions):
    with app_with(
        database_url, broker, **(GENEROUS | {"ratelimit_report_reader": "2/minute"})
    ) as app:
        web, site = app.test_client(), make_site(sessions, "site-a")
        comments = [published(sessions) for _ in range(3)]
        reader = token()
        assert [report(web, site, c, reader).status_code for c in comments[:2]] == [201, 201]
        limited = report(web, site, comments[2], reader)
        assert_429(limited)
        assert limited.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert report(web, site, comments[2], token()).status_code == 201
    assert count(sessions, Report) == 3


def test_reports_are_limited_per_client_ip(database_url, broker, sessions):
    overrides = GENEROUS | {"ratelimit_report_ip": "2/minute", "trusted_proxies": 1}
    with app_with(database_url, broker, **overrides) as app:
        web, site = app.test_client(), make_site(sessions, "site-a")
        comment_id = published(sessions)

        def from_ip(ip):
            return report(web, site, comment_id, headers={"X-Forwarded-For": ip})

        first, second = f"203.0.113.{uuid.uuid4().int % 250}", f"2001:db8::{token()[:4]}"
        assert [from_ip(first).status_code for _ in range(2)] == [201, 201]
        assert_429(from_ip(first))
        assert from_ip(second).status_code == 201
    assert count(sessions, Report) == 3
