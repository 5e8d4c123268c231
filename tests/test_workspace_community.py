"""The workspace's community pages over the Flask test client: the Reported queue's dismiss
action, the author view and its sanction forms, the live queue's poll; who may see what, and
CSRF on every new form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from moderation.db import unit_of_work
from moderation.models import AuditEvent, AuthorSanction, Report, Site, Status
from moderation.services.reports import report_comment
from tests.moderation_support import (
    ABUSIVE,
    moderator_accounts,
    seed_comment,
    sign_in,
    status_of,
    version_of,
)

SITE, OTHER = "example-news", "other-news"
CLEAN = "A fair and careful piece, thank you."


def htmx(path: str = "/moderate?queue=reported") -> dict[str, str]:
    """The headers htmx sends from a queue page."""
    return {"HX-Request": "true", "HX-Current-URL": f"http://localhost{path}"}


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


def report(sessions, public_id: str, site: str = SITE, reason: str = "offensive", by: str = "r1"):
    """A reader's report of a published comment."""
    with unit_of_work(sessions) as session:
        found = session.scalars(select(Site).where(Site.name == site)).one()
        report_comment(session, found, public_id, by, reason, None)


def count(sessions, model, *where) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def open_reports(sessions) -> int:
    return count(sessions, Report, Report.closed_at.is_(None))


def sanctions(sessions) -> int:
    return count(sessions, AuthorSanction)


# ------------------------------------------------------------------------- Reported queue


def test_the_reported_tab_lists_reported_comments_and_dismiss_closes_the_reports(
    client, sessions, accounts
):
    token = sign_in(client, accounts.moderator(SITE))
    reported = seed_comment(sessions, SITE, CLEAN, author="reader-7")
    seed_comment(sessions, SITE, "Another fine comment, unreported.")
    report(sessions, reported, reason="spam", by="r1")
    report(sessions, reported, reason="offensive", by="r2")

    page = client.get("/moderate?queue=reported").text
    assert re.search(r'data-queue="reported">1<', page)
    assert f"card-{reported}" in page
    assert "2 reader reports: spam 1, offensive 1" in page
    assert "dismiss-form" in page and "approve-form" not in page  # still published
    version = version_of(page, reported)

    answer = client.post(
        f"/moderate/comments/{reported}/dismiss",
        data={"version": version},
        headers=htmx() | {"X-CSRFToken": token},
    )
    assert answer.status_code == 200
    assert f"card-{reported}" not in answer.text.split('id="flash"')[0]  # left the queue
    assert re.search(r'data-queue="reported">0<', answer.text)
    assert "2 report(s) dismissed" in answer.text
    assert open_reports(sessions) == 0
    assert status_of(sessions, reported) == Status.APPROVED


def test_dismissing_a_comment_the_reports_held_publishes_it_and_a_stale_card_is_a_409(
    client, app, sessions, accounts
):
    token = sign_in(client, accounts.moderator(SITE))
    reported = seed_comment(sessions, SITE, CLEAN)
    report(sessions, reported, reason="illegal")  # one illegal-content report holds it
    assert status_of(sessions, reported) == Status.HELD
    version = version_of(client.get("/moderate?queue=reported").text, reported)

    other = app.test_client()
    other_token = sign_in(other, accounts.moderator(SITE))
    rejected = other.post(
        f"/moderate/comments/{reported}/reject",
        data={"version": version, "reason": "spam"},
        headers=htmx() | {"X-CSRFToken": other_token},
    )
    assert rejected.status_code == 200

    late = client.post(
        f"/moderate/comments/{reported}/dismiss",
        data={"version": version},
        headers=htmx() | {"X-CSRFToken": token},
    )
    assert late.status_code == 409
    assert f'id="card-{reported}"' in late.text  # the card, in place, as it is now
    assert "changed this comment to rejected first" in late.text
    assert status_of(sessions, reported) == Status.REJECTED


def test_dismiss_without_a_csrf_token_is_refused_and_keeps_the_reports(client, sessions, accounts):
    sign_in(client, accounts.moderator(SITE))
    reported = seed_comment(sessions, SITE, CLEAN)
    report(sessions, reported)
    version = version_of(client.get("/moderate?queue=reported").text, reported)
    answer = client.post(
        f"/moderate/comments/{reported}/dismiss", data={"version": version}, headers=htmx()
    )
    assert answer.status_code == 400
    assert open_reports(sessions) == 1


# ------------------------------------------------------------------------------ author view


def test_the_author_view_shows_counts_recent_comments_and_sanctions(client, sessions, accounts):
    sign_in(client, accounts.moderator(SITE))
    published = seed_comment(sessions, SITE, CLEAN, author="reader-9")
    seed_comment(sessions, SITE, ABUSIVE, author="reader-9")
    seed_comment(sessions, SITE, "Someone else entirely.", author="reader-10")
    report(sessions, published)

    page = client.get(f"/moderate/authors/{SITE}/reader-9")
    assert page.status_code == 200
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', page.text))
    assert counts == {"published": "1", "held": "1", "rejected": "0", "reported": "1"}
    assert "No sanctions." in page.text
    assert page.text.count('<li><span class="badge') == 2  # reader-10's is not listed
    drawer = client.get(f"/moderate/authors/{SITE}/reader-9", headers=htmx("/moderate"))
    assert drawer.text.lstrip().startswith("{#") is False
    assert 'id="author"' in drawer.text and "<html" not in drawer.text


def test_a_ban_with_rejection_is_listed_and_rejects_the_authors_comments(
    client, sessions, accounts
):
    account = accounts.moderator(SITE)
    token = sign_in(client, account)
    published = seed_comment(sessions, SITE, CLEAN, author="reader-3")
    held = seed_comment(sessions, SITE, ABUSIVE, author="reader-3")
    answer = client.post(
        f"/moderate/authors/{SITE}/reader-3/sanctions",
        data={"kind": "ban", "reason": "Repeated abuse", "reject_published": "1"},
        headers=htmx("/moderate") | {"X-CSRFToken": token},
    )
    assert answer.status_code == 201
    assert "Ban set; 2 of their comments rejected." in answer.text
    assert answer.headers["HX-Trigger"] == "live-refresh"
    row = re.search(r'<tr class="sanction ban in-force".*?</tr>', answer.text, re.S)
    assert row and "Repeated abuse" in row.group(0) and account.email in row.group(0)
    assert [status_of(sessions, p) for p in (published, held)] == [Status.REJECTED] * 2

    sanction_id = re.search(r'data-id="(snc_[^"]+)"', answer.text).group(1)
    lifted = client.post(
        f"/moderate/sanctions/{sanction_id}/lift",
        data={"reason": "Appeal accepted"},
        headers=htmx("/moderate") | {"X-CSRFToken": token},
    )
    assert lifted.status_code == 200
    assert "The ban is lifted." in lifted.text
    assert "Appeal accepted" in lifted.text and "No sanction in force." in lifted.text
    again = client.post(
        f"/moderate/sanctions/{sanction_id}/lift",
        data={"reason": "Twice"},
        headers=htmx("/moderate") | {"X-CSRFToken": token},
    )
    assert again.status_code == 409
    assert "already lifted" in again.text


def test_a_suspension_needs_a_future_end_and_a_reason(client, sessions, accounts):
    token = sign_in(client, accounts.moderator(SITE))
    seed_comment(sessions, SITE, CLEAN, author="reader-4")
    url = f"/moderate/authors/{SITE}/reader-4/sanctions"
    headers = htmx("/moderate") | {"X-CSRFToken": token}
    past = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    answer = client.post(
        url, data={"kind": "suspend", "reason": "Cool off", "ends_at": past}, headers=headers
    )
    assert answer.status_code == 422
    assert 'class="flash error"' in answer.text and "ends_at is in the past" in answer.text
    blank = client.post(url, data={"kind": "warn", "reason": "  "}, headers=headers)
    assert (blank.status_code, "a reason is required" in blank.text) == (422, True)
    assert sanctions(sessions) == 0

    # The moderator's own time zone: 10:00 in Tokyo tomorrow is 01:00 UTC.
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date()
    local = {"ends_at": f"{tomorrow}T10:00", "tz": "Asia/Tokyo"}
    done = client.post(url, data={"kind": "suspend", "reason": "Cool off"} | local, headers=headers)
    assert done.status_code == 201
    with sessions() as session:
        ends_at = session.scalars(select(AuthorSanction.ends_at)).one()
    assert ends_at == datetime(tomorrow.year, tomorrow.month, tomorrow.day, 1, tzinfo=UTC)


def test_another_sites_author_and_sanction_are_not_found(client, sessions, accounts):
    seed_comment(sessions, OTHER, CLEAN, author="reader-5")
    seed_comment(sessions, SITE, CLEAN, author="reader-6")
    admin = accounts.moderator(admin=True)
    admin_client = client.application.test_client()
    admin_token = sign_in(admin_client, admin)
    made = admin_client.post(
        f"/moderate/authors/{OTHER}/reader-5/sanctions",
        data={"kind": "premoderate", "reason": "New account"},
        headers=htmx("/moderate") | {"X-CSRFToken": admin_token},
    )
    assert made.status_code == 201
    sanction_id = re.search(r'data-id="(snc_[^"]+)"', made.text).group(1)

    token = sign_in(client, accounts.moderator(SITE))
    headers = htmx("/moderate") | {"X-CSRFToken": token}
    assert client.get(f"/moderate/authors/{OTHER}/reader-5").status_code == 404
    assert client.get(f"/moderate/authors/{SITE}/reader-5").status_code == 404
    assert client.get(f"/moderate/authors/{SITE}/reader-6").status_code == 200
    ban = {"kind": "ban", "reason": "x"}
    posted = client.post(f"/moderate/authors/{OTHER}/reader-5/sanctions", data=ban, headers=headers)
    assert posted.status_code == 404
    lift = client.post(
        f"/moderate/sanctions/{sanction_id}/lift", data={"reason": "x"}, headers=headers
    )
    assert lift.status_code == 404
    with sessions() as session:
        rows = session.scalars(select(AuthorSanction)).all()
    assert [(row.kind, row.lifted_at) for row in rows] == [("premoderate", None)]


def test_sanction_forms_without_a_csrf_token_are_refused_and_change_nothing(
    client, sessions, accounts
):
    sign_in(client, accounts.moderator(SITE))
    seed_comment(sessions, SITE, CLEAN, author="reader-8")
    url = f"/moderate/authors/{SITE}/reader-8/sanctions"
    for headers, data in (
        (htmx("/moderate"), {"kind": "ban", "reason": "x"}),
        (htmx("/moderate") | {"X-CSRFToken": "forged"}, {"kind": "ban", "reason": "x"}),
        ({}, {"kind": "ban", "reason": "x", "csrf_token": "forged"}),
    ):
        assert client.post(url, data=data, headers=headers).status_code == 400
    assert client.post("/moderate/sanctions/snc_x/lift", data={"reason": "x"}).status_code == 400
    assert sanctions(sessions) == 0


# ---------------------------------------------------------------------------- live queue


def test_the_poll_brings_new_held_and_reported_comments_and_the_counts(client, sessions, accounts):
    sign_in(client, accounts.moderator(SITE))
    shown = seed_comment(sessions, SITE, ABUSIVE)
    older = seed_comment(sessions, SITE, CLEAN, author="reader-2")  # published before the page
    page = client.get("/moderate").text
    poll = re.search(r'id="live" hidden hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")

    quiet = client.get(poll, headers=htmx("/moderate"))
    assert quiet.status_code == 200
    assert "<article" not in quiet.text and re.search(r'data-queue="held">1<', quiet.text)

    fresh = seed_comment(sessions, SITE, f"{ABUSIVE} Again.")
    report(sessions, older, reason="illegal")  # held by the report, with an older id
    answer = client.get(poll, headers=htmx("/moderate")).text
    assert re.search(r'data-queue="held">3<', answer)
    assert re.search(r'data-queue="reported">1<', answer)
    cards = dict(re.findall(r'id="card-(cmt_[^"]+)".*?data-live="(in|out)"', answer))
    assert cards == {fresh: "in", older: "in"}
    assert shown not in cards
    following = re.search(r'id="live" hidden hx-get="([^"]+)"', answer).group(1)
    assert "after=" in following and "queue=held" in following


def test_a_card_someone_else_decided_comes_back_marked_without_actions(
    client, app, sessions, accounts
):
    sign_in(client, accounts.moderator(SITE))
    held = seed_comment(sessions, SITE, ABUSIVE)
    page = client.get("/moderate").text
    poll = re.search(r'id="live" hidden hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    other = app.test_client()
    other_account = accounts.moderator(SITE)
    other_token = sign_in(other, other_account)
    other.post(
        f"/moderate/comments/{held}/approve",
        data={"version": version_of(page, held)},
        headers=htmx("/moderate") | {"X-CSRFToken": other_token},
    )
    answer = client.get(poll, headers=htmx("/moderate")).text
    card = re.search(rf'<article[^>]*id="card-{held}".*?</article>', answer, re.S).group(0)
    assert 'data-live="out"' in card and "stale" in card
    assert f"Changed by {other_account.email}: approve; it has left this queue." in card
    assert "approve-form" not in card and "reject-form" not in card
    assert re.search(r'data-queue="held">0<', answer)


def test_a_poll_from_another_site_sees_nothing(client, sessions, accounts):
    sign_in(client, accounts.moderator(SITE))
    page = client.get("/moderate").text
    poll = re.search(r'id="live" hidden hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    seed_comment(sessions, OTHER, ABUSIVE)
    answer = client.get(poll, headers=htmx("/moderate")).text
    assert "<article" not in answer
    assert re.search(r'data-queue="held">0<', answer)
    assert client.get("/moderate/updates?after=garbage").status_code == 200


def test_a_row_committed_late_below_the_watermark_is_still_delivered(sessions):
    from moderation.services.live import Mark, Watermark, changes_since
    from moderation.services.moderation import QueueFilter

    held = seed_comment(sessions, SITE, ABUSIVE)
    with sessions() as session:
        newest = session.scalar(select(func.max(AuditEvent.id)))
        reports = Mark()

        def delivered(mark: Mark) -> list[str]:
            changes = changes_since(session, None, QueueFilter(), Watermark(mark, reports))
            return [comment.public_id for comment in changes.comments]

        # The page read up to this event and saw it: nothing new.
        assert delivered(Mark(newest - 1, newest, 1)) == []
        # The page read past this id while it was not yet committed (a gap): it comes now.
        assert delivered(Mark(newest - 1, newest, 0)) == [held]
        # Beyond what the page read: new.
        assert delivered(Mark(newest - 1, newest - 1, 0)) == [held]


def test_more_changes_than_one_poll_carries_reload_the_page(
    client, sessions, accounts, monkeypatch
):
    from moderation.services import live

    # A small page of changes stands in for a burst (a ban rejecting hundreds of comments).
    monkeypatch.setattr(live, "MAX_COMMENTS", 2)
    sign_in(client, accounts.moderator(SITE))
    page = client.get("/moderate").text
    poll = re.search(r'id="live" hidden hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    seed_comment(sessions, SITE, ABUSIVE)
    seed_comment(sessions, SITE, f"{ABUSIVE} Twice.")
    within = client.get(poll, headers=htmx("/moderate"))
    assert "HX-Refresh" not in within.headers
    for n in range(3):
        seed_comment(sessions, SITE, f"{ABUSIVE} Burst {n}.", author=f"burst-{n}")
    burst = client.get(poll, headers=htmx("/moderate"))
    assert burst.headers.get("HX-Refresh") == "true"


def test_a_watermark_of_unicode_digits_is_ignored_not_a_500(client, sessions, accounts):
    sign_in(client, accounts.moderator(SITE))
    assert client.get("/moderate/updates?after=1-\u00b2-0.1-1-0").status_code == 200
